"""The ingest on the real replays: what it stores, checked against peppi-py and libmelee.

Everything here reads the session ingest (conftest.py) of games/ + fixtures/ + rejects/. Faults
(re-runs, killed runs, hangs, panics) are in test_ingest_faults.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
import sys

import numpy as np
import peppi_py
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import (
    INGESTED,
    MISALIGNED,
    READABLE,
    REPLAYS,
    libmelee_frames,
    needs_replays,
    replay_names,
    replay_path,
    stream,
)
from peppi_py import _peppi

from mmlib.data import schema

pytestmark = needs_replays


def md5(name: str) -> str:
    return hashlib.md5(replay_path(name).read_bytes()).hexdigest()


def version_of(row: dict) -> tuple[int, int, int]:
    return tuple(int(p) for p in row["slippi_version"].split("."))


def keep_last(ids: np.ndarray) -> np.ndarray:
    """Row indices of the last occurrence of each frame id, in frame order (SPEC 1.1)."""
    last = {frame: row for row, frame in enumerate(ids.tolist())}
    return np.array([last[f] for f in sorted(last)])


def peppi_streams(game):
    """(port 1-4, follower, peppi `Data`) for every stream of a peppi-py game."""
    for player, port_data in zip(game.start.players, game.frames.ports, strict=True):
        yield int(player.port) + 1, False, port_data.leader
        if port_data.follower is not None:
            yield int(player.port) + 1, True, port_data.follower


def peppi_field(obj, rest: str):
    """The peppi-py dataclass array behind a flattened column name (`post_state_flags_3` ->
    `data.post.state_flags[3]`); None where the version does not record it; KeyError (the class)
    where the dataclass API has no such field."""
    if isinstance(obj, tuple):
        head, _, tail = rest.partition("_")
        return peppi_field(obj[int(head)], tail) if head.isdigit() else KeyError
    if not dataclasses.is_dataclass(obj):
        return obj if rest == "" else KeyError
    for f in dataclasses.fields(obj):
        if rest == f.name or rest.startswith(f.name + "_"):
            value = getattr(obj, f.name)
            if value is None:
                return None
            found = peppi_field(value, rest[len(f.name) + 1 :])
            if found is not KeyError:
                return found
    return KeyError


# Columns the dataclass API drops, read from peppi's raw Arrow instead: (pre|post, field).
RAW_ONLY = {
    "post_last_hit_by_instance": ("post", "last_hit_by_instance"),
    "post_instance_id": ("post", "instance_id"),
    "pre_raw_analog_cstick_x": ("pre", "raw_analog_cstick_x"),
    "pre_raw_analog_cstick_y": ("pre", "raw_analog_cstick_y"),
}


def assert_same(ours: pa.Array, theirs: pa.Array, what: str) -> None:
    """Same type, same nulls, exactly equal values (NaN equals NaN)."""
    assert ours.type == theirs.type, what
    np.testing.assert_array_equal(
        ours.is_valid().to_numpy(zero_copy_only=False),
        theirs.is_valid().to_numpy(zero_copy_only=False),
        err_msg=f"{what}: nulls",
    )
    np.testing.assert_array_equal(
        ours.drop_null().to_numpy(zero_copy_only=False),
        theirs.drop_null().to_numpy(zero_copy_only=False),
        err_msg=what,
    )


# --- what is stored, what is rejected -------------------------------------------------------


def test_every_game_is_stored_once_by_md5(ingested, games):
    assert sorted(games) == sorted(INGESTED)
    assert len(list((ingested / "games").glob("*.parquet"))) == len(INGESTED)
    for name in replay_names("games"):
        row = games[name]
        assert row["md5"] == md5(name)
        assert (ingested / "games" / f"{row['md5']}.parquet").is_file()
        assert row["source"] == str(replay_path(name))


# What each bad file is rejected as: peppi's OSError classes (SPEC 1.6), and our own checks.
REJECT_REASONS = {
    "peppi-corrupt.slp": "io_error",
    "slippijs-BTTDK.slp": "not_vs_mode",
    "slippijs-FodPlatforms.slp": "io_error",
    "slippijs-Whispy.slp": "io_error",
    "slippijs-homeRun_jp.slp": "not_vs_mode",
    "slippijs-homeRun_positive.slp": "not_vs_mode",
    "slippijs-incomplete.slp": "io_error",
    "synthetic-empty.slp": "empty",
    "synthetic-random-bytes.slp": "not_slippi",
    "synthetic-text.slp": "not_slippi",
    "synthetic-truncated-techTester.slp": "io_error",
}


@pytest.mark.parametrize("name", replay_names("rejects"))
def test_every_reject_has_one_row_and_no_game(name, ingested, games, rejects):
    (row,) = rejects[name]
    assert row["reason"] == REJECT_REASONS[name]
    assert row["message"] and row["md5"] == md5(name)
    assert name not in games
    assert not (ingested / "games" / f"{row['md5']}.parquet").exists()
    if row["reason"] != "empty":  # peppi's own words (it says "failed to fill" on empty files)
        with pytest.raises(OSError) as e:
            peppi_py.read_slippi(str(replay_path(name)))
        assert row["message"] == str(e.value)


def test_misaligned_fixtures_are_rejected_and_the_others_stored(ingested, games, rejects):
    for name in MISALIGNED:
        (row,) = rejects[name]
        assert row["reason"] == "misaligned" and "2.2" in row["message"]
        assert not (ingested / "games" / f"{md5(name)}.parquet").exists()
    fixtures = set(replay_names("fixtures"))
    assert fixtures - MISALIGNED <= set(games)
    assert set(rejects) == set(replay_names("rejects")) | MISALIGNED


# --- values equal peppi-py's own ------------------------------------------------------------


@pytest.mark.parametrize("name", INGESTED)
def test_values_equal_peppi(name, games, game_table):
    """Every raw column of every stream equals peppi-py's array at the last occurrence of each
    frame id; columns newer than the replay's version are null."""
    path = str(replay_path(name))
    game, raw = peppi_py.read_slippi(path), _peppi.read_slippi(path, False)
    version, table = game.start.slippi.version, game_table(name)
    keep = pa.array(keep_last(game.frames.id.to_numpy()))
    streams = list(peppi_streams(game))
    assert len(table) == len(streams) * len(keep)

    if version >= (3, 0, 0):
        items = pc.list_value_length(raw.frames.field("item")).take(keep).cast(pa.uint8())
    for port, follower, data in streams:
        ours = stream(table, port, follower)
        assert_same(ours["frame"].combine_chunks(), game.frames.id.take(keep), "frame")
        present = data.pre.state.is_valid().take(keep)
        assert_same(ours["present"].combine_chunks(), present, "present")
        if version >= (3, 0, 0):
            assert_same(ours["item_count"].combine_chunks(), items, "item_count")
        else:
            assert ours["item_count"].null_count == len(ours)
        role = raw.frames.field("ports").field(f"P{port}")
        role = role.field("follower" if follower else "leader")
        for column in schema.RAW_COLUMNS.values():
            mine = ours[column.name].combine_chunks()
            if column.since > version:
                assert mine.null_count == len(mine), column.name
                continue
            if column.name in RAW_ONLY:
                part, field = RAW_ONLY[column.name]
                theirs = role.field(part).field(field)
            else:
                theirs = peppi_field(data, column.name)
            assert theirs is not None and theirs is not KeyError, column.name
            assert_same(mine, theirs.take(keep), f"{name} P{port} {column.name}")


