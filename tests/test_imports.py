"""mmlib's modules import one another without cycles, counting every import that runs: at a
module's top and inside functions (a deferred import hides a cycle from Python, not from a
reader). Read with `ast`; nothing is imported. Imports under `if TYPE_CHECKING:` never run and
are not counted."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path, src: Path) -> str:
    """src/mmlib/a/b.py -> mmlib.a.b; a package's __init__.py is the package."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def import_graph(src: Path, package: str = "mmlib") -> dict[str, dict[str, list[str]]]:
    """{module: {imported module: ["file:line", ...]}} over the package's own modules.

    `import p.a.b` and `from p.a import b` (b a module) are edges to p.a.b; `from p.a import
    name` (name not a module) to p.a; relative imports resolve against the importing module's
    package. A target that is not a file resolves to its longest prefix that is."""
    files = {_module_name(p, src): p for p in sorted((src / package).rglob("*.py"))}
    known = set(files)

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, list[str]]] = {m: {} for m in files}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_only(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    if not is_package:
                        base = base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    stem = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    stem = node.module or ""
                for alias in node.names:
                    sub = f"{stem}.{alias.name}"
                    targets.append(sub if alias.name != "*" and sub in known else stem)
            for target in targets:
                if target != package and not target.startswith(package + "."):
                    continue
                resolved = resolve(target)
                if resolved and resolved != module:
                    where = f"{path.relative_to(src)}:{node.lineno}"
                    sites = graph[module].setdefault(resolved, [])
                    if where not in sites:
                        sites.append(where)
    return graph


def strongly_connected(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Tarjan: the strongly connected components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _cycle_in(graph: dict[str, dict[str, list[str]]], component: list[str]) -> list[str]:
    """One closed path through a component, from its first module back to it."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    todo = [start]
    while todo:  # breadth first: a shortest cycle back to start
        v = todo.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                return [*paths[v], start]
            if w in members and w not in paths:
                paths[w] = [*paths[v], w]
                todo.append(w)
    raise AssertionError(f"no cycle through {start}")  # not a component


def describe(graph: dict[str, dict[str, list[str]]], component: list[str]) -> str:
    """A component as a failure message: a shortest cycle in it, then every import inside it
    (each with where it is), the imports one would move to break it."""
    members = set(component)
    edges = [
        f"{a} -> {b} ({', '.join(graph[a][b])})"
        for a in component
        for b in sorted(graph[a])
        if b in members
    ]
    return f"{' -> '.join(_cycle_in(graph, component))}\n    " + "\n    ".join(edges)


def test_mmlib_has_no_import_cycles():
    graph = import_graph(SRC)
    components = strongly_connected(graph)
    assert components == [], "import cycles in mmlib:\n  " + "\n  ".join(
        describe(graph, c) for c in components
    )


def test_the_graph_counts_deferred_and_from_imports_of_modules():
    """The scanner sees, on mmlib itself, the kinds of import the cycle test relies on."""
    graph = import_graph(SRC)
    assert len(graph) > 50 and "mmlib.worldmodel" in graph and "mmlib" in graph
    assert "mmlib.worldmodel.encoding" in graph["mmlib.worldmodel.rollout"]  # from m import X
    assert "mmlib.notebooks" in graph["mmlib.cli"]  # imported inside a function only
    assert "mmlib.features.schema" not in graph["mmlib.features.build"]  # under TYPE_CHECKING


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    src = _package(
        tmp_path,
        {
            "__init__.py": "",
            "sub/__init__.py": "",
            "sub/config.py": """\
                from pkg.sub.encoding import Enc

                def load():
                    from pkg.sub import train  # a deferred import: still a cycle
                    return train
            """,
            "sub/encoding.py": "class Enc: ...\n",
            "sub/train.py": "from ..sub.config import load\n",  # relative, back to config
            "other.py": """\
                from typing import TYPE_CHECKING
                import pkg.sub.encoding
                if TYPE_CHECKING:
                    from pkg import leaf
            """,
            "leaf.py": "from pkg.other import *\n",
        },
    )
    graph = import_graph(src, "pkg")
    assert graph["pkg.sub.config"] == {
        "pkg.sub.encoding": ["pkg/sub/config.py:1"],
        "pkg.sub.train": ["pkg/sub/config.py:4"],
    }
    assert graph["pkg.sub.train"] == {"pkg.sub.config": ["pkg/sub/train.py:1"]}
    assert graph["pkg.other"] == {"pkg.sub.encoding": ["pkg/other.py:2"]}  # not leaf
    assert graph["pkg.leaf"] == {"pkg.other": ["pkg/leaf.py:1"]}
    components = strongly_connected(graph)
    assert components == [["pkg.sub.config", "pkg.sub.train"]]
    assert describe(graph, components[0]) == (
        "pkg.sub.config -> pkg.sub.train -> pkg.sub.config\n"
        "    pkg.sub.config -> pkg.sub.train (pkg/sub/config.py:4)\n"
        "    pkg.sub.train -> pkg.sub.config (pkg/sub/train.py:1)"
    )
