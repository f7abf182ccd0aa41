"""Shared fixtures: the real replays beside the project, ingested once per test session.

The replays live in `../shared/replays/{games,fixtures,rejects}` (see ../shared/DATA.md). Tests
that need them are marked `needs_replays` and skip with a reason when the folder is absent.
"""

from __future__ import annotations

import functools
import signal
import socket
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mmlib.data.ingest import IngestConfig, ingest

REPLAYS = Path(__file__).resolve().parents[1].parent / "shared" / "replays"
FOLDERS = ("games", "fixtures", "rejects")
needs_replays = pytest.mark.skipif(
    not (REPLAYS / "games").is_dir(), reason=f"the shared replays are not at {REPLAYS}"
)


def replay_names(folder: str) -> list[str]:
    """File names in one replay folder (empty when the replays are absent)."""
    path = REPLAYS / folder
    return sorted(p.name for p in path.glob("*.slp")) if path.is_dir() else []


def replay_path(name: str) -> Path:
    """The path of a replay, whichever folder holds it."""
    for folder in FOLDERS:
        if (REPLAYS / folder / name).exists():
            return REPLAYS / folder / name
    raise FileNotFoundError(name)


# The 13 numeric BC columns of SPEC 3.2, written out here so tests do not read the code they check.
SPEC_NUMERIC = [
    "pos_x",
    "pos_y",
    "percent",
    "stock",
    "jumps_left",
    "speed_air_x_self",
    "speed_ground_x_self",
    "speed_x_attack",
    "speed_y_attack",
    "speed_y_self",
    "hitlag_left",
    "hitstun_left",
    "shield_strength",
]

# Fixtures older than Slippi 2.2 with a stream absent mid-game: peppi-py shifts their rows
# (SPEC 1.1), so the ingest rejects them.
MISALIGNED = {"slippijs-doubles.slp", "slippijs-sheik_vs_ics_yoshis.slp"}
READABLE = replay_names("games") + replay_names("fixtures")  # what peppi-py 0.8.6 reads
INGESTED = [n for n in READABLE if n not in MISALIGNED]  # what the ingest must store


def stream(table: pa.Table, port: int, follower: bool) -> pa.Table:
    """The rows of one stream (a port's leader, or its follower) of an ingested game."""
    mask = pc.and_(pc.equal(table["port"], port), pc.equal(table["follower"], follower))
    return table.filter(mask)


@pytest.fixture(scope="session")
def ingested(tmp_path_factory) -> Path:
    """games/ + fixtures/ + rejects/ ingested once into a temporary folder: the output folder."""
    if not (REPLAYS / "games").is_dir():
        pytest.skip(f"the shared replays are not at {REPLAYS}")
    out = tmp_path_factory.mktemp("ingest") / "out"
    ingest([REPLAYS / f for f in FOLDERS], out, IngestConfig(workers=2), progress=False)
    return out


@pytest.fixture(scope="session")
def games(ingested) -> dict[str, dict]:
    """The games table of the session ingest: replay file name -> row."""
    rows = pq.read_table(ingested / "games.parquet").to_pylist()
    return {Path(r["source"]).name: r for r in rows}


@pytest.fixture(scope="session")
def rejects(ingested) -> dict[str, list[dict]]:
    """The rejects table of the session ingest: replay file name -> its rows."""
    out: dict[str, list[dict]] = {}
    for r in pq.read_table(ingested / "rejects.parquet").to_pylist():
        out.setdefault(Path(r["source"]).name, []).append(r)
    return out


@pytest.fixture(scope="session")
def game_table(ingested, games):
    """A function: replay file name -> its ingested frame table (read once, then cached)."""

    @functools.cache
    def load(name: str) -> pa.Table:
        return pq.read_table(ingested / "games" / f"{games[name]['md5']}.parquet")

    return load


@functools.cache
def libmelee_frames(name: str) -> tuple:
    """Every GameState libmelee's file console yields for a replay, in order.

    libmelee keeps the FIRST occurrence of a rollback frame (SPEC 1.5): compare it with our
    (last-occurrence) rows only on replays without rollback.
    """
    import melee

    console = melee.Console(is_dolphin=False, path=str(replay_path(name)), allow_old_version=True)
    console.connect()
    states = []
    while (state := console.step()) is not None:
        states.append(state)
    return tuple(states)


@pytest.fixture(scope="session")
def fox_shards(ingested, tmp_path_factory) -> Path:
    """fox's norm files and shards (train/ and val/) built from the session ingest, once."""
    from mmlib.config import stage_params
    from mmlib.features import dataset, shards
    from mmlib.features.schema import load_schema

    root = Path(__file__).resolve().parents[1]
    audit, params = root / "reports/audit/audit.json", root / "params.yaml"
    tmp = tmp_path_factory.mktemp("bc_shards")
    settings = stage_params("features", params, profile="smoke")
    dataset.fit_characters(ingested, ["fox"], load_schema(audit), settings, tmp / "norm")
    out = tmp / "shards"
    shards.build_all(ingested, tmp / "norm", audit, out, ["fox"], settings, tmp / "m.json")
    return tmp / "shards" / "fox"


@pytest.fixture(scope="session")
def fox_policy(fox_shards, tmp_path_factory) -> Path:
    """A fox policy directory trained briefly (smoke recipe, 24 steps) on the session shards."""
    from mmlib.train.character import Paths, run_character

    root = Path(__file__).resolve().parents[1]
    tmp = tmp_path_factory.mktemp("bc_policy")
    paths = Paths(fox_shards.parent, tmp / "bc", tmp / "reports", tmp / "runs")
    run_character(
        "fox", root / "params.yaml", paths, log=lambda *_: None, profile="smoke",
        steps=24, eval_every=24, ckpt_every=24,
    )  # fmt: skip
    return tmp / "bc" / "fox"


def kill_once_written(args: list[str], path: Path, timeout: float = 300) -> None:
    """Start a process and SIGKILL it as soon as `path` (its first resume file) exists; assert it
    was killed before it finished and left no half-written `.*.tmp` file beside `path`."""
    child = subprocess.Popen(args)
    deadline = time.monotonic() + timeout
    while not path.exists() and child.poll() is None:
        assert time.monotonic() < deadline, f"no {path.name} within {timeout:.0f} s"
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not list(path.parent.glob(".*.tmp")), "a half-written resume file was left behind"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a torchrun rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
