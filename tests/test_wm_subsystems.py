"""Subsystem decomposition: the five subsystems partition the predicted fields, their events mean
on real replays what they claim, perfect predictions score perfectly, each headline over resampled
games matches the metrics on the resample's rows, the verdict says no (or not measurable, or too
few games) when it should, and subsystem models train, run alone in a true world (every field
they do not own read from the replay) and recompose into a whole frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import needs_replays

from mmlib.data import store
from mmlib.errors import UsageError
from mmlib.worldmodel import (
    data,
    decomposition,
    encoding,
    evaluate,
    intervals,
    models,
    rollout,
    train,
)
from mmlib.worldmodel import subsystems as sub
from mmlib.worldmodel.config import ModelConfig, TrainConfig
from mmlib.worldmodel.encoding import SCALE, EncodingConfig

ENCODINGS = [
    EncodingConfig(version="v1"),
    EncodingConfig(),
    EncodingConfig(version="v2.1", state_age_embed=True),
]


@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: e.version)
def test_the_subsystems_partition_every_predicted_field(enc):
    sub.check_partition(enc)
    empty = {s.name for s in sub.SUBSYSTEMS if not s.owns(enc)}
    assert empty == ({"hit_detection"} if enc.version == "v1" else set())  # v1 has no hitlag
    full = enc.head_sizes()
    for head in enc.float_groups:  # the float columns split exactly among the owners
        owners = [s.owns(enc) for s in sub.SUBSYSTEMS if s.owns(enc)]  # () would mean all
        cols = [c for owns in owners for c in enc.head_columns(owns).get(head) or []]
        assert sorted(cols) == list(range(full[head]))


def test_owning_an_unknown_field_is_a_one_line_error():
    with pytest.raises(UsageError, match=r"v1 has no predicted fields \['hitlag'\]"):
        ModelConfig(encoding=EncodingConfig(version="v1"), owns=["hitlag"])
    cfg = ModelConfig.from_dict(ModelConfig(owns=("x", "guard")).to_dict())
    assert cfg.owns == ("x", "guard") and cfg.head_sizes() == {"continuous": 2, "guard": 10}


def test_restricted_targets_merge_back_into_the_full_targets():
    enc = EncodingConfig()
    g = torch.Generator().manual_seed(0)
    floats = torch.rand(3, 8, 2, len(enc.floats), generator=g)
    ints = torch.randint(0, 30, (3, 8, 2, len(enc.ints)), generator=g)
    tgt = encoding.targets(enc, floats, ints)
    parts = []
    for s in sub.SUBSYSTEMS:
        owned = encoding.restrict(enc, tgt, s.owns(enc))
        assert set(owned) - {k for k in owned if k.startswith("prev_")} == set(
            enc.head_sizes(s.owns(enc))
        )
        parts.append((s.owns(enc), {k: v.flatten(0, 1) for k, v in owned.items()}))
    merged = rollout.merge(enc, parts)
    for head in enc.float_groups:
        assert torch.equal(merged[head], tgt[head].flatten(0, 1))


def _perfect(enc: EncodingConfig, tgt: dict) -> dict:
    """The outputs of a model that is always right (logits +-10, one-hot categoricals)."""
    out = {h: tgt[h].copy() for h in enc.float_groups}
    out["binary"] = np.where(tgt["binary"] > 0.5, 10.0, -10.0)
    for name in (*enc.predicted_ints, "guard"):
        v = encoding.VOCAB[name][0] if name != "guard" else len(encoding.GUARD_STATES)
        out[name] = np.eye(v)[tgt[name]].reshape(len(tgt[name]), -1) * 10
    return out


@pytest.fixture(scope="module")
def small_split(ingested):
    return data.split(ingested, EncodingConfig(), 0.25, 4)


@needs_replays
def test_hit_onsets_on_real_replays_are_hitlag_starting_as_damage_or_shield_hits(ingested):
    """Every usable game: at an onset hitlag starts and then counts down a frame at a time; an
    onset frame is a hit that raises a percent or lands on a shield (or a clank); most damage
    frames are the victim's own onset (the rest: projectiles that give no hitlag)."""
    enc = EncodingConfig()
    frames = data.encode(ingested, data.select_games(store.read_games(ingested)), enc)
    ev = sub.replay_events(enc, frames.floats, frames.ints, frames.offsets)
    onset, damage = ev["hit_onset"], ev["damage"]
    assert onset.sum() > 300 and damage.sum() > 200
    hitlag = frames.floats[..., enc.fi("hitlag")] / SCALE["hitlag"]
    shield = frames.floats[..., enc.fi("shield")] / SCALE["shield"]
    action = frames.ints[..., enc.ii("action")]
    rows = np.nonzero(onset.any(1))[0]
    assert (hitlag[rows - 1][onset[rows]] == 0).all() and (hitlag[onset] >= 2).all()
    inside = hitlag[:-1] > 0
    step = (hitlag[1:] - hitlag[:-1])[inside]
    assert np.mean(np.isclose(step, -1)) > 0.99  # a second hit in hitlag restarts it, rarely
    shield_hit = (shield[rows] < shield[rows - 1] - 1e-3) | np.isin(action[rows], (181, 182))
    clank = np.isin(action[rows], (237, 238))  # rebound: two hitboxes met
    explained = damage[rows] | shield_hit | clank
    assert explained.any(1).mean() > 0.9
    assert (damage & onset).sum() / damage.sum() > 0.8


