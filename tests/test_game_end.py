"""Games whose replay has no GameEnd event (peppi gives `end=None`; common in netplay and ranked).

Between two humans such a game counts as a normal end, so it is usable when it is a long-enough
1v1 on a legal stage; its winner is the one player with stocks left on the last frame. The real
games here with a GameEnd are turned into games without one by cutting the event out of the
replay's bytes, so the rest of the file is exactly what Slippi wrote.
"""

from __future__ import annotations

import struct
from pathlib import Path

import peppi_py
import pyarrow.parquet as pq
import pytest
from conftest import needs_replays, replay_path

from mmlib.data.ingest import IngestConfig, ingest
from mmlib.data.summary import winners
from mmlib.features.replay_console import SLP_HEADER

pytestmark = needs_replays
GAME_END = 0x39  # the GameEnd event's command byte


def without_game_end(data: bytes) -> bytes:
    """A .slp's bytes with every GameEnd event removed from its event stream."""
    assert data.startswith(SLP_HEADER), "not a .slp file"
    (n,) = struct.unpack(">I", data[len(SLP_HEADER) : len(SLP_HEADER) + 4])
    start = len(SLP_HEADER) + 4
    raw = data[start : start + n]
    assert raw[0] == 0x35  # Event Payloads: the size of every other event
    sizes = {0x35: raw[1]}
    for i in range(2, 1 + raw[1], 3):
        sizes[raw[i]] = struct.unpack(">H", raw[i + 1 : i + 3])[0]
    kept, i = bytearray(), 0
    while i < len(raw):
        size = sizes[raw[i]] + 1
        if raw[i] != GAME_END:
            kept += raw[i : i + size]
        i += size
    return data[: len(SLP_HEADER)] + struct.pack(">I", len(kept)) + bytes(kept) + data[start + n :]


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> dict[str, dict]:
    """The games-table rows of real games ingested as they are and with the GameEnd cut out."""
    folder = tmp_path_factory.mktemp("no_game_end")
    replays = folder / "replays"
    replays.mkdir()
    for name in ("peppi-v2.0.slp", "slippijs-facingDirection.slp", "peppi-game.slp"):
        data = replay_path(name).read_bytes()
        (replays / name).write_bytes(data)
        (replays / f"noend-{name}").write_bytes(without_game_end(data))
    (replays / "slippijs-geckoCodes.slp").write_bytes(
        replay_path("slippijs-geckoCodes.slp").read_bytes()
    )
    ingest([replays], folder / "out", IngestConfig(workers=1), progress=False)
    table = pq.read_table(folder / "out" / "games.parquet").to_pylist()
    return {Path(r["source"]).name: r for r in table}


def test_the_cut_replays_have_no_game_end_and_the_same_frames(rows):
    for name in ("peppi-v2.0.slp", "slippijs-facingDirection.slp"):
        data = without_game_end(replay_path(name).read_bytes())
        assert rows[name]["end_method"] == "GAME"
        assert rows[f"noend-{name}"]["end_method"] is None
        assert rows[f"noend-{name}"]["frames"] == rows[name]["frames"]
        assert len(data) < replay_path(name).stat().st_size
    game = peppi_py.read_slippi(str(replay_path("peppi-v2.0.slp")))
    assert game.end is not None


@pytest.mark.parametrize("name", ["peppi-v2.0.slp", "slippijs-facingDirection.slp"])
def test_a_human_1v1_without_game_end_is_usable_and_keeps_its_winner(name, rows):
    full, cut = rows[name], rows[f"noend-{name}"]
    assert full["usable_1v1"] and full["p1_type"] == full["p2_type"] == "human"
    assert cut["normal_end"] is True and cut["usable_1v1"] is True
    assert cut["winners"] == full["winners"] and len(cut["winners"]) == 1  # a stock-out


def test_without_game_end_a_cpu_game_is_not_usable(rows):
    # peppi-game.slp is a human against a CPU (a test recording): no GameEnd does not vouch for it
    cut = rows["noend-peppi-game.slp"]
    assert "cpu" in (cut["p1_type"], cut["p2_type"]) and cut["is_1v1"]
    assert cut["end_method"] is None and cut["normal_end"] is False and not cut["usable_1v1"]
    # the one real game without a GameEnd in games/: human v CPU and 217 playable frames
    gecko = rows["slippijs-geckoCodes.slp"]
    assert gecko["end_method"] is None and gecko["playable_frames"] < 300
    assert gecko["normal_end"] is False and gecko["usable_1v1"] is False


def test_a_cut_off_game_has_no_winner():
    players = [{"port": "P1", "team": None}, {"port": "P2", "team": None}]
    assert winners(None, None, players, {1: 2, 2: 3}, {1: 10.0, 2: 50.0}, {}) == []
    assert winners(None, None, players, {1: 0, 2: 1}, {1: 0.0, 2: 80.0}, {}) == [2]
