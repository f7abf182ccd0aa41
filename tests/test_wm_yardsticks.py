"""Dead reckoning (the physics yardstick) and the priors that give a world model its yardsticks
for free: the rule against the replay's own columns, its rollout, and each prior's effect."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from conftest import needs_replays

from mmlib.data import store
from mmlib.worldmodel import data, encoding, evaluate, losses, models, readout, yardsticks
from mmlib.worldmodel.config import ModelConfig
from mmlib.worldmodel.encoding import SCALE, EncodingConfig


@pytest.fixture(scope="module")
def usable(ingested):
    return data.select_games(store.read_games(ingested))


def _by_hand(ingested, md5: str) -> np.ndarray:
    """|x(t) - x(t-1) - v(t-1)| and the same for y, for the lower port, straight from the
    ingested columns (game units), every playable frame."""
    t = store.read_frames(ingested, md5)
    low = min(t["port"].to_pylist())
    t = t.filter(pc.and_(pc.equal(t["port"], low), pc.invert(t["follower"])))
    t = t.filter(pc.greater_equal(t["frame"], -39)).sort_by("frame")
    col = {n: t[n].to_numpy(zero_copy_only=False).astype(np.float64) for n in t.column_names}
    air = col["post_airborne"] == 1
    vx = np.where(air, col["post_velocities_self_x_air"], col["post_velocities_self_x_ground"])
    vx = vx + col["post_velocities_knockback_x"]
    vy = col["post_velocities_self_y"] + col["post_velocities_knockback_y"]
    dx = np.diff(col["post_position_x"]) - vx[:-1]
    dy = np.diff(col["post_position_y"]) - vy[:-1]
    return np.abs(np.stack([dx, dy], 1))


@needs_replays
def test_dead_reckoning_is_the_rule_on_the_replays_own_columns(ingested, usable):
    """The yardstick's one-frame errors, from the encoded frames, are the rule computed by hand
    from the ingest (to float32 rounding), and it beats copy-last-frame by far."""
    cfg = EncodingConfig()
    frames = data.encode(ingested, usable[:3], cfg)
    for g, md5 in enumerate(usable[:3]):
        game = frames.game(g)
        f, i, _ = game.clip(np.array([0]), game.n_frames - 1)
        tgt = encoding.targets(cfg, f, i)
        reckoned = yardsticks.continuous_delta(tgt["prev_velocity"], tgt["prev_binary"])
        pos = yardsticks.position_index()
        ours = (reckoned - tgt["continuous"])[0][:, pos[:2]].abs().numpy() / SCALE["x"]
        hand = _by_hand(ingested, md5)
        np.testing.assert_allclose(ours, hand, atol=2e-3)
        copy = tgt["continuous"][0][:, pos[:2]].abs().numpy() / SCALE["x"]
        assert ours.mean() < 0.7 * copy.mean()


def test_the_rule_moves_x_by_the_ground_or_air_speed_and_holds_percent_and_shield():
    velocity = torch.zeros(1, 10)
    binary = torch.zeros(1, 6)
    velocity[0, :5] = torch.tensor([1.0, 2.0, 3.0, 0.5, -0.25])  # p0 air x, y, ground x, kb x, y
    velocity[0, 5:] = torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0])
    binary[0, 3 + 2] = 1  # p1 on the ground
    d = yardsticks.continuous_delta(velocity, binary)
    assert d.tolist() == [[0, 1.5, 1.75, 0, 0, 3.0, 2.0, 0]]
    np.testing.assert_array_equal(yardsticks.continuous_delta(velocity.numpy(), binary.numpy()), d)


def test_the_rollout_adds_the_last_velocity_every_frame_within_the_clamps():
    enc = EncodingConfig()
    last = np.zeros((1, 2, len(enc.floats)), np.float32)
    last[0, 0, enc.fi("speed_air_x")] = 2 * SCALE["x"]
    last[0, 1, enc.fi("x")] = 290 * SCALE["x"]
    last[0, 1, enc.fi("on_ground")] = 1
    last[0, 1, enc.fi("speed_ground_x")] = 4 * SCALE["x"]
    out = yardsticks.rollout(enc, last, 5)
    np.testing.assert_allclose(out[0, :, 0, enc.fi("x")] / SCALE["x"], [2, 4, 6, 8, 10], rtol=1e-6)
    np.testing.assert_allclose(out[0, :, 1, enc.fi("x")] / SCALE["x"], [294, 298, 300, 300, 300])
    assert (out[0, :, :, enc.fi("percent")] == 0).all()


PRIORS = {"scale": "mad", "residual": True, "hold": True}


@pytest.mark.parametrize("arch", ["mlp", "mamba2"])
def test_priors_add_two_scalars_at_most_and_keep_the_recurrence_exact(arch):
    kw = {"arch": arch, "d_model": 64, "n_layers": 1, "chunk": 8, "hidden": 64, "trunk": 32}
    plain, primed = models.build(ModelConfig(**kw)), models.build(ModelConfig(**kw, **PRIORS))
    assert models.n_params(primed) - models.n_params(plain) == 2  # action and jumps holds
    assert set(plain.state_dict()) < set(primed.state_dict())
    if arch == "mlp":
        return
    torch.manual_seed(0)
    enc = primed.cfg.encoding
    floats = torch.rand(2, 20, 2, len(enc.floats))
    ints = torch.randint(0, 3, (2, 20, 2, len(enc.ints)))
    stage = torch.zeros(2, dtype=torch.int64)
    ctrl = floats[:, 1:, :, enc.ctrl_slice].flatten(-2)
    primed.eval()
    with torch.inference_mode():
        full = primed(floats[:, :19], ints[:, :19], stage, ctrl)
        state = primed.seed(floats[:, :5], ints[:, :5], stage)
        stepped = [primed.predict(state, ctrl[:, 4])]
        for t in range(5, 19):
            state = primed.step(state, floats[:, t], ints[:, t])
            stepped.append(primed.predict(state, ctrl[:, t]))
    for name in full:
        got = torch.stack([s[name] for s in stepped], 1)
        assert (got - full[name][:, 4:]).abs().max() <= 1e-4, name


@needs_replays
@pytest.mark.parametrize("arch", ["mlp", "mamba2"])
def test_an_untrained_model_with_priors_starts_at_its_yardsticks(ingested, usable, arch):
    """With its heads' weights zeroed, a residual model predicts dead reckoning's positions and
    a hold model copy-last-frame's actions: the teacher-forced figures equal the yardsticks'."""
    frames = data.encode(ingested, usable[:2], EncodingConfig())
    kw = {"arch": arch, "d_model": 32, "n_layers": 1, "headdim": 16, "hidden": 32, "trunk": 16}
    model = models.build(ModelConfig(**kw, residual=True, hold=True)).eval()
    with torch.no_grad():
        for layer in model.heads.out.values():
            layer.weight.zero_()
            layer.bias.zero_()
    m = evaluate.teacher_forced_metrics(evaluate.teacher_forced(model, frames))
    assert m["position_mae"] == pytest.approx(m["dead_reckoning"]["position_mae"], rel=1e-3)
    assert m["action_acc"] == m["copy_last_frame"]["action_acc"]
    assert m["dead_reckoning"]["position_mae"] < m["copy_last_frame"]["position_mae"]


@needs_replays
def test_standardized_heads_are_fit_on_the_residual_targets_and_scored_in_their_units(
    ingested, usable
):
    frames = data.encode(ingested, usable[:2], EncodingConfig())
    cfg = ModelConfig(arch="mlp", hidden=32, trunk=16, scale="std", residual=True)
    mean, std = readout.fit_scales(cfg, frames)
    parts = []
    for g in range(2):
        game = frames.game(g)
        f, i, _ = game.clip(np.array([0]), game.n_frames - 1)
        tgt = encoding.targets(cfg.encoding, f, i)
        reckoned = yardsticks.continuous_delta(tgt["prev_velocity"], tgt["prev_binary"])
        parts.append((tgt["continuous"] - reckoned)[0].double())
    direct = torch.cat(parts)
    torch.testing.assert_close(mean["continuous"], direct.mean(0).float(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(
        std["continuous"], direct.std(0, correction=0).float(), atol=1e-6, rtol=1e-4
    )
    _, mad = readout.fit_scales(dataclasses.replace(cfg, scale="mad"), frames)
    torch.testing.assert_close(
        mad["continuous"], (direct - direct.mean(0)).abs().mean(0).float(), atol=1e-6, rtol=1e-4
    )
    assert (mad["continuous"] < std["continuous"]).all()  # heavy tails: respawns, landings
    model = models.build(cfg)
    model.heads.set_scales(mean, std)
    scales = model.heads.scales()
    assert set(scales) == {"continuous", "velocity", "dynamics"}
    out = {"continuous": torch.ones(4, 8)}
    tgt = {"continuous": torch.zeros(4, 8)}
    got = losses.losses(out, tgt, scales=scales)["continuous"]
    s = scales["continuous"]
    assert got == pytest.approx(float((1 / s**2).mean()), rel=1e-5)
