"""Fault tests of the ingest: re-runs, duplicates, a killed run, a hang and a Rust panic.

Each test asserts what was kept and what was written, byte for byte where it can.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import peppi_py
import pyarrow.parquet as pq
import pytest
from conftest import FOLDERS, INGESTED, REPLAYS, needs_replays, replay_names, replay_path

from mmlib.data.ingest import IngestConfig, ingest

pytestmark = needs_replays


def digests(folder: Path) -> dict[str, str]:
    """md5 of every file under a folder, by relative path (hidden files included)."""
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def stats(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime in ns) of every game file."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("games/*")}


def run(inputs: list[Path], output: Path, **config):
    return ingest(inputs, output, IngestConfig(**{"workers": 2} | config), progress=False)


def test_rerun_is_a_noop(ingested, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(ingested, out)
    before_stats, before = stats(out), digests(out)
    report = run([REPLAYS / f for f in FOLDERS], out)
    assert (report.ingested, report.present, report.duplicates) == (0, len(before_stats), 0)
    assert stats(out) == before_stats  # no game file rewritten
    assert digests(out) == before  # games.parquet and rejects.parquet byte-identical


def test_a_rerun_with_another_min_frames_updates_the_flag_only(ingested, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(ingested, out)
    before_stats = stats(out)
    usable = pq.read_table(out / "games.parquet")["usable_1v1"].to_pylist()
    assert any(usable)
    run([REPLAYS / f for f in FOLDERS], out, min_frames=10**9)
    rows = pq.read_table(out / "games.parquet").to_pylist()
    assert not any(r["usable_1v1"] or r["enough_frames"] for r in rows)
    assert stats(out) == before_stats  # the game files were not rewritten


def test_two_clean_runs_are_byte_identical(ingested, tmp_path):
    """A second clean run, with one worker instead of two, writes exactly the same files."""
    run([REPLAYS / f for f in FOLDERS], tmp_path / "out", workers=1)
    ours, session = digests(tmp_path / "out"), digests(ingested)
    assert len(ours) == len(INGESTED) + 2  # the game files and the two tables
    assert ours == session


def test_the_same_replay_under_two_names_is_stored_once(tmp_path):
    source = replay_path("peppi-ics.slp")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.slp", "b.slp"):
        shutil.copyfile(source, inputs / name)
    report = run([inputs], tmp_path / "out")
    assert (report.ingested, report.duplicates, report.rejected) == (1, 1, 0)
    (row,) = pq.read_table(tmp_path / "out" / "games.parquet").to_pylist()
    assert row["source"] == str(inputs / "a.slp")
    assert [p.name for p in (tmp_path / "out" / "games").iterdir()] == [f"{row['md5']}.parquet"]

    report = run([inputs, source], tmp_path / "out")  # and again, under a third name
    assert (report.ingested, report.present, report.duplicates) == (0, 1, 2)


@pytest.mark.slow
def test_a_killed_run_then_a_rerun_equals_an_uninterrupted_run(tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(REPLAYS / "games", inputs)
    run([inputs], tmp_path / "reference", workers=1)
    reference = digests(tmp_path / "reference")
    n_games = len(replay_names("games"))

    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "mmlib",
        "ingest",
        str(inputs),
        "--output",
        str(out),
        "--workers",
        "1",
        "-q",
    ]
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len(list(out.glob("games/*.parquet"))) < 3:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no game file appeared"
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes
    proc.wait()

    written = sorted(out.glob("games/*.parquet"))
    assert 3 <= len(written) < n_games and not (out / "games.parquet").exists()
    for path in written:  # whatever is visible is complete: the reference's very bytes
        pq.read_table(path)
        assert digests(out)[f"games/{path.name}"] == reference[f"games/{path.name}"]

    report = run([inputs], out, workers=1)
    assert report.present == len(written) and report.ingested == n_games - len(written)
    assert list(out.rglob("*.tmp")) == [] and not (out / ".scratch").exists()
    assert digests(out) == reference


def hanging_replay(path: Path, zeros: int) -> None:
    """A real replay's head (payload sizes, Game Start) declaring a 1-byte event 0x00, then
    `zeros` zero bytes as a sparse hole: peppi reads zeros/2 unknown events (~80 ns each here),
    so it runs for seconds on a file that takes no disk space. (A FIFO would block peppi forever,
    but the ingest never opens one: folders list regular files only, and it hashes each file in
    the main process first.)"""
    src = replay_path("slippijs-techTester.slp").read_bytes()
    assert src[:11] == b"{U\x03raw[$U#l"  # UBJSON {"raw": [bytes; u32 length] ...
    raw = src[15:]
    assert raw[0] == 0x35  # Event Payloads: size byte, then (command, u16 size) triples
    size = raw[1]
    table = raw[2 : 1 + size]
    sizes = {table[i]: int.from_bytes(table[i + 1 : i + 3], "big") for i in range(0, len(table), 3)}
    game_start = raw[1 + size : 2 + size + sizes[0x36]]
    assert game_start[0] == 0x36
    head = (
        src[:11]
        + bytes(4)  # raw length 0: an in-progress replay, read to the end
        + bytes([0x35, size + 3])
        + table
        + bytes([0x00, 0x00, 0x01])
        + game_start
    )
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + zeros)


@pytest.mark.slow
def test_a_hang_is_rejected_as_timeout_and_the_run_goes_on(tmp_path):
    """pebble stops a timed-out worker with SIGTERM, whose Python handler cannot run while peppi
    holds the GIL in Rust, then SIGKILLs it 3 s later: a hang costs timeout_s + 3 s."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    hanging_replay(inputs / "hang.slp", 400_000_000)  # ~16 s of peppi; the timeout is 2 s
    for name in ("peppi-ics.slp", "peppi-buttons_abxy.slp"):
        shutil.copyfile(replay_path(name), inputs / name)
    report = run([inputs], tmp_path / "out", timeout_s=2)
    (reject,) = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    assert reject["source"] == str(inputs / "hang.slp")
    assert reject["reason"] == "timeout" and "2 s" in reject["message"]
    assert report.ingested == 2 and report.rejected == 1
    assert len(list((tmp_path / "out" / "games").glob("*.parquet"))) == 2


def panicking_replay(path: Path) -> None:
    """SPEC 1.6: FodPlatforms.slp (3.17.0, with 3.18 stage events) declared as 3.16.0 makes peppi
    meet a Fountain of Dreams event with no array allocated for it, and unwrap a None."""
    src = bytearray(replay_path("slippijs-FodPlatforms.slp").read_bytes())
    game_start = 15 + 1 + src[16]  # header, Event Payloads command, its payload
    assert src[game_start] == 0x36 and src[game_start + 1 : game_start + 4] == bytes([3, 17, 0])
    src[game_start + 2] = 16
    path.write_bytes(src)


def test_a_rust_panic_is_rejected_as_panic(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    panicking_replay(inputs / "panic.slp")
    with pytest.raises(BaseException) as e:  # noqa: B017 - pyo3's PanicException, by name below
        peppi_py.read_slippi(str(inputs / "panic.slp"))
    assert type(e.value).__name__ == "PanicException" and not isinstance(e.value, Exception)

    shutil.copyfile(replay_path("peppi-ics.slp"), inputs / "ics.slp")
    report = run([inputs], tmp_path / "out")
    (reject,) = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    assert reject["source"] == str(inputs / "panic.slp") and reject["reason"] == "panic"
    assert "unwrap()" in reject["message"]
    assert report.ingested == 1
