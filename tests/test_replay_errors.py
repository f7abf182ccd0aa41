"""Bad replays read through libmelee end in one line naming the file, never a traceback.

Every path that reads a replay through libmelee's file console (`mmlib play replay`, the
play_eval stage, the ECB audit) goes through `ReplayConsole`, which turns libmelee's failures
into a `ReplayError` (a `UsageError`: the command line prints it as one line, exit status 2).
The cases are the real rejects in ../shared/replays/rejects and libmelee 0.47.6's own failures
on three fixtures; what libmelee does on each was checked against libmelee itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import ubjson
from conftest import REPLAYS, needs_replays, replay_names, replay_path

from mmlib.errors import UsageError
from mmlib.features import audit_rows
from mmlib.features.replay_console import ReplayConsole, ReplayError

ROOT = Path(__file__).resolve().parents[1]
REJECTS = REPLAYS / "rejects"
SLOW = pytest.mark.slow
needs_rejects = pytest.mark.skipif(
    not REJECTS.is_dir(), reason=f"the shared rejects are not at {REJECTS}"
)

# libmelee decodes the whole file in connect(): these fail there (ubjson.DecoderException),
# before any frame. Value: what mmlib says is wrong with the file.
AT_CONNECT = {
    "peppi-corrupt.slp": "incomplete: its header gives no length",  # raw length 0
    "slippijs-incomplete.slp": "incomplete: its header gives no length",
    "synthetic-empty.slp": "the file is empty",
    "synthetic-random-bytes.slp": "it does not start with a Slippi header",
    "synthetic-text.slp": "it does not start with a Slippi header",
    "synthetic-truncated-techTester.slp": "truncated, 931,772 bytes where its header gives "
    "1,863,311 or more",
}
# These open, give frames, then fail in step(): (libmelee's error, the last frame read).
AT_STEP = {
    "slippijs-FodPlatforms.slp": ("ValueError: Fountain of Dreams platforms not initialized", 813),
    "slippijs-Whispy.slp": ("ValueError: Whispy not initialized", 574),
}
# Rejected by peppi-py 0.8.6 (game end methods 6 and 9) but read to the end by libmelee:
# file -> the number of GameStates it yields.
READ_BY_LIBMELEE = {
    "slippijs-BTTDK.slp": 1190,
    "slippijs-homeRun_jp.slp": 903,
    "slippijs-homeRun_positive.slp": 1421,
}
# Fixtures peppi-py reads and libmelee does not (tests/test_features_parity.py LIBMELEE_FAILS):
# (libmelee's error, what mmlib says).
FIXTURES = {
    "peppi-v0.1.slp": ("TypeError: buffer is too small", "no frame could be read"),
    "slippijs-test.slp": ("TypeError: buffer is too small", "no frame could be read"),
    "peppi-unknown_event.slp": ("ValueError: 255 is not a valid EventType", "read up to frame"),
}


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a replay\nsecond line\n")
    return path


# --- ReplayConsole ------------------------------------------------------------------------------


@needs_rejects
def test_every_reject_has_a_case():
    assert set(replay_names("rejects")) == set(AT_CONNECT) | set(AT_STEP) | set(READ_BY_LIBMELEE)


@needs_rejects
@pytest.mark.parametrize("name", sorted(AT_CONNECT))
def test_a_file_libmelee_cannot_open_is_one_line_naming_it(name):
    path = REJECTS / name
    with pytest.raises(ReplayError) as e:
        ReplayConsole(path)
    message = str(e.value)
    assert isinstance(e.value, UsageError) and e.value.path == path
    assert message.startswith(f"{path}: not a readable Slippi replay: {AT_CONNECT[name]}")
    assert "; libmelee: DecoderException: " in message and "\n" not in message
    assert isinstance(e.value.__cause__, ubjson.DecoderException)  # libmelee's own, chained


def test_a_text_file_is_not_a_replay(tmp_path):
    path = _text_file(tmp_path)
    with pytest.raises(ReplayError) as e:
        ReplayConsole(path)
    assert str(e.value).startswith(
        f"{path}: not a readable Slippi replay: it does not start with a Slippi header; "
        "libmelee: DecoderException: Invalid marker"
    )
    with pytest.raises(UsageError, match=f"^no replay at {tmp_path / 'nope.slp'}$"):
        ReplayConsole(tmp_path / "nope.slp")


@needs_rejects
@pytest.mark.parametrize("name", sorted(AT_STEP))
def test_a_replay_libmelee_stops_reading_gives_its_frames_then_one_line(name):
    path = REJECTS / name
    error, last = AT_STEP[name]
    frames = []
    with pytest.raises(ReplayError) as e:
        for state in ReplayConsole(path):
            frames.append(state.frame)
    assert len(frames) > 500 and frames[-1] == last
    assert str(e.value) == (
        f"{path}: not a readable Slippi replay: read up to frame {last}; libmelee: {error}"
    )
    assert isinstance(e.value.__cause__, ValueError)


@needs_rejects
@pytest.mark.parametrize("name", sorted(READ_BY_LIBMELEE))
def test_libmelee_reads_the_rejects_peppi_cannot(name):
    assert sum(1 for _ in ReplayConsole(REJECTS / name)) == READ_BY_LIBMELEE[name]


@needs_replays
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_the_fixtures_libmelee_cannot_read_are_replay_errors(name):
    error, what = FIXTURES[name]
    with pytest.raises(ReplayError) as e:
        list(ReplayConsole(replay_path(name)))
    assert f"not a readable Slippi replay: {what}" in str(e.value)
    assert f"; libmelee: {error}" in str(e.value)
    assert isinstance(e.value.__cause__, TypeError | ValueError)


# --- the audit lists unreadable replays ---------------------------------------------------------


@needs_rejects
def test_the_audit_lists_unreadable_replays_in_one_line_without_their_path():
    paths = {
        "good": replay_path("peppi-buttons_abxy.slp"),
        "truncated": REJECTS / "synthetic-truncated-techTester.slp",
        "whispy": REJECTS / "slippijs-Whispy.slp",
    }
    rows, unreadable = audit_rows.read_libmelee_all(paths)
    assert set(rows["md5"]) == {"good"}  # no rows of a replay read only in part
    assert unreadable == {
        "synthetic-truncated-techTester.slp": (
            "DecoderException: Insufficient (partial) input (bytes array) (at byte 931772) "
            f"({AT_CONNECT['synthetic-truncated-techTester.slp']})"
        ),
        "slippijs-Whispy.slp": "ValueError: Whispy not initialized (read up to frame 574)",
    }


# --- mmlib play replay --------------------------------------------------------------------------


def _play_replay(policy: Path, replay: Path, out: Path, *extra: str):
    return subprocess.run(
        [sys.executable, "-m", "mmlib", "play", "replay", "--checkpoint", str(policy),
         "--replay", str(replay), "--port", "1", "-o", str(out), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _assert_one_line_and_nothing_written(done, replay: Path, out: Path, what: str) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith(f"mmlib play replay: {replay}: not a readable Slippi replay: {what}")
    assert done.stdout == ""
    assert not out.parent.exists()  # not even the -o folder


@needs_rejects
@pytest.mark.parametrize(  # one command per file is slow; test-fast runs the truncated one
    "name",
    [n if "truncated" in n else pytest.param(n, marks=SLOW) for n in sorted(AT_CONNECT)],
)
def test_play_replay_on_a_file_libmelee_cannot_open(fox_policy, tmp_path, name):
    out = tmp_path / "out" / "inputs.parquet"
    done = _play_replay(fox_policy, REJECTS / name, out)  # progress bar on: it never starts
    _assert_one_line_and_nothing_written(done, REJECTS / name, out, AT_CONNECT[name])


def test_play_replay_on_a_text_file(fox_policy, tmp_path):
    replay, out = _text_file(tmp_path), tmp_path / "out" / "inputs.parquet"
    done = _play_replay(fox_policy, replay, out)
    _assert_one_line_and_nothing_written(done, replay, out, "it does not start with a Slippi")


@needs_rejects
def test_play_replay_on_a_replay_libmelee_stops_reading(fox_policy, tmp_path):
    # The bot plays the 700 frames before the failure (the other case of AT_STEP fails the same
    # way, after 940 frames: ReplayConsole's test covers it). -q: no progress bar on stderr.
    name, out = "slippijs-Whispy.slp", tmp_path / "out" / "inputs.parquet"
    done = _play_replay(fox_policy, REJECTS / name, out, "-q")
    _assert_one_line_and_nothing_written(done, REJECTS / name, out, "read up to frame 574;")
    assert done.stderr.strip().endswith(f"libmelee: {AT_STEP[name][0]}")
