"""The pipeline: the overview notebook runs headless, and `dvc repro` works from a clean clone.

These are the tests that keep the README's promise: clone, `make repro`, get the same numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
import yaml
from figure_kinds import figures_agree, kind_of

from mmlib.data.ingest import IngestConfig, ingest
from mmlib.notebooks import make_stable, run_notebook

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GAMES = SHARED / "replays" / "games"
pytestmark = pytest.mark.skipif(not GAMES.is_dir(), reason=f"no shared replays at {GAMES}")


def _env(src: Path) -> dict[str, str]:
    """The environment of a command run with this venv's tools and the code under `src`."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(src)
    return env


@pytest.fixture(scope="module")
def overview_run(tmp_path_factory) -> Path:
    """The overview notebook executed on an ingest of games/ (two replays renamed into rejects)."""
    work = tmp_path_factory.mktemp("overview")
    replays = work / "replays"
    shutil.copytree(GAMES, replays)
    (replays / "not-a-replay.slp").write_text("this is not a replay")
    ingest([replays], work / "ingest", IngestConfig(workers=2), progress=False)
    out = work / "report" / "overview.ipynb"
    run_notebook(
        ROOT / "notebooks" / "00_dataset_overview.py",
        out,
        {
            "ingest_dir": str(work / "ingest"),
            "report_dir": str(out.parent),
            "params_file": str(ROOT / "params.yaml"),
        },
        cwd=ROOT,
    )
    return out


def test_overview_notebook_runs_headless(overview_run: Path):
    nb = nbformat.read(overview_run, as_version=4)
    # every code cell ran, in order, to the end: papermill stops at a cell that exits with
    # SystemExit(0) and still returns (metadata.papermill.exception set, no error raised)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert [c.metadata.papermill.status for c in code] == ["completed"] * len(code)
    assert nb.metadata.papermill.exception is None
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert errors == []
    metrics = json.loads((overview_run.parent / "metrics.json").read_text())
    assert metrics["games"] == len(list(GAMES.glob("*.slp")))
    assert metrics["rejects"] == 1 and metrics["rejects_by_reason"] == {"not_slippi": 1}
    assert metrics["human_slots"] + metrics["cpu_slots"] == 2 * metrics["games"]
    for picture in ("game_length.png", "character_stage.png"):
        assert (overview_run.parent / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the injected parameters are recorded, so the report says what it was run on
    assert nb.metadata.papermill.parameters["ingest_dir"].endswith("ingest")


def test_executed_notebook_has_no_timings(overview_run: Path):
    text = overview_run.read_text()
    for key in ('"start_time"', '"end_time"', '"duration"', '"iopub.execute_input"'):
        assert key not in text
    nb = nbformat.read(overview_run, as_version=4)
    assert [c.id for c in nb.cells] == [f"cell-{i}" for i in range(len(nb.cells))]


def test_make_stable_strips_what_papermill_records():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nb.metadata["papermill"] = {
        "start_time": "t0",
        "end_time": "t1",
        "duration": 1.0,
        "version": "v",
    }
    nb.cells[0].metadata["execution"] = {"iopub.status.busy": "t"}
    nb.cells[0].metadata["papermill"] = {"duration": 0.1, "status": "completed"}
    make_stable(nb)
    assert nb.metadata["papermill"] == {"version": "v"}
    assert nb.cells[0].metadata == {"papermill": {"status": "completed"}}
    assert nb.cells[0].id == "cell-0"


def test_make_stable_drops_progress_bar_redraws_and_keeps_the_rest():
    """tqdm's redraws carry rates and come in a number that depends on timing: not stored."""
    bar = "\rnorm fox:  33%|###| 1/3 [00:00<00:00,  2.92perspective/s]"
    outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=bar),
        nbformat.v4.new_output("stream", name="stderr", text=f"{bar}\rdone 3/3\n"),
        nbformat.v4.new_output("stream", name="stderr", text=f"{bar}\nnorm: skipped: mewtwo\n"),
        nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
        nbformat.v4.new_output("stream", name="stdout", text="\rprinted\n"),
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1", outputs=outputs)])
    make_stable(nb)
    assert [(o.name, o.text) for o in nb.cells[0].outputs] == [
        ("stderr", "\nnorm: skipped: mewtwo\n"),
        ("stderr", "a warning\n"),
        ("stdout", "\rprinted\n"),
    ]