@needs_replays
def test_guard_states_follow_the_libmelee_action_ids(small_split):
    _, val = small_split
    action = val.ints[..., val.cfg.ii("action")]
    guard = encoding.GUARD.numpy()[action]
    names = dict(enumerate(encoding.GUARD_STATES))
    assert {names[g] for g in np.unique(guard)} >= {"none", "shield", "grabbing", "grabbed"}
    assert (action[guard == 1] >= 178).all() and (action[guard == 1] <= 182).all()
    for p in (0, 1):  # holding (GRAB_WAIT, GRAB_PUMMEL): the other player is grabbed
        holding = np.isin(action[:, p], (216, 217))
        assert holding.any() and (guard[holding, 1 - p] == 4).all()


@needs_replays
def test_perfect_predictions_score_perfectly_and_copy_last_frame_does_not(small_split):
    _, val = small_split
    enc = val.cfg
    model = models.build(ModelConfig(arch="mamba2", d_model=32, n_layers=1, headdim=16))
    tgt = evaluate.teacher_forced(model.eval(), val)["tgt"]
    figures = sub.teacher_forced_metrics(enc, {"out": _perfect(enc, tgt), "tgt": tgt})
    headline = {s.name: figures[s.name][s.headline] for s in sub.SUBSYSTEMS}
    assert headline == {
        "movement": 0.0,
        "hit_detection": 1.0,
        "damage_knockback": 0.0,
        "action_transitions": 1.0,
        "shield_grab": 1.0,
    }
    copy = figures["copy_last_frame"]
    assert copy["hit_detection"]["onset_f1"] == 0 and copy["action_transitions"]["change_acc"] == 0
    assert copy["damage_knockback"]["damage_mae_on_hits"] > 1  # hits do damage
    assert copy["movement"]["position_mae"] > 0.1


def _replay(n_games: int, rows: int = 120, seed: int = 0) -> tuple[dict, dict, np.ndarray]:
    """Synthetic decoded frames of `n_games` games: the truth and the frame before (also
    copy-last-frame's prediction), every field of every subsystem (N, 2), and each row's game.
    Hitlag starts at 8 and counts down, percent rises on some frames, actions and guard states
    hold for a while."""
    rng = np.random.default_rng(seed)
    n = n_games * rows
    hitlag = np.zeros((n + 1, 2))
    action, guard = np.zeros((n + 1, 2), int), np.zeros((n + 1, 2), int)
    for r in range(1, n + 1):
        hitlag[r] = np.where(rng.random(2) < 0.04, 8.0, np.maximum(hitlag[r - 1] - 1, 0))
        action[r] = np.where(rng.random(2) < 0.1, rng.integers(0, 30, 2), action[r - 1])
        guard[r] = np.where(rng.random(2) < 0.05, rng.choice([0, 1, 3, 4], 2), guard[r - 1])
    guard[1:6] = 2  # a shield break, in the first game only: most resamples have 4 states
    true = {f: rng.normal(size=(n, 2)) for f in ("x", "y", *VELOCITIES, "shield")}
    true["percent"] = np.where(rng.random((n, 2)) < 0.05, rng.integers(1, 20, (n, 2)), 0.0)
    true["stocks"] = np.full((n, 2), 4.0)
    for name, share in (("facing", 0.5), ("on_ground", 0.7), ("invulnerable", 0.1)):
        true[name] = rng.random((n, 2)) < share
    true["jumps"] = rng.integers(0, 3, (n, 2))
    true |= {"hitlag": hitlag[1:], "action": action[1:], "guard": guard[1:]}
    prev = true | {f: np.zeros((n, 2)) for f in ("x", "y", *VELOCITIES, "shield", "percent")}
    prev |= {"hitlag": hitlag[:-1], "action": action[:-1], "guard": guard[:-1]}  # no delta
    return true, prev, np.repeat(np.arange(n_games), rows)


