"""The world-model stages as library functions (`worldmodel.stage`) on the real replays, with
one-epoch recipes: every cached output is written, the figures sit beside their yardsticks, a
re-run resumes and writes the same bytes, and the notebooks draw from the outputs alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import needs_replays

from mmlib.worldmodel import decomposition, frame_store, intervals, stage
from mmlib.worldmodel.encoding import EncodingConfig

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("metrics.json", "train_curve.csv", "val_curve.csv", "rollout_curve.csv")


@pytest.fixture(scope="module")
def quick(ingested, tmp_path_factory) -> tuple[Path, Path]:
    """(params.yaml with one-epoch smoke recipes of tiny models, one thread and 8 rollout starts,
    the frame store)."""
    root = tmp_path_factory.mktemp("wm_stage")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["profile"] = "smoke"
    wm = params["world_model"]
    wm["rollout_starts"], wm["threads"] = 8, 1
    tiny = {"hidden": 64, "trunk": 32, "d_model": 32, "n_layers": 1, "headdim": 16}
    wm["model"] = wm.get("model", {}) | tiny
    params["decompose"]["model"] = {"d_model": 32}
    for arch in wm["archs"]:
        wm["smoke"][arch]["epochs"] = 1
    params["decompose"]["smoke"]["epochs"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    frames = root / "wm_frames"
    frame_store.build(ingested, frames, EncodingConfig(**wm["encoding"]), wm["val_frac"],
                      wm["split_seed"])  # fmt: skip
    return root / "params.yaml", frames


def _paths(root: Path, frames: Path) -> stage.Paths:
    return stage.Paths(frames, root / "models", root / "reports", root / "runs")


@pytest.mark.slow
@needs_replays
def test_the_world_model_stages_write_their_outputs_and_resume(quick, tmp_path):
    params, frames = quick
    paths = _paths(tmp_path, frames)
    first = {a: stage.run_arch(a, params, paths, log=lambda _: None) for a in ("mlp", "mamba2")}
    for arch, m in first.items():
        assert all((paths.reports / arch / name).is_file() for name in OUTPUTS)
        assert (paths.models / arch / "model.pt").is_file()
        tf = m["teacher_forced"]
        assert {"copy_last_frame", "dead_reckoning"} <= set(tf)
        assert {"model", "copy_last_frame", "dead_reckoning"} <= set(m["rollout"])
        assert m["steps"] == m["epoch_steps"] and m["best_step"] == m["steps"]  # one epoch
    written = (paths.reports / "mlp" / "metrics.json").read_bytes()
    lines = []
    again = stage.run_arch("mlp", params, paths, log=lines.append)
    assert lines[0].startswith(f"resuming from step {first['mlp']['steps']}")
    assert (
        again == first["mlp"] and (paths.reports / "mlp" / "metrics.json").read_bytes() == written
    )

    table = stage.compare_table(["mlp", "mamba2"], paths.reports)
    assert list(table.index) == ["mlp", "mamba2", "copy last frame", "dead reckoning"]
    assert (paths.reports / "compare" / "table.md").read_text().startswith("|")

    dec = stage.DecomposePaths(frames, paths.models, tmp_path / "dec", tmp_path / "dec_reports",
                               tmp_path / "dec_runs")  # fmt: skip
    m = stage.run_decompose(params, dec, log=lambda _: None)
    assert sorted(p.name for p in dec.models.iterdir()) == sorted(
        f"{s}.pt" for s in m["subsystems"]
    )
    yardsticks = {"copy last frame", "dead reckoning"}
    for s, figures in m["subsystems"].items():
        assert set(figures["rollout"]["free_running"]) == {"mlp", "mamba2", "recomposed",
                                                           *yardsticks}, s  # fmt: skip
        assert set(figures["rollout"]["oracle"]) == {"standalone", *yardsticks}, s
        assert set(figures["intervals"]) == {"mlp_monolith", "mamba2_monolith", "standalone",
                                             "copy_last_frame", "dead_reckoning"}, s  # fmt: skip
        # the smoke set's validation games are too few for a verdict, or the headline says nothing
        assert figures["decomposes"] in (intervals.TOO_FEW, decomposition.NOT_MEASURABLE), s
        assert all(figures[v] in (intervals.TOO_FEW, decomposition.NOT_MEASURABLE)
                   for v in stage.VERDICTS), s  # fmt: skip
    assert (dec.reports / "table.md").read_text().count("\n|") > 10

    # the notebooks read those outputs and draw; nothing else
    for notebook, args in (
        ("04_world_model.py", ["-p", "arch", "mamba2", "-p", "frames_dir", str(frames),
                               "-p", "model_dir", str(paths.models),
                               "-p", "report_dir", str(paths.reports)]),
        ("05_subsystem_decomposition.py", ["-p", "report_dir", str(dec.reports)]),
    ):  # fmt: skip
        out = tmp_path / notebook.replace(".py", ".ipynb")
        done = subprocess.run(
            [sys.executable, "-m", "mmlib", "notebook", str(ROOT / "notebooks" / notebook),
             str(out), "--cwd", str(ROOT), *args],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    pictures = ("curves.png", "horizon.png", "trajectory.png")
    assert all((paths.reports / "mamba2" / p).is_file() for p in pictures)
    decomposition_pictures = ("horizon.png", "oracle_horizon.png", "confusion.png")
    assert all((dec.reports / p).is_file() for p in decomposition_pictures)
