"""The streaming policy on a real replay: the cached step is the banded full forward (a), and while
the window fills it is the published fixed-window recompute (b); the neutral mock frame; sampling.

Float32 throughout; the policy is a briefly trained fox smoke checkpoint (`fox_policy`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import needs_replays, replay_path

from mmlib.checkpoint.directory import load_policy
from mmlib.data import ids
from mmlib.features import build, controller
from mmlib.features.replay_console import ReplayConsole
from mmlib.models.bc import BCTransformer
from mmlib.models.config import preset
from mmlib.models.streaming import Stream
from mmlib.play.policy import STANDING, StreamingPolicy, neutral_raw, sample

REPLAY = "peppi-v2.0.slp"  # fox (port 2) vs falco (port 1), Slippi 2.0
PORT, OPP = 2, 1
FRAMES = 420  # > 2 * 180: the window slides and the cache buffer compacts
TOL = 1e-4

pytestmark = needs_replays


@pytest.fixture(scope="module")
def policy(fox_policy):
    return load_policy(fox_policy)


@pytest.fixture(scope="module")
def states():
    out = []
    for state in ReplayConsole(replay_path(REPLAY)):
        out.append(state)
        if len(out) >= FRAMES + 200:
            break
    return out


def run(policy, states, prefill: str):
    """The policy's logits on every fed frame, and the rows it fed (ints, floats)."""
    bot = StreamingPolicy(policy, PORT, OPP, prefill=prefill)
    check = policy.features(PORT, OPP)
    logits, ints, floats = [], [], []
    for state in states:
        out = bot.logits(state)
        row = check.push(state)
        assert (out is None) == (row is None)
        if out is not None:
            logits.append(out)
            ints.append(row[0])
            floats.append(row[1])
        if len(logits) == FRAMES:
            break
    stacked = {h: torch.stack([o[h] for o in logits]) for h in logits[0]}
    return (
        stacked,
        torch.from_numpy(np.concatenate(ints)).long(),
        torch.from_numpy(np.concatenate(floats)),
    )


def max_diff(a: dict, b: dict) -> float:
    return max(float((a[h] - b[h]).abs().max()) for h in a)


def test_cached_step_is_the_banded_forward_over_the_whole_stream(policy, states):
    logits, ints, floats = run(policy, states, prefill="none")
    assert len(ints) == FRAMES > 2 * policy.config.max_seq_len
    with torch.inference_mode():
        full, _ = policy.model(ints[None], floats[None], window=policy.config.max_seq_len)
    assert max_diff(logits, {h: v[0] for h, v in full.items()}) <= TOL


def test_cached_step_is_the_fixed_window_recompute_while_filling(policy, states):
    logits, ints, floats = run(policy, states, prefill="none")
    W = policy.config.max_seq_len
    with torch.inference_mode():
        for t in [0, 1, 2, 17, 90, W - 2, W - 1]:  # the published path: the model on frames 0..t
            window, _ = policy.model(ints[None, : t + 1], floats[None, : t + 1])
            assert max_diff({h: v[t] for h, v in logits.items()},
                            {h: v[0, -1] for h, v in window.items()}) <= TOL, t  # fmt: skip
        # after the window slides the two computations differ (measured in play.drift)
        late, _ = policy.model(ints[None, FRAMES - W :], floats[None, FRAMES - W :])
    assert (
        max_diff({h: v[-1] for h, v in logits.items()}, {h: v[0, -1] for h, v in late.items()}) > 0
    )