def test_the_comparison_covers_every_column_and_the_named_cases(games):
    """The dataclass API resolves every raw column but the four raw-only ones, and the hard cases
    (rollback, Ice Climbers, Slippi 0.1 to 3.18) are among the games compared above."""
    game = peppi_py.read_slippi(str(replay_path("peppi-v3.18.slp")))
    data = game.frames.ports[0].leader
    unresolved = {c for c in schema.RAW_COLUMNS if peppi_field(data, c) in (None, KeyError)}
    assert unresolved == set(RAW_ONLY)
    named = {
        "slippijs-rollbackFrameTest.slp",
        "peppi-duplicate_game_end.slp",
        "slippijs-throwGrab.slp",
        "peppi-ics2.slp",
        "peppi-v2.0.slp",
        "peppi-game.slp",
        "peppi-v3.18.slp",
        "peppi-v0.1.slp",
    }
    assert named <= set(INGESTED)
    assert games["peppi-game.slp"]["slippi_version"] == "1.0.0"


def test_nana_rows_are_null_where_she_is_absent(game_table):
    """peppi-ics2.slp (3.12): Nana is absent on some frames; those rows stay, all fields null."""
    nana = stream(game_table("peppi-ics2.slp"), 1, True)
    absent = nana.filter(pc.invert(nana["present"]))
    assert 0 < len(absent) < len(nana)
    for column in schema.RAW_COLUMNS:
        assert absent[column].null_count == len(absent), column
    assert absent["hitstun_left"].null_count == len(absent)
    assert absent["item_count"].null_count == 0  # a frame-level column


