"""World-model encoding: the published widths, values read from real games, the targets and the
split, and no NaN or inf anywhere (the published parser's hitstun NaNs stopped a run)."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from conftest import needs_replays

from mmlib.data import store
from mmlib.errors import UsageError
from mmlib.worldmodel import data, encoding
from mmlib.worldmodel.encoding import EncodingConfig


@pytest.mark.parametrize(
    "kwargs, player, frame",
    [
        ({"version": "v1"}, 56, 112),
        ({"version": "v2"}, 72, 148),
        ({"version": "v2.1"}, 89, 182),
        ({"version": "v2.1", "state_age_embed": True}, 96, 196),  # v2.2+1a (SPEC 6.1.6)
    ],
)
def test_widths_match_the_published_encodings(kwargs, player, frame):
    cfg = EncodingConfig(**kwargs)
    assert (cfg.player_dim, cfg.frame_dim) == (player, frame)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(UsageError, match="not one of"):
        EncodingConfig(version="v9")
    with pytest.raises(UsageError, match="contract"):
        EncodingConfig(contract="future")
    with pytest.raises(UsageError, match="v1 has no state_age"):
        EncodingConfig(version="v1", state_age_embed=True)


@pytest.fixture(scope="module")
def usable(ingested):
    """md5s of the ingested games and fixtures a world model can use."""
    md5s = data.select_games(store.read_games(ingested))
    assert len(md5s) >= 11  # the 11 games of ../shared/replays/games, plus fixtures that qualify
    return md5s


@needs_replays
@pytest.mark.parametrize(
    "kwargs", [{"version": "v2.1", "state_age_embed": True}, {"version": "v1"}]
)
def test_every_usable_game_encodes_finite(ingested, usable, kwargs):
    frames = data.encode(ingested, usable, EncodingConfig(**kwargs))
    assert np.isfinite(frames.floats).all()
    assert frames.floats.shape[1:] == (2, len(frames.cfg.floats))
    for k, name in enumerate(frames.cfg.ints):
        assert (
            0 <= frames.ints[..., k].min() and frames.ints[..., k].max() < encoding.VOCAB[name][0]
        )
    assert len(frames.offsets) == len(usable) + 1 and frames.offsets[-1] == frames.n_frames


@needs_replays
def test_values_come_from_the_replay(ingested, usable):
    """x is position * 0.05, sticks are in [0, 1], ground 65535 (airborne) is 0, player 0 is the
    lower port, and frames start at the first playable frame."""
    md5 = usable[0]
    cfg = EncodingConfig(version="v2.1")
    frames = data.encode(ingested, [md5], cfg)
    raw = store.read_frames(ingested, md5)
    low = min(raw["port"].to_pylist())
    lead = raw.filter(pc.and_(pc.equal(raw["port"], low), pc.invert(raw["follower"])))
    lead = lead.filter(pc.greater_equal(lead["frame"], -39)).sort_by("frame")
    x = lead["post_position_x"].to_numpy()
    np.testing.assert_allclose(frames.floats[:, 0, cfg.fi("x")], x * 0.05, rtol=1e-6)
    stick = frames.floats[:, :, cfg.fi("main_x")]
    assert stick.min() >= 0 and stick.max() <= 1
    airborne = lead["post_airborne"].to_numpy() == 1
    ground = frames.ints[:, 0, cfg.ii("ground")]
    assert (ground[lead["post_ground"].to_numpy() == 65535] == 0).all()
    assert (frames.floats[airborne, 0, cfg.fi("on_ground")] == 0).all()
    assert len(frames.floats) == len(lead)


def _clip(cfg, width=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = width + cfg.lead
    floats = torch.rand(3, c, 2, len(cfg.floats), generator=g)
    ints = torch.randint(0, 3, (3, c, 2, len(cfg.ints)), generator=g)
    return floats, ints


def test_input_contract_targets_are_next_frame_deltas():
    cfg = EncodingConfig(version="v2.1")
    floats, ints = _clip(cfg)
    tgt = encoding.targets(cfg, floats, ints)
    x = cfg.fi("x")
    # position i predicts frame i + 1: continuous layout (percent, x, y, shield) x 2 players
    np.testing.assert_allclose(
        tgt["continuous"][:, :, 1], floats[:, 1:, 0, x] - floats[:, :-1, 0, x]
    )
    np.testing.assert_allclose(
        tgt["continuous"][:, :, 5], floats[:, 1:, 1, x] - floats[:, :-1, 1, x]
    )
    assert torch.equal(tgt["dynamics"][:, :, 1], floats[:, 1:, 0, cfg.fi("stocks")])  # absolute
    assert torch.equal(tgt["action"], ints[:, 1:, :, cfg.ii("action")])
    assert torch.equal(tgt["prev_action"], ints[:, :-1, :, cfg.ii("action")])
    ctrl = encoding.next_ctrl(cfg, floats)
    assert ctrl.shape == (3, 6, 26)
    assert torch.equal(ctrl[:, :, :13], floats[:, 1:, 0, cfg.ctrl_slice])


def test_state_contract_skips_a_frame_and_has_no_controller():
    cfg = EncodingConfig(version="v2", contract="state")
    floats, ints = _clip(cfg)
    tgt = encoding.targets(cfg, floats, ints)
    x = cfg.fi("x")
    np.testing.assert_allclose(
        tgt["continuous"][:, :, 1], floats[:, 2:, 0, x] - floats[:, 1:-1, 0, x]
    )
    assert torch.equal(tgt["prev_action"], ints[:, :-2, :, cfg.ii("action")])
    assert encoding.next_ctrl(cfg, floats) is None


@needs_replays
def test_split_is_by_replay_and_seeded(ingested):
    cfg = EncodingConfig()
    train, val = data.split(ingested, cfg, 0.25, 4)
    assert set(train.md5s).isdisjoint(val.md5s) and val.md5s
    again, _ = data.split(ingested, cfg, 0.25, 4)
    assert again.md5s == train.md5s and np.array_equal(again.floats, train.floats)
    other, _ = data.split(ingested, cfg, 0.25, 5)
    assert other.md5s != train.md5s