VELOCITIES = ("speed_air_x", "speed_y", "speed_ground_x", "speed_attack_x", "speed_attack_y")


def _noisy(true: dict, scale: float, seed: int) -> dict:
    """A prediction: the truth with Gaussian noise on the float fields."""
    rng = np.random.default_rng(seed)
    return {k: v + rng.normal(0, scale, v.shape) if v.dtype == float else v
            for k, v in true.items()}  # fmt: skip


@pytest.mark.parametrize("name", [s.name for s in sub.SUBSYSTEMS])
def test_headline_sums_match_the_metrics_on_each_resample_of_whole_games(name):
    """The fast path (per-game sums, one matrix product) against `subsystem_metrics` rerun on the
    rows of each resample (`intervals.rows`): a game drawn twice counts twice."""
    s = sub.BY_NAME[name]
    true, prev, game = _replay(6, rows=80)
    rng = np.random.default_rng(1)
    guess = _noisy(true, 0.5, 2)
    for k, n_classes in (("action", 30), ("guard", 5)):  # right on about half the frames
        guess[k] = np.where(rng.random(true[k].shape) < 0.5, true[k], rng.integers(0, n_classes))
    guess["hitlag"] = np.where(rng.random(true["hitlag"].shape) < 0.1, 8.0, true["hitlag"])
    w = intervals.weights(6, n_boot=40, seed=3)
    value, draws = decomposition.headline_draws(s, guess, true, prev, game, w)

    def reference(idx):
        pick = lambda d: {k: v[idx] for k, v in d.items()}  # noqa: E731
        return sub.subsystem_metrics(name, pick(guess), pick(true), pick(prev))[s.headline]

    assert value == pytest.approx(reference(np.arange(len(game))), rel=1e-3)
    assert draws == pytest.approx(intervals.resampled(reference, w, game), rel=1e-3)
    assert np.ptp(draws) > 0  # the resamples differ


def _judge(name: str, guesses: dict, true: dict, prev: dict, game: np.ndarray) -> dict:
    s, n_games = sub.BY_NAME[name], int(game.max()) + 1
    w = intervals.weights(n_games, n_boot=500, seed=0)
    draws = {who: decomposition.headline_draws(s, g, true, prev, game, w)
             for who, g in guesses.items()}  # fmt: skip
    return decomposition.judge(s, draws, n_games)


def _movers(true: dict, prev: dict) -> dict:
    """Positions off by noise of 0.1 (standalone), 0.3 (monolith) and 0.5 (dead reckoning);
    copy-last-frame's, by the whole move (~0.8)."""
    return {"mamba2_monolith": _noisy(true, 0.3, 1), "standalone": _noisy(true, 0.1, 2),
            "copy_last_frame": prev, "dead_reckoning": _noisy(true, 0.5, 3)}  # fmt: skip


def test_a_standalone_model_that_beats_both_yardsticks_decomposes():
    true, prev, game = _replay(12)
    v = _judge("movement", _movers(true, prev), true, prev, game)
    assert v["yardstick"] == "dead_reckoning"  # the better one
    assert v["decomposes"] == "yes"
    assert v["standalone_vs_mamba2_monolith"] == "beats"
    assert v["mamba2_monolith_vs_yardstick"] == "beats"
    diff = v["differences"]["standalone_vs_yardstick"]
    assert diff["lo"] <= diff["value"] <= diff["hi"] < 0  # a lower error
    figures = v["intervals"]
    assert figures["standalone"]["hi"] < figures["dead_reckoning"]["lo"]