# --- rollback -------------------------------------------------------------------------------

# SPEC 1.1's table of the replays with repeated frame ids: extra rows per replay.
ROLLBACK_ROWS = {
    "slippijs-rollbackFrameTest.slp": 4292,
    "peppi-duplicate_game_end.slp": 1494,
    "slippijs-throwGrab.slp": 397,
    "peppi-ics2.slp": 11,
    "peppi-v3.16.slp": 7,
    "slippijs-consistencyTest_NessVFox-Absorb.slp": 5,
    "slippijs-facingDirection.slp": 1,
}


def test_frames_are_unique_and_contiguous_per_stream(games, game_table):
    for name in INGESTED:
        t = game_table(name)
        frames = t["frame"].to_numpy()
        keys = t["port"].to_numpy().astype(np.int64) * 2 + t["follower"].to_numpy()
        for key in np.unique(keys):
            f = frames[keys == key]
            np.testing.assert_array_equal(f, np.arange(-123, -123 + len(f)), err_msg=name)
            assert len(f) == games[name]["frames"], name
        order = np.lexsort((frames, keys))
        assert (order == np.arange(len(t))).all(), f"{name}: not sorted by port, follower, frame"


def test_rollback_rows_dropped_equal_peppis_repeats(games):
    dropped = {}
    for name in INGESTED:
        ids = _peppi.read_slippi(str(replay_path(name)), False).frames.field("id").to_numpy()
        row = games[name]
        assert row["rollback_frames_dropped"] == len(ids) - len(np.unique(ids)), name
        assert row["frames"] == len(np.unique(ids)), name
        if row["rollback_frames_dropped"]:
            dropped[name] = row["rollback_frames_dropped"]
    assert dropped == ROLLBACK_ROWS


def test_rollback_keeps_the_last_copy_of_p2s_inputs(game_table):
    """rollbackFrameTest: the first copy of a re-sent frame holds P2's predicted inputs."""
    name = "slippijs-rollbackFrameTest.slp"
    game = peppi_py.read_slippi(str(replay_path(name)))
    ids = game.frames.id.to_numpy()
    first, last = {}, {}
    for row, frame in enumerate(ids.tolist()):
        first.setdefault(frame, row)
        last[frame] = row
    inputs = ["buttons", "joystick_x", "joystick_y", "cstick_x", "cstick_y", "triggers"]

    def inputs_of(data) -> np.ndarray:
        return np.stack([peppi_field(data.pre, c).to_numpy() for c in inputs], axis=1)

    table = game_table(name)
    for port, data in ((1, game.frames.ports[0].leader), (2, game.frames.ports[1].leader)):
        theirs = inputs_of(data)
        ours = np.stack([stream(table, port, False)[f"pre_{c}"].to_numpy() for c in inputs], 1)
        changed = [f for f in last if not np.array_equal(theirs[first[f]], theirs[last[f]])]
        if port == 1:
            assert changed == []  # the local player's inputs are never predicted
            continue
        assert len(changed) > 1000
        for f in changed:
            np.testing.assert_array_equal(ours[f + 123], theirs[last[f]])
            assert not np.array_equal(ours[f + 123], theirs[first[f]])


# --- fixtures: other modes, old versions, PAL, names, placements ----------------------------


def test_not_1v1_fixtures_are_not_usable(games):
    multi = []
    for name in INGESTED:
        start = peppi_py.read_slippi(str(replay_path(name))).start
        row = games[name]
        assert row["n_players"] == len(start.players) and row["is_teams"] == start.is_teams
        if len(start.players) != 2 or start.is_teams:
            multi.append(name)
            assert row["is_1v1"] is False and row["usable_1v1"] is False, name
    assert {"peppi-crazy_name_tags.slp", "slippijs-controllerFixes.slp"} <= set(multi)
    assert sum("placementsTest_teams" in n or "placementsTest_ffa_1p2p" in n for n in multi) == 4


