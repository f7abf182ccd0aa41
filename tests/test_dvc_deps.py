"""dvc.yaml deps: every mmlib module a stage's command runs is listed in that stage's deps.

A module missing from a stage's deps can change without dvc noticing, and `dvc repro` then calls
stale outputs up to date. The imports are read statically with `ast`, function-local ones included.
"""

from __future__ import annotations

import ast
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml

from mmlib.cli import parser

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CLI = SRC / "mmlib" / "cli.py"
TYPE_CHECKING = ("TYPE_CHECKING", "typing.TYPE_CHECKING")  # imports for type hints only


def stages() -> dict[str, dict]:
    """dvc.yaml's stages; a `foreach` stage as its `do`, with `${item}` set to its first item."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    out = {}
    for name, stage in pipeline["stages"].items():
        if "foreach" in stage:
            items = stage["foreach"]
            if isinstance(items, str):  # `${bc.characters}`: a list in params.yaml
                items = params
                for key in stage["foreach"].strip("${}").split("."):
                    items = items[key]
            item = str(next(iter(items)))  # what a stage imports does not depend on its item
            do = stage["do"]
            cmds = do["cmd"] if isinstance(do["cmd"], list) else [do["cmd"]]
            stage = {
                "cmd": [c.replace("${item}", item) for c in cmds],
                "deps": [d.replace("${item}", item) for d in do.get("deps", [])],
            }
        out[name] = stage
    return out


@cache
def _module_file(name: str) -> Path | None:
    """The file of module or package `name` under src/, or None (not ours, or not a module)."""
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(node: ast.AST, package: str) -> set[str]:
    """The modules `node` imports when it runs: anywhere in it, not under `if TYPE_CHECKING:`."""
    if isinstance(node, ast.If) and ast.unparse(node.test) in TYPE_CHECKING:
        return set().union(*(_imported(n, package) for n in node.orelse))
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if node.level:  # relative: `from .x import y` in package a.b is a.b.x
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join([*base, *([module] if module else [])])
        # `from pkg import name` imports the submodule pkg.name when there is one, else pkg itself
        return {
            f"{module}.{a.name}" if _module_file(f"{module}.{a.name}") else module
            for a in node.names
        }
    return set().union(*(_imported(n, package) for n in ast.iter_child_nodes(node)))


@cache
def _file_imports(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(SRC).parent.parts) if path.is_relative_to(SRC) else ""
    return frozenset(_imported(tree, package))


def _no_code(path: Path) -> bool:
    """Whether a file holds only a docstring and literal assignments (`__version__ = "0.1.0"`)."""
    body = ast.parse(path.read_text()).body
    return all(
        isinstance(n, ast.Expr | ast.Assign) and isinstance(n.value, ast.Constant) for n in body
    )


def _files(name: str) -> list[Path]:
    """The files importing mmlib module `name` runs: it, and the `__init__.py` of its packages."""
    if name.split(".")[0] != "mmlib" or (path := _module_file(name)) is None:
        return []  # third-party or stdlib
    parts = name.split(".")
    parents = [_module_file(".".join(parts[:i])) for i in range(1, len(parts))]
    # A package run only on the way to a submodule is exempt when it holds no code: nothing in it
    # can change a stage's output, and listing it would re-run every stage on a docstring edit.
    return [p for p in parents if p and not _no_code(p)] + [path]


def requirements(cmd: str) -> dict[Path, Path | None]:
    """Each file `cmd` runs, mapped to the file whose import brought it in (None: the command)."""
    argv = shlex.split(cmd)
    if argv[:3] == ["python", "-m", "mmlib"]:
        argv = argv[2:]
    if argv[0] != "mmlib":
        pytest.fail(f"cannot tell what {cmd!r} runs: teach tests/test_dvc_deps.py")
    args = parser().parse_args(argv[1:])
    # cli.py imports inside each handler: count its top level and the handler this command runs
    tree = ast.parse(CLI.read_text())
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    handler = next(n for n in tree.body if isinstance(n, defs) and n.name == args.run.__name__)
    top = [n for n in tree.body if not isinstance(n, defs)]
    via: dict[Path, Path | None] = {CLI: None}
    todo = [(CLI, _imported(ast.Module([*top, handler], []), "mmlib"))]
    if args.command == "notebook":
        notebook = ROOT / args.notebook
        via[notebook] = None
        todo.append((notebook, _file_imports(notebook)))
    while todo:
        importer, names = todo.pop()
        for name in sorted(names):
            for path in _files(name):
                if path not in via:
                    via[path] = importer
                    todo.append((path, _file_imports(path)))
    return via


def _short(path: Path) -> str:
    return str(path.relative_to(SRC / "mmlib" if path.is_relative_to(SRC) else ROOT))


def chain(via: dict[Path, Path | None], path: Path) -> list[Path]:
    """The import chain from the command to `path`."""
    out = [path]
    while (importer := via[out[-1]]) is not None:
        out.append(importer)
    return out[::-1]


def missing(stage: dict) -> list[str]:
    """A line for each file the stage's command runs that its deps do not cover."""
    deps = [d.rstrip("/") for d in stage.get("deps", [])]
    cmds = stage["cmd"] if isinstance(stage["cmd"], list) else [stage["cmd"]]
    lines = []
    for cmd in cmds:
        via = requirements(cmd)
        for path in sorted(via):
            rel = path.relative_to(ROOT).as_posix()
            if not any(rel == d or rel.startswith(d + "/") for d in deps):
                steps = " -> ".join(_short(p) for p in chain(via, path)[:-1])
                lines.append(f"{rel} (imported via {steps})")
    return lines


STAGES = stages()


@pytest.mark.parametrize("name", STAGES)
def test_stage_deps_list_every_module_it_runs(name: str):
    lack = missing(STAGES[name])
    assert not lack, "\n".join(f"{name}: dvc.yaml deps lack {line}" for line in lack)


def test_resolver_follows_imports():
    """The closure is real: the norm notebook reaches decode.py through other modules, and a
    subcommand brings in its own handler's imports, not every handler's."""
    src = SRC / "mmlib"
    norm = requirements(STAGES["norm"]["cmd"])
    decode = chain(norm, src / "data" / "decode.py")
    assert decode[0] == ROOT / "notebooks" / "02_norm_transforms.py"
    assert len(decode) >= 3  # the notebook does not import it itself
    assert src / "notebooks.py" in norm  # through cli.py's `_notebook`
    assert src / "features" / "shards.py" not in norm
    shards = requirements(STAGES["shards"]["cmd"])
    assert src / "features" / "shards.py" in shards
    assert src / "data" / "decode.py" in shards
    assert src / "notebooks.py" not in shards
    assert src / "data" / "ingest.py" not in shards
    assert src / "__init__.py" not in shards  # a docstring and `__version__`: exempt


def test_imports_read_function_bodies_not_type_hints():
    code = """
if TYPE_CHECKING:
    from mmlib.features.schema import FeatureSchema
def f():
    from mmlib.features import build, missing_name
    import mmlib.data.ids
"""
    found = _imported(ast.parse(code), "mmlib")
    assert found == {"mmlib.features.build", "mmlib.features", "mmlib.data.ids"}
