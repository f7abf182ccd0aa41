"""The scale harness at small N (benchmarks/scale.py): every stage runs on a corpus of copied
games, and the data stages' memory does not grow with the number of games."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPLAYS

from mmlib.data.ingest import IngestConfig, ingest

ROOT = Path(__file__).resolve().parents[1]
DATA_STAGES = ("norm", "shards", "wm_frames")


def harness(ingested: Path, games: int, work: Path) -> dict:
    out = work / f"{games}.json"
    cmd = [sys.executable, str(ROOT / "benchmarks/scale.py"), "--games", str(games), "--ingest",
           str(ingested), "--work", str(work / str(games)), "--json", str(out)]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return json.loads(out.read_text())["stages"]


@pytest.fixture(scope="module")
def shared_games(tmp_path_factory) -> Path:
    """The 42 shared games alone, ingested. The harness copies them whole (2x and 8x here): a
    corpus of only some of them can leave a character whose every training game is from a
    Slippi version without velocities, which the norm stage cannot fit."""
    if not (REPLAYS / "games").is_dir():
        pytest.skip(f"the shared replays are not at {REPLAYS}")
    out = tmp_path_factory.mktemp("scale") / "ingest"
    ingest([REPLAYS / "games"], out, IngestConfig(workers=2), progress=False)
    return out


@pytest.mark.slow
def test_memory_stays_flat_from_84_to_336_games(shared_games, tmp_path):
    small, large = harness(shared_games, 84, tmp_path), harness(shared_games, 336, tmp_path)
    assert set(large) == {*DATA_STAGES, "bc", "world_model"}
    for name in DATA_STAGES:
        assert large[name]["frames"] > 3.5 * small[name]["frames"]  # the corpus really grew
    for name, figures in large.items():
        assert figures["peak_rss_tree_mb"] < 4096, name
    for name in DATA_STAGES:  # 4x the games: within 25 % (and 64 MB of noise) of the small run
        grown, base = large[name]["peak_anon_tree_mb"], small[name]["peak_anon_tree_mb"]
        assert grown <= 1.25 * base + 64, (name, base, grown)