NEWER_THAN_0_1 = [
    "post_state_age",
    "post_misc_as",
    "hitstun_left",
    "post_velocities_self_y",
    "post_velocities_knockback_x",
    "post_hitlag",
    "item_count",
    "pre_percent",
    "pre_raw_analog_x",
    "post_state_flags_3",
]


@pytest.mark.parametrize("name", ["peppi-v0.1.slp", "slippijs-test.slp"])
def test_slippi_0_1_fields_newer_than_the_version_are_null(name, games, game_table):
    assert games[name]["slippi_version"] == "0.1.0" and games[name]["optional_fields"] == []
    t = game_table(name)
    for column in schema.COLUMNS:
        nulls = t[column.name].null_count
        assert nulls == (len(t) if column.since > (0, 1, 0) else 0), column.name
    assert all(t[c].null_count == len(t) for c in NEWER_THAN_0_1)


def test_a_3_18_game_has_every_field(games, game_table):
    t = game_table("peppi-v3.18.slp")
    assert t["present"].to_numpy().all()
    assert {c.name: t[c.name].null_count for c in schema.COLUMNS} == {
        c.name: 0 for c in schema.COLUMNS
    }


def test_pal_flag(games):
    assert games["slippijs-pal.slp"]["is_pal"] is True
    assert games["slippijs-ntsc.slp"]["is_pal"] is False
    for name in replay_names("fixtures"):
        if name in games:
            start = peppi_py.read_slippi(str(replay_path(name))).start
            assert games[name]["is_pal"] == start.is_pal, name
    assert games["peppi-v0.1.slp"]["is_pal"] is None  # not recorded before 1.5


@pytest.mark.parametrize(
    "name", ["peppi-netplay.slp", "slippijs-unranked_game1.slp", "peppi-v3.12.slp"]
)
def test_netplay_names_and_codes(name, games):
    game = peppi_py.read_slippi(str(replay_path(name)))
    row = games[name]
    for player in game.start.players:
        port = int(player.port) + 1
        name_, code = row[f"p{port}_netplay_name"], row[f"p{port}_connect_code"]
        meta = game.metadata["players"][str(port - 1)]["names"]
        assert "#" in code and "\uff03" not in code
        if player.netplay is None:  # before 3.9: only the metadata has them
            assert (name_, code) == (meta["netplay"], meta["code"])
        else:  # Game Start wins; peppi returns the full-width '#'
            assert "\uff03" in player.netplay.code
            ascii_code = player.netplay.code.replace("\uff03", "#")
            assert (name_, code) == (player.netplay.name, ascii_code)
            assert code == meta["code"]


TEAM_COLORS = {"red": 0, "blue": 1, "green": 2}
PLACEMENT_FIXTURES = [n for n in replay_names("fixtures") if "placementsTest" in n]


@pytest.mark.parametrize("name", PLACEMENT_FIXTURES)
def test_winners_match_the_fixture_names(name, games):
    """`ffa_1p2p3p_winner_3p` -> [3]; `teams_..._p1p2_blue..._winner_blue` -> [1, 2]."""
    body, winner = name.removesuffix(".slp").split("_winner_")
    teams = {
        color: [int(p) for p in re.findall(r"p(\d)", ports)]
        for ports, color in re.findall(r"((?:p\d)+)_(red|blue|green)", body)
    }
    row = games[name]
    if teams:
        assert row["winners"] == sorted(teams[winner])
        for color, ports in teams.items():
            assert all(row[f"p{p}_team"] == TEAM_COLORS[color] for p in ports)
    else:
        assert row["winners"] == [int(winner.removesuffix("p"))]
    end = peppi_py.read_slippi(str(replay_path(name))).end
    for player in end.players:
        assert row[f"p{int(player.port) + 1}_placement"] == player.placement
    assert any(row[f"p{p}_placement"] == 0 for p in row["winners"])