def test_three_validation_games_get_intervals_but_no_verdict():
    true, prev, game = _replay(3, rows=480)  # as many frames as 12 games above
    v = _judge("movement", _movers(true, prev), true, prev, game)
    assert v["decomposes"] == intervals.TOO_FEW
    assert (
        v["standalone_vs_mamba2_monolith"] == v["mamba2_monolith_vs_yardstick"] == intervals.TOO_FEW
    )
    assert v["differences"]["standalone_vs_yardstick"]["hi"] < 0  # what used to be called a win
    assert v["yardstick"] == "dead_reckoning" and v["intervals"]["standalone"]["lo"] is not None


def test_a_standalone_model_that_loses_to_copy_last_frame_does_not_decompose():
    """Guard states hold for ~20 frames: copy-last-frame misses only the changes; a standalone
    right on 80 % of frames loses to it, however it compares with the monolith."""
    true, prev, game = _replay(12)
    rng = np.random.default_rng(4)

    def right_on(share):
        guess = dict(true)
        wrong = rng.random(true["guard"].shape) > share
        guess["guard"] = np.where(wrong, (true["guard"] + 1) % 5, true["guard"])
        return guess

    guesses = {"mamba2_monolith": right_on(0.6), "standalone": right_on(0.8),
               "copy_last_frame": prev, "dead_reckoning": prev}  # fmt: skip
    v = _judge("shield_grab", guesses, true, prev, game)
    assert v["yardstick"] == "copy_last_frame"
    assert v["decomposes"] == "no"
    assert v["standalone_vs_mamba2_monolith"] == "beats"  # not the criterion
    assert v["mamba2_monolith_vs_yardstick"] == "loses"
    assert v["differences"]["standalone_vs_yardstick"]["hi"] < 0
    # as good as copy-last-frame, frame for frame: a tie, and no
    tie = _judge("shield_grab", guesses | {"standalone": prev}, true, prev, game)
    assert tie["differences"]["standalone_vs_yardstick"] == {"value": 0, "lo": 0, "hi": 0}
    assert tie["decomposes"] == "no"


def test_a_headline_that_is_the_same_for_all_or_undefined_is_not_measurable_here():
    """No model predicts a hit onset, and copy-last-frame never does: an F1 of 0 all round."""
    true, prev, game = _replay(12)
    assert sub.hit_onset(true["hitlag"], prev["hitlag"]).sum() > 50  # there are onsets to find
    never = dict(true, hitlag=np.zeros_like(true["hitlag"]))
    guesses = {"mamba2_monolith": never, "standalone": never, "copy_last_frame": prev,
               "dead_reckoning": prev}  # fmt: skip
    v = _judge("hit_detection", guesses, true, prev, game)
    assert v["intervals"]["standalone"] == {"value": 0, "lo": 0, "hi": 0}
    assert v["decomposes"] == decomposition.NOT_MEASURABLE
    assert v["standalone_vs_mamba2_monolith"] == decomposition.NOT_MEASURABLE
    # one model that finds some onsets makes it measurable (and the standalone then loses)
    some = _judge("hit_detection", guesses | {"mamba2_monolith": true}, true, prev, game)
    assert some["decomposes"] == "no" and some["standalone_vs_mamba2_monolith"] == "loses"
    # no damage frame in the validation games: the damage MAE is undefined
    calm = dict(true, percent=np.zeros_like(true["percent"]))
    guesses = {who: calm for who in ("mamba2_monolith", "standalone", "dead_reckoning")}
    v = _judge("damage_knockback", guesses | {"copy_last_frame": prev}, calm, prev, game)
    assert v["intervals"]["standalone"]["value"] is None
    assert v["decomposes"] == decomposition.NOT_MEASURABLE