def test_notebook_command_errors_are_one_line(tmp_path):
    missing = subprocess.run(
        [sys.executable, "-m", "mmlib", "notebook", "notebooks/nope.py", str(tmp_path / "o.ipynb")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == "mmlib notebook: no notebook at notebooks/nope.py"
    no_kernel = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmlib",
            "notebook",
            "notebooks/00_dataset_overview.py",
            str(tmp_path / "o.ipynb"),
            "-k",
            "no-such-kernel",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert no_kernel.returncode == 2
    assert len(no_kernel.stderr.strip().splitlines()) == 1
    assert "no Jupyter kernel named 'no-such-kernel'" in no_kernel.stderr
    assert not (tmp_path / "o.ipynb").exists()


def test_a_notebook_that_exits_early_fails_and_writes_nothing(tmp_path):
    """A cell that ends the kernel without an exception (`sys.exit(0)`) leaves later cells
    unrun: that is a failure too, not a half-run report."""
    notebook = tmp_path / "exits.py"
    notebook.write_text('# %%\nimport sys\n\nsys.exit(0)\n\n# %%\nprint("never")\n')
    out = tmp_path / "exits.ipynb"
    command = ["mmlib", "notebook", str(notebook), str(out), "--cwd", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"mmlib notebook: {notebook} stopped after 1 code cells without finishing"
    )
    assert not out.exists()


def test_notebook_each_runs_once_per_item_of_the_profiles_list(tmp_path):
    """`--each bc.characters` runs the notebook once per item of the profile's list, with `{}`
    in the output path and the parameter values set to the item; a key that is not a list in
    this profile is one line."""
    notebook = tmp_path / "echo.py"
    header = "# ---\n# jupyter:\n#   kernelspec:\n#     language: python\n"
    header += "#     display_name: mmlib\n#     name: mmlib\n# ---\n"
    cells = '# %% tags=["parameters"]\nwho = "x"\n\n# %%\nprint(f"hello {who}")\n'
    notebook.write_text(header + cells)
    params = tmp_path / "params.yaml"
    params.write_text("profile: cpu\nbc:\n  seed: 0\n  smoke: {characters: [fox]}\n"
                      "  cpu: {characters: [ganon, sheik]}\n")  # fmt: skip
    command = ["mmlib", "notebook", str(notebook), str(tmp_path / "out" / "{}.ipynb"), "--cwd",
               str(tmp_path), "--each", "bc.characters", "--params", str(params), "-p", "who",
               "{}"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ganon.ipynb", "sheik.ipynb"]
    for who in ("ganon", "sheik"):
        assert f"hello {who}" in (tmp_path / "out" / f"{who}.ipynb").read_text()
    seed = [c if c != "bc.characters" else "bc.seed" for c in command]
    bad = subprocess.run([sys.executable, "-m", *seed], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"mmlib notebook: {params}: `bc.seed` is not a non-empty list in this profile"
    ]


def test_a_notebook_that_raises_fails_in_one_line_and_writes_nothing(tmp_path):
    """`mmlib notebook` on a notebook whose cell raises: exit status 2, the last line of stderr
    names the notebook, the cell and the exception (its message on one line), and the output
    path keeps what it held before: no half-run notebook, no temporary file beside it."""
    notebook = tmp_path / "raises.py"
    notebook.write_text(
        '# %%\nprint("first cell")\n\n# %%\nraise ValueError("no games\\n  for mewtwo")\n'
    )
    out = tmp_path / "report" / "raises.ipynb"
    out.parent.mkdir()
    out.write_text("an earlier run's notebook\n")
    command = ["mmlib", "notebook", str(notebook), str(out), "--cwd", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1] == (
        f"mmlib notebook: {notebook} failed in cell 2: ValueError: no games for mewtwo"
    )
    assert "first cell" in done.stderr and "Traceback" in done.stderr  # a bug shows where
    assert out.read_text() == "an earlier run's notebook\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["raises.ipynb"]


# Stages whose outputs come out of torch training (or score its models). The `mmlib` command pins
# the CPU kernels (mmlib.cpu_kernels), so these reproduce bit for bit on one processor; on another
# their last bits move (research-notes/2026-12-03-reproducibility.md), and then each figure must
# agree within the tolerance of its kind below.
TRAINED = ("bc", "bc_pooled", "play_eval", "world_model@", "world_model_compare", "decompose")


def _outs(lock: dict) -> dict[str, dict[str, str]]:
    """{stage: {output path: md5}} of a parsed dvc.lock."""
    return {
        name: {o["path"]: o["md5"] for o in stage.get("outs", [])}
        for name, stage in lock["stages"].items()
    }


def test_figures_agree_within_the_tolerance_of_their_kind_and_no_further():
    bc = "reports/bc/fox/metrics.json:"
    committed = {"val_loss": {"total": 1.9321}, "val": {"games": 1, "acc": 0.79},
                 "decomposes": False, "arch": "mlp"}  # fmt: skip
    moved = {"val_loss": {"total": 1.9332}, "val": {"games": 1, "acc": 0.7912},
             "decomposes": False, "arch": "mlp"}  # fmt: skip
    assert figures_agree(moved, committed, bc) == []  # the AMD -> Intel spread passes
    assert figures_agree(moved | {"val_loss": {"total": 1.95}}, committed, bc) == [
        f"{bc}.val_loss.total: 1.95 against 1.9321 (teacher-forced policy)"
    ]
    assert len(figures_agree(moved | {"decomposes": True}, committed, bc)) == 1  # verdicts exact
    assert len(figures_agree(moved | {"arch": "mamba2"}, committed, bc)) == 1  # strings exact
    assert len(figures_agree(moved | {"val": {"games": 2, "acc": 0.79}}, committed, bc)) == 1
    assert len(figures_agree(committed | {"val_loss": {"total": float("nan")}}, committed, bc))
    assert figures_agree({"arch": "mlp"}, committed, bc)[0].endswith("keys ['arch']")
    assert len(figures_agree(committed | {"val_loss": {"total": None}}, committed, bc)) == 1
    play = "reports/play/fox/metrics.json:"

    def free(argmax, presses):
        return {"agreement": {"free": {"argmax": argmax}}, "bot": {"free": {"trig": presses}}}

    assert figures_agree(free(0.27, 5), free(0.2483, 6), play) == []  # the measured spread
    assert len(figures_agree(free(0.35, 10), free(0.2483, 6), play)) == 2
    wm = "reports/world_model/mlp/metrics.json:"
    pick = {"trajectory_start": 9772, "steps": 340}
    assert figures_agree(pick | {"trajectory_start": 15922}, pick, wm) == []  # a pick, any start
    assert len(figures_agree(pick | {"trajectory_start": 15922.0}, pick, wm)) == 1
    assert len(figures_agree(pick | {"steps": 341}, pick, wm)) == 1  # a whole number: exact
    assert kind_of(wm + ".rollout.model.200.position").name == "rollout"
    assert kind_of(wm + ".teacher_forced.position_mae").name == "teacher-forced world model"
    assert kind_of(play + ".drift.sliding.button.argmax_agreement").name == "streaming drift"
    assert kind_of(play + ".agreement.teacher.main.argmax").name == "teacher-forced policy"


@pytest.mark.slow
@pytest.mark.repro
def test_dvc_repro_from_a_clean_clone(tmp_path):
    """`git clone` + `dvc pull -r shared data.dvc` + `dvc repro` reproduces the committed
    dvc.lock and reports exactly (on another processor family: every data stage exactly, the
    training stages' figures within FIGURES), and a second `dvc repro` does nothing."""
    if subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True
    ).returncode:
        pytest.skip("the repository has no commit to clone")
    clone = tmp_path / "mmlib"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    (tmp_path / "shared").symlink_to(SHARED)  # the DVC remote is ../shared/dvc-remote
    env = _env(clone / "src")

    def run(*cmd: str) -> str:
        done = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run("dvc", "pull", "--remote", "shared", "data.dvc")
    assert len(list((clone / "data" / "replays").glob("*.slp"))) == 42
    run("dvc", "repro")
    committed = _outs(yaml.safe_load(run("git", "show", "HEAD:dvc.lock")))
    made = _outs(yaml.safe_load((clone / "dvc.lock").read_text()))
    assert set(made) == set(committed)
    moved = sorted(name for name in made if made[name] != committed[name])
    assert [m for m in moved if not m.startswith(TRAINED)] == [], f"data stages differ: {moved}"
    if not moved:
        assert "dvc.lock" not in run("git", "status", "--porcelain"), "dvc.lock's deps differ"
        assert (
            run("git", "status", "--porcelain", "reports") == ""
        )  # metrics, pictures as committed
    else:  # another processor family: the training stages' bits moved, never their figures
        warnings.warn(f"training outputs differ from dvc.lock here: {moved}", stacklevel=1)
        changed = run("git", "status", "--porcelain", "reports").splitlines()
        trained = tuple(p for m in moved for p in made[m])
        assert [c for c in changed if not c[3:].startswith(trained)] == []
        for line in changed:
            path = line[3:]
            if path.endswith(".json"):
                was = json.loads(run("git", "show", f"HEAD:{path}"))
                disagree = figures_agree(json.loads((clone / path).read_text()), was, f"{path}:")
                assert disagree == [], f"{path}: {disagree}"
    second = run("dvc", "repro")
    assert "Running stage" not in second
    assert json.loads(run("dvc", "status", "--json")) == {}