def test_follower_rows_only_for_ice_climbers(games, game_table):
    with_nana = 0
    for name in INGESTED:
        t, row = game_table(name), games[name]
        followers = set(pc.unique(t.filter(t["follower"])["port"]).to_pylist())
        ics = {p for p in (1, 2, 3, 4) if row[f"p{p}_character_ext"] == 14}
        assert followers == ics, name
        with_nana += bool(ics)
    assert with_nana >= 3  # ics.slp, ics2.slp, PichuVSelf


# --- golden values, checked with libmelee ----------------------------------------------------

# slippijs-techTester.slp (3.9, no rollback): Falcon (P1) vs Falcon (P2) on Final Destination.
# (frame, port, action, percent, stocks, x, y) as float32 literals.
GOLDEN = [
    (0, 1, "DASHING", 0.0, 4, -9.525016, 1e-4),
    (1000, 1, "LYING_GROUND_UP", 42.5, 4, -39.3502, 1e-4),
    (2500, 1, "DAMAGE_FLY_LOW", 104.119995, 4, -12.223308, 48.052612),
    (4000, 1, "STANDING", 43.9, 3, 1.12817, 1e-4),
    (5935, 1, "ON_HALO_DESCENT", 0.0, 1, 16.0, 46.149994),
    (0, 2, "STANDING", 0.0, 4, 32.873394, 1e-4),
    (2500, 2, "DASHING", 6.0, 4, -16.451334, 1e-4),
    (5935, 2, "DEAD_DOWN", 0.0, 0, -120.04667, -141.1799),
]


def test_golden_values_of_tech_tester(game_table):
    import melee

    name = "slippijs-techTester.slp"
    table = game_table(name)
    game = peppi_py.read_slippi(str(replay_path(name)))
    by_frame = {s.frame: s for s in libmelee_frames(name)}
    for frame, port, action, percent, stocks, x, y in GOLDEN:
        expected = (
            melee.Action[action].value,
            np.float32(percent),
            stocks,
            np.float32(x),
            np.float32(y),
        )
        row = stream(table, port, False).slice(frame + 123, 1).to_pylist()[0]
        assert row["frame"] == frame
        ours = tuple(row[f"post_{c}"] for c in ("state", "percent", "stocks"))
        ours += (row["post_position_x"], row["post_position_y"])
        post = game.frames.ports[port - 1].leader.post
        theirs = tuple(
            a[frame + 123].as_py()
            for a in (post.state, post.percent, post.stocks, post.position.x, post.position.y)
        )
        player = by_frame[frame].players[port]
        libmelee = (
            player.action.value,
            player.percent,
            player.stock,
            player.position.x,
            player.position.y,
        )
        assert ours == theirs == libmelee == expected, (frame, port)


@pytest.mark.parametrize("name", ["slippijs-techTester.slp", "peppi-items.slp"])
def test_every_frame_equals_libmelee(name, game_table):
    """On replays without rollback, libmelee's file console gives our values on every frame."""
    table = game_table(name)
    columns = [
        "post_position_x",
        "post_position_y",
        "post_percent",
        "post_stocks",
        "post_state",
        "post_direction",
        "post_shield",
        "post_jumps",
        "post_airborne",
    ]
    ours = {
        p: {c: stream(table, p, False)[c].to_numpy() for c in columns}
        for p in (1, 2, 3, 4)
        if len(stream(table, p, False))
    }
    states = libmelee_frames(name)
    assert len(states) == len(table) // len(ours)
    for state in states:
        for port, player in state.players.items():
            o = {c: v[state.frame + 123] for c, v in ours[port].items()}
            assert (player.position.x, player.position.y) == (
                o["post_position_x"],
                o["post_position_y"],
            )
            assert (player.percent, player.stock, player.action.value) == (
                o["post_percent"],
                o["post_stocks"],
                o["post_state"],
            )
            assert player.facing == (o["post_direction"] > 0)
            assert player.shield_strength == o["post_shield"]
            assert player.jumps_left == o["post_jumps"]
            assert player.on_ground == (not o["post_airborne"])


# --- the schema -----------------------------------------------------------------------------


