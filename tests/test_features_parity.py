"""The parity test that keeps play honest: every game both parsers read gives the same features
through the training path (the ingest's frame table, vectorised) and the play path (libmelee's
file console, one `GameState` at a time), on every frame, within 1e-5.

Rollback is aligned first: libmelee keeps the first copy of a re-sent frame, so the training
path here reads the replay with `keep_copy="first"`; another test checks that this is the
stored ingest table wherever a game has no rollback.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from conftest import INGESTED, needs_replays, replay_path

from mmlib.data.replay import FIRST_PLAYABLE_FRAME, read_frames_table
from mmlib.data.store import read_frames
from mmlib.features import build, raw, transforms
from mmlib.features.columns import FLAGS, OLD_NUMERIC
from mmlib.features.online import OnlineFeatures
from mmlib.features.replay_console import ReplayConsole, ReplayError
from mmlib.features.schema import FeatureSchema

pytestmark = needs_replays
SCHEMA = FeatureSchema(
    numeric=tuple(c.name for c in OLD_NUMERIC if c.ingest is not None),
    flags=tuple(f.name for f in FLAGS),
)
TOLERANCE = 1e-5
# libmelee 0.47.6 cannot read these (SPEC 1.6): v0.1 post-frames lack bytes it reads without a
# guard; an unknown event id stops its event loop.
LIBMELEE_FAILS = {"peppi-v0.1.slp", "slippijs-test.slp", "peppi-unknown_event.slp"}


@functools.cache
def _libmelee(name: str):
    """Per ordered port pair: libmelee's raw columns (`OnlineRaw`, one push per frame) and its
    own off_stage / moonwalkwarning values; plus the replay's version."""
    console = ReplayConsole(replay_path(name))
    states = list(console)
    ports = sorted(states[-1].players)
    out = {}
    for me, opp in itertools.permutations(ports, 2):
        online = raw.OnlineRaw(me, opp, console.version)
        rows = [r for s in states if (r := online.push(s)) is not None]
        own = {
            "off_stage": np.array([s.players[me].off_stage for s in states if me in s.players]),
            "moonwalkwarning": np.array(
                [s.players[me].moonwalkwarning for s in states if me in s.players]
            ),
        }
        out[me, opp] = raw.concat(rows), own
    return out, console.version


def _compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    bad = []
    for key in a:
        diff = np.abs(a[key].astype(np.float64) - b[key].astype(np.float64))
        if diff.size and diff.max() > TOLERANCE:
            first = np.argwhere(diff > TOLERANCE)[0].tolist()
            bad.append(f"{key}: {int((diff > TOLERANCE).sum())} values differ, first at {first}")
    return bad


PAIRS = [n for n in INGESTED if n not in LIBMELEE_FAILS]
# `make test-fast` checks parity on a few replays of different versions; the sweep over every one
# of the 62 is slow (most of the suite's time outside the pipeline run)
FAST_PAIRS = {"peppi-v3.18.slp", "peppi-buttons_abxy.slp", "slippijs-lCancel.slp"}
SLOW = pytest.mark.slow
SWEEP = [n if n in FAST_PAIRS else pytest.param(n, marks=SLOW) for n in PAIRS]


@pytest.mark.parametrize("name", sorted(LIBMELEE_FAILS))
def test_libmelee_really_cannot_read_the_excluded_replays(name):
    with pytest.raises(ReplayError) as raised:  # libmelee's own error, as one line
        list(ReplayConsole(replay_path(name)))
    assert isinstance(raised.value.__cause__, (TypeError, ValueError))