def test_neutral_prefill_is_the_recompute_over_mock_frames(policy, states):
    logits, ints, floats = run(policy, states, prefill="neutral")
    first = next(s for s in states if s.frame >= -39)
    mock_i, mock_f = build.pack(
        build.features(neutral_raw(first, PORT, OPP), policy.schema, policy.norm)
    )
    W = policy.config.max_seq_len
    window_i = torch.cat([torch.from_numpy(mock_i).long().repeat(W - 1, 1), ints[:1]])
    window_f = torch.cat([torch.from_numpy(mock_f).repeat(W - 1, 1), floats[:1]])
    with torch.inference_mode():
        ref, _ = policy.model(window_i[None], window_f[None])
    assert (
        max_diff({h: v[0] for h, v in logits.items()}, {h: v[0, -1] for h, v in ref.items()}) <= TOL
    )
    none, _, _ = run(policy, states, prefill="none")
    assert max_diff({h: v[0] for h, v in logits.items()}, {h: v[0] for h, v in none.items()}) > 1e-3


def test_neutral_frame_is_standing_at_rest(policy, states):
    first = next(s for s in states if s.frame >= -39)
    raw = neutral_raw(first, PORT, OPP)
    feats = build.features(raw, policy.schema, policy.norm)
    ints, floats = build.pack(feats)
    assert ints[0, 3] == ints[0, 4] == ids.action_index(STANDING)
    assert ints[0, 1] == build.features(raw, policy.schema)["self_character"][0]
    assert feats["self_flags"].sum() == feats["opp_flags"].sum() == 0
    raw_numeric = build.features(raw, policy.schema)["self_numeric"][0]  # before normalisation
    named = dict(zip(policy.schema.numeric, raw_numeric, strict=True))
    assert named["stock"] == 4 and named["shield_strength"] == 60 and named["percent"] == 0
    at_rest = controller.one_hot(0, 0, controller.BTN_NONE, 0)
    np.testing.assert_array_equal(feats["self_controller"][0], at_rest)


def test_stream_rejects_a_window_longer_than_the_table():
    model = BCTransformer(preset("tiny"))
    with pytest.raises(ValueError, match="window"):
        Stream(model, window=model.cfg.rel_table + 1)


def test_sampling_follows_the_softmax_and_is_seeded():
    logits = torch.tensor([2.0, 0.0, 1.0, -1.0])
    g = torch.Generator().manual_seed(3)
    counts = np.bincount([sample(logits, 1.0, g) for _ in range(20000)], minlength=4) / 20000
    np.testing.assert_allclose(counts, torch.softmax(logits, 0).numpy(), atol=0.015)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert [sample(logits, 1.0, g1) for _ in range(50)] == [
        sample(logits, 1.0, g2) for _ in range(50)
    ]
    # a low temperature sharpens; zero is the argmax
    g = torch.Generator().manual_seed(0)
    assert np.mean([sample(logits, 0.1, g) == 0 for _ in range(500)]) > 0.99
    assert sample(logits, 0.0, g) == 0


def test_sampling_falls_back_to_argmax_on_nan():
    g = torch.Generator().manual_seed(0)
    assert sample(torch.tensor([0.0, float("nan"), 3.0]), 1.0, g) == 2
    assert sample(torch.tensor([float("inf"), 0.0, 1.0]), 1.0, g) == 0
    assert sample(torch.tensor([-float("inf"), 5.0, 1.0]), 1.0, g) == 1


def test_policy_is_deterministic_given_the_seed(policy, states):
    def choices(seed):
        bot = StreamingPolicy(policy, PORT, OPP, seed=seed)
        return [d.choice for s in states[:300] if (d := bot.step(s)) is not None]

    a, b, c = choices(0), choices(0), choices(1)
    assert a == b and len(a) > 100
    assert a != c


def test_head_temperatures_from_one_value_or_a_mapping():
    from mmlib.play.policy import head_temperatures

    assert head_temperatures(0.5) == {"shoulder": 0.5, "c": 0.5, "main": 0.5, "button": 0.5}
    assert head_temperatures({"button": 0.25}) == {
        "shoulder": 1.0, "c": 1.0, "main": 1.0, "button": 0.25
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown heads"):
        head_temperatures({"buttons": 0.5})
    with pytest.raises(ValueError, match="must be >= 0"):
        head_temperatures({"button": -1})