def test_every_game_file_has_the_frame_schema(ingested):
    """FRAME_SCHEMA's names, order and types; a field may be marked required (non-nullable) in
    a game where that column has no nulls."""
    files = sorted((ingested / "games").glob("*.parquet"))
    assert len(files) == len(INGESTED)
    expected = [(f.name, f.type) for f in schema.FRAME_SCHEMA]
    for path in files:
        file_schema = pq.read_schema(path)
        assert [(f.name, f.type) for f in file_schema] == expected, path.name
        table = pq.read_table(path)
        for f in file_schema:
            assert f.nullable or table[f.name].null_count == 0, (path.name, f.name)


def test_optional_fields_are_what_the_data_holds(games, game_table):
    """A column listed in optional_fields is non-null on every present row; any other column
    newer than 0.1 is null on every row; and the list follows the version."""
    for name in INGESTED:
        row, t = games[name], game_table(name)
        assert row["optional_fields"] == schema.optional_columns(version_of(row))
        present = t.filter(t["present"])
        for column in schema.COLUMNS:
            if column.since == (0, 1, 0):
                assert present[column.name].null_count == 0, (name, column.name)
            elif column.name in row["optional_fields"]:
                assert present[column.name].null_count == 0, (name, column.name)
            else:
                assert t[column.name].null_count == len(t), (name, column.name)


def raw_field_names(frames: pa.StructArray) -> set[str]:
    """Flattened names (`pre_joystick_x`) of the leader fields of P-first in peppi's raw Arrow."""
    out: set[str] = set()

    def walk(type_: pa.DataType, prefix: str) -> None:
        if pa.types.is_struct(type_):
            for f in type_:
                walk(f.type, f"{prefix}_{f.name}")
        else:
            out.add(prefix)

    port_type = frames.type.field("ports").type.field(0).type.field("leader").type
    for part in ("pre", "post"):
        walk(port_type.field(part).type, part)
    return out


@pytest.mark.parametrize("name", READABLE)
def test_version_table_agrees_with_peppi(name):
    """A raw field is in peppi's Arrow iff the replay's version >= the column's `since`
    (triggers_physical_l/r excepted: peppi reads them from 0.1; they are garbage before 1.2)."""
    raw = _peppi.read_slippi(str(replay_path(name)), False)
    version = tuple(raw.start["slippi"]["version"])
    fields = raw_field_names(raw.frames)
    assert fields <= set(schema.RAW_COLUMNS)  # nothing peppi reads is left out
    for column in schema.RAW_COLUMNS.values():
        if column.name in ("pre_triggers_physical_l", "pre_triggers_physical_r"):
            assert column.name in fields
        else:
            assert (column.name in fields) == (version >= column.since), column.name
    assert ("item" in raw.frames.type.names) == (version >= (3, 0, 0))


def test_physical_triggers_before_1_2_are_garbage_in_peppi_and_null_in_ours(games, game_table):
    old = [n for n in INGESTED if version_of(games[n]) < (1, 2, 0)]
    assert len(old) >= 10
    for name in old:
        t = game_table(name)
        assert t["pre_triggers_physical_l"].null_count == len(t)
        assert t["pre_triggers_physical_r"].null_count == len(t)
        game = peppi_py.read_slippi(str(replay_path(name)))
        for _, _, data in peppi_streams(game):
            r = data.pre.triggers_physical.r.drop_null().to_numpy()
            l_ = data.pre.triggers_physical.l.drop_null().to_numpy()
            assert (r == np.float32(3.7793343e22)).all() and (l_ == 0).all(), name


# --- the command line -----------------------------------------------------------------------


def mmlib(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmlib", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_cli_missing_folder_is_one_line_and_status_2(tmp_path):
    missing = tmp_path / "no-such-folder"
    r = mmlib("ingest", str(missing), "--output", str(tmp_path / "out"), "-q", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and str(missing) in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_cli_rejects_only_exits_0(tmp_path):
    out = tmp_path / "out"
    r = mmlib(
        "ingest",
        str(REPLAYS / "rejects"),
        "--output",
        str(out),
        "-q",
        "--workers",
        "2",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "0 games ingested" in r.stdout and "11 rejected" in r.stdout
    assert pq.read_table(out / "games.parquet").num_rows == 0
    assert pq.read_table(out / "rejects.parquet").num_rows == len(replay_names("rejects"))
    assert list((out / "games").iterdir()) == []