@pytest.mark.parametrize("name", SWEEP)
def test_training_and_play_paths_give_the_same_features(name, games):
    """Every frame (countdown included), both perspectives, raw and normalised."""
    table, version = read_frames_table(replay_path(name), keep_copy="first")
    online, libmelee_version = _libmelee(name)
    assert libmelee_version == version
    stage = games[name]["stage_id"]
    for (me, opp), (play_raw, _) in online.items():
        train_raw = raw.from_table(table, version, stage, me, opp, first_frame=-123)
        np.testing.assert_array_equal(train_raw["frame"], play_raw["frame"])
        assert train_raw["frame"][0] == -123 and len(train_raw["frame"]) > 100
        plain = _compare(build.features(train_raw, SCHEMA), build.features(play_raw, SCHEMA))
        assert not plain, f"{name} P{me} vs P{opp}: " + "; ".join(plain)
        values = build.features(train_raw, SCHEMA)["self_numeric"]
        finite = {n: values[:, i] for i, n in enumerate(SCHEMA.numeric)}
        norm = build.Norm(transforms.fit_mimic_norm(finite), transforms.fit_norm_stats(finite))
        normed = _compare(
            build.features(train_raw, SCHEMA, norm), build.features(play_raw, SCHEMA, norm)
        )
        assert not normed, f"{name} P{me} vs P{opp}, normalised: " + "; ".join(normed)


@pytest.mark.parametrize("name", SWEEP)
def test_derived_flags_follow_libmelee(name, games):
    """off_stage equals libmelee's own on every frame; moonwalkwarning on every frame of a
    Slippi >= 3.0 replay without rollback (libmelee updates its previous action only at Frame
    Bookends, and from the discarded copy when a frame is re-sent; SPEC 1.5)."""
    online, version = _libmelee(name)
    for play_raw, own in online.values():
        flags = build.features(play_raw, SCHEMA)["self_flags"]
        off_stage = flags[:, SCHEMA.flags.index("off_stage")]
        np.testing.assert_array_equal(off_stage, own["off_stage"][: len(off_stage)])
        moonwalk = flags[:, SCHEMA.flags.index("moonwalkwarning")]
        if version < (3, 0, 0):
            assert not own["moonwalkwarning"].any()  # libmelee's quirk, not ours
        elif games[name]["rollback_frames_dropped"] == 0:
            np.testing.assert_array_equal(moonwalk, own["moonwalkwarning"][: len(moonwalk)])


@pytest.mark.parametrize(
    "name", ["peppi-v3.18.slp", pytest.param("slippijs-rollbackFrameTest.slp", marks=SLOW)]
)
def test_online_features_give_the_shard_rows(name, games):
    """The play-time object yields, frame by frame, the packed rows training would store."""
    table, version = read_frames_table(replay_path(name), keep_copy="first")
    train_raw = raw.from_table(table, version, games[name]["stage_id"], 1, 2)
    values = build.features(train_raw, SCHEMA)["self_numeric"]
    finite = {n: values[:, i] for i, n in enumerate(SCHEMA.numeric)}
    norm = build.Norm(transforms.fit_mimic_norm(finite), transforms.fit_norm_stats(finite))
    ints, floats = build.pack(build.features(train_raw, SCHEMA, norm))
    online = OnlineFeatures(1, 2, SCHEMA, norm, version)
    rows = [r for s in ReplayConsole(replay_path(name)) if (r := online.push(s)) is not None]
    np.testing.assert_array_equal(np.concatenate([r[0] for r in rows]), ints)
    np.testing.assert_allclose(np.concatenate([r[1] for r in rows]), floats, atol=TOLERANCE)


def test_stored_ingest_is_the_first_copy_table_without_rollback(ingested, games):
    """The stored game (last copies) gives the features of the first-copy table on every game
    with no rollback, so the parity above holds for what training reads."""
    checked = 0
    for name in PAIRS:
        row = games[name]
        if row["rollback_frames_dropped"]:
            continue
        stored = read_frames(ingested, row["md5"])
        first, version = read_frames_table(replay_path(name), keep_copy="first")
        ports = [p for p in (1, 2, 3, 4) if row[f"p{p}_character_ext"] is not None]
        a = raw.from_table(stored, version, row["stage_id"], ports[0], ports[1])
        b = raw.from_table(first, version, row["stage_id"], ports[0], ports[1])
        assert not _compare(build.features(a, SCHEMA), build.features(b, SCHEMA)), name
        assert a["frame"][0] == FIRST_PLAYABLE_FRAME
        checked += 1
    assert checked >= 50