@needs_replays
def test_subsystem_models_train_run_alone_and_recompose(small_split, tmp_path, monkeypatch):
    train_frames, val = small_split
    enc = val.cfg
    cfg = TrainConfig(epochs=1, batch=32, clip=20, threads=1)
    tiny = {"arch": "mamba2", "d_model": 32, "n_layers": 1, "headdim": 16, "chunk": 10}
    subs = {}
    for s in sub.SUBSYSTEMS:
        model_cfg = ModelConfig(**tiny, owns=s.owns(enc))
        model, result = train.train(
            model_cfg, cfg, train_frames.game(0), val, tmp_path / s.name, log=lambda _: None
        )
        assert np.isfinite(result.history.best_loss)
        assert set(model.heads.out) == set(enc.head_sizes(s.owns(enc)))
        train.save(tmp_path / f"{s.name}.pt", model, result, cfg)
        subs[s.name] = train.load(tmp_path / f"{s.name}.pt")
        assert subs[s.name].cfg.owns == s.owns(enc)
    starts = evaluate.rollout_starts(val, 20, 6, 0)
    f, i, _ = val.clip(starts, enc.context + 20 - enc.lead)
    true_f, true_i = f[:, enc.context :], i[:, enc.context :]

    # alone: every field the movement model does not own is the replay's
    pf, pi, pg = rollout.rollout(subs["movement"], val, starts, 20, oracle=True, guard=True)
    for name in ("percent", "shield", "hitlag", "stocks", "invulnerable"):
        assert torch.equal(pf[..., enc.fi(name)], true_f[..., enc.fi(name)]), name
    assert torch.equal(pi[..., enc.ii("action")], true_i[..., enc.ii("action")])
    assert not torch.equal(pf[..., enc.fi("x")], true_f[..., enc.fi("x")])
    assert torch.equal(pg, encoding.GUARD[true_i[..., enc.ii("action")]])

    with pytest.raises(UsageError, match="no model predicts"):
        rollout.rollout([subs["movement"], subs["hit_detection"]], val, starts, 5)
    # recomposed: each column of the merged heads has one owner, and comes from it
    owner = {}
    for s in sub.SUBSYSTEMS:
        for head, cols in enc.head_columns(s.owns(enc)).items():
            for c in range(enc.head_sizes(s.owns(enc))[head]) if cols is None else cols:
                assert (head, c) not in owner, f"{head}[{c}]: {owner[head, c]} and {s.name}"
                owner[head, c] = s.name
    whole = enc.head_sizes(enc.fields)  # every predicted field and guard
    assert set(owner) == {(head, c) for head, n in whole.items() for c in range(n)}
    merges, merge = [], rollout.merge

    def spy(enc_, parts):  # records each step's (owns, outputs) pairs and what merge made of them
        merged = merge(enc_, parts)
        merges.append((parts, merged))
        return merged

    monkeypatch.setattr(rollout, "merge", spy)
    alone = {}
    for name, model in subs.items():  # each model's first prediction, made on its own
        rollout.rollout(model, val, starts, 1, oracle=True)
        [(_, alone[name])] = merges.pop()[0]
    pf, pi, pg = rollout.rollout(list(subs.values()), val, starts, 20, guard=True)
    monkeypatch.undo()
    assert len(merges) == 20  # one merged frame per step
    for step, (parts, merged) in enumerate(merges):
        assert set(merged) == set(whole), step
        assert [owns for owns, _ in parts] == [m.cfg.owns for m in subs.values()]
        for name, (owns, out) in zip(subs, parts, strict=True):
            for head, cols in enc.head_columns(owns).items():
                got = merged[head] if cols is None else merged[head][:, cols]
                assert torch.equal(got, out[head]), (step, name, head)
                if step == 0:
                    assert torch.equal(got, alone[name][head]), (name, head)
    # ... and the first predicted frame is the one `advance` makes of the merged heads
    k, ctrl = enc.context, f[..., enc.ctrl_slice]
    first_f, first_i = rollout.advance(enc, f[:, k - 1], i[:, k - 1], merges[0][1], ctrl[:, k])
    assert torch.equal(pf[:, 0], first_f) and torch.equal(pi[:, 0], first_i)
    assert pf.shape == true_f.shape and torch.isfinite(pf).all()
    errors = sub.rollout_errors(val, starts, pf, pi, pg)
    assert set(sub.at_horizons(errors["model"], (1, 20))) == {s.name for s in sub.SUBSYSTEMS}
    assert sub.flops_per_frame(subs["movement"]) < sub.flops_per_frame(
        models.build(ModelConfig(**tiny))
    )
