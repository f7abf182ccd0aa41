"""Intervals over games: the bootstrap on per-game counts whose answer is known, the calibrated
copy-last loss against a per-frame computation, and the per-perspective sums on fox's real
validation games against `evaluate`'s window metrics (their reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmlib.train import evaluate, intervals

HEADS = evaluate.HEAD_NAMES


def synthetic(model_acc, copy_acc, n_games: int, seed: int = 0, frames: int = 1000) -> dict:
    """Per-perspective sums (one perspective a game) with binomial noise around the given
    accuracies; the model's loss is lower than copy-last's exactly where its accuracy is higher."""
    rng = np.random.default_rng(seed)
    shape = (n_games, len(HEADS))
    f = np.full(shape, float(frames))
    correct = rng.binomial(frames, model_acc, shape).astype(float)
    copy = correct if copy_acc is None else rng.binomial(frames, copy_acc, shape).astype(float)
    return {
        "frames": f,
        "correct": correct,
        "copy_correct": copy,
        "change_frames": f - copy,
        "change_correct": np.minimum(correct, f - copy) / 2,
        "held_frames": copy,
        "false_change": copy / 10,
        "nll": f - correct,
        "copy_nll": f - copy,
        "freq_nll": 2 * f,
    }


def games(n: int) -> list[str]:
    return [f"{i:032x}" for i in range(n)]


def test_a_clearly_better_model_beats_copy_last_and_a_worse_one_loses():
    s = intervals.bootstrap(synthetic(0.9, 0.8, 30), games(30), n_boot=500)
    for h in HEADS:
        assert s["heads"][h]["acc_vs_copy_last"]["verdict"] == "beats"
        assert s["heads"][h]["loss_vs_copy_last"]["verdict"] == "beats"  # lower loss
        assert s["heads"][h]["acc"]["lo"] > s["heads"][h]["copy_last_acc"]["hi"]
    assert s["total"]["loss_vs_copy_last"]["verdict"] == "beats"
    worse = intervals.bootstrap(synthetic(0.7, 0.8, 30), games(30), n_boot=500)
    assert worse["heads"]["main"]["acc_vs_copy_last"]["verdict"] == "loses"
    assert worse["heads"]["main"]["loss_vs_copy_last"]["verdict"] == "loses"
    assert (s["n_games"], s["n_perspectives"], s["n_frames"]) == (30, 30, 30_000)


def test_fewer_than_ten_games_get_intervals_but_no_verdict():
    """One validation game (the smoke set's) gives a zero-width interval: a margin of 0.0002
    must not read as `beats`."""
    one = intervals.bootstrap(synthetic(0.9, 0.8, 1), games(1), n_boot=200)
    nine = intervals.bootstrap(synthetic(0.9, 0.8, 9), games(9), n_boot=200)
    for s in (one, nine):
        assert s["heads"]["main"]["acc_vs_copy_last"]["verdict"] == intervals.TOO_FEW
        assert s["total"]["loss_vs_copy_last"]["verdict"] == intervals.TOO_FEW
    f = one["heads"]["main"]["acc_vs_copy_last"]
    assert f["lo"] == f["hi"] == f["value"] > 0  # what used to be called a win
    assert (
        intervals.bootstrap(synthetic(0.9, 0.8, 10), games(10), n_boot=200)["heads"]["main"][
            "acc_vs_copy_last"
        ]["verdict"]
        == "beats"
    )


def test_a_model_equal_to_copy_last_ties():
    s = intervals.bootstrap(synthetic(0.8, None, 30), games(30), n_boot=500)
    for h in HEADS:
        diff = s["heads"][h]["acc_vs_copy_last"]
        assert diff == {"value": 0.0, "lo": 0.0, "hi": 0.0, "verdict": "tie"}
        assert s["heads"][h]["loss_vs_copy_last"]["verdict"] == "tie"


def test_the_interval_shrinks_with_more_games():
    def width(n: int) -> float:
        acc = intervals.bootstrap(synthetic(0.9, 0.8, n, frames=50), games(n))["heads"]["c"]["acc"]
        assert acc["lo"] <= acc["value"] <= acc["hi"]
        return acc["hi"] - acc["lo"]

    assert width(400) < 0.5 * width(25)


def test_each_figure_is_a_ratio_of_sums_not_a_mean_of_ratios():
    sums = synthetic(0.5, 0.5, 2)
    sums["frames"][:] = [[100.0] * 4, [900.0] * 4]
    sums["correct"][:] = [[100.0] * 4, [0.0] * 4]  # 100 % of a short game, 0 % of a long one
    s = intervals.bootstrap(sums, games(2), n_boot=200)
    assert s["heads"]["main"]["acc"]["value"] == 0.1  # not 0.5
    assert (s["heads"]["main"]["acc"]["lo"], s["heads"]["main"]["acc"]["hi"]) == (0.0, 1.0)


def test_the_two_perspectives_of_a_ditto_are_resampled_together():
    """Game A's players score 100 % and 0 %, game B's 50 %: every resample of games gives 50 %,
    while resampling perspectives would not."""
    sums = synthetic(0.5, 0.5, 3)
    sums["frames"][:] = 100.0
    sums["correct"][:] = np.array([100.0, 0.0, 50.0])[:, None]
    acc = intervals.bootstrap(sums, ["a" * 32, "a" * 32, "b" * 32], n_boot=500)
    assert acc["n_games"] == 2 and acc["n_perspectives"] == 3
    assert acc["heads"]["button"]["acc"] == {"value": 0.5, "lo": 0.5, "hi": 0.5}
    apart = intervals.bootstrap(sums, ["a" * 32, "c" * 32, "b" * 32], n_boot=500)
    assert apart["heads"]["button"]["acc"]["hi"] - apart["heads"]["button"]["acc"]["lo"] > 0.3


def test_the_bootstrap_is_seeded():
    sums, ids = synthetic(0.9, 0.8, 20), games(20)
    assert intervals.bootstrap(sums, ids, seed=3) == intervals.bootstrap(sums, ids, 2000, 3)
    assert intervals.bootstrap(sums, ids, seed=3) != intervals.bootstrap(sums, ids, seed=4)


def test_calibrated_copy_last_loss_is_the_per_frame_cost_summed():
    rng = np.random.default_rng(1)
    k = 5
    freq = rng.dirichlet(np.ones(k))
    p = 0.83
    current = rng.integers(0, k, 400)
    target = np.where(rng.random(400) < 0.8, current, rng.integers(0, k, 400))
    by_frame = [
        -math.log(p) if c == t else -math.log((1 - p) * freq[t] / (1 - freq[c]))
        for c, t in zip(current, target, strict=True)
    ]
    assert intervals.copy_last_nll(current, target, p, freq).sum() == pytest.approx(sum(by_frame))
    yard = intervals.Yardsticks({h: freq for h in HEADS}, {h: p for h in HEADS})
    moves = intervals.transition_counts(current, target, k)
    counts = intervals.Counts(["x"], np.zeros((1, 4, 4)), {h: moves[None] for h in HEADS})
    sums = counts.sums(yard)
    assert sums["copy_nll"][0] == pytest.approx([sum(by_frame)] * 4)
    assert sums["freq_nll"][0] == pytest.approx([-np.log(freq[target]).sum()] * 4)
    assert sums["copy_correct"][0, 0] == (current == target).sum()
    # a proper distribution over the next class, whatever the current one
    assert np.exp(-yard.copy_cost("c")).sum(1) == pytest.approx(np.ones(k))


def test_train_yardsticks_count_stays_within_perspectives(fox_shards):
    train = fox_shards / "train"
    targets = np.load(train / "targets.npy")
    offsets = np.load(train / "offsets.npy")
    windows = {name: np.load(train / f"{name}.npy") for name in ("floats", "targets")}
    yard = intervals.train_yardsticks(train)
    current = evaluate.previous_classes(windows)
    for i, h in enumerate(HEADS):
        stays = total = 0
        for a, b in zip(offsets[:-1], offsets[1:], strict=True):
            # the input's current class is the previous row's target (targets are frame t + 1)
            assert np.array_equal(current[h][a + 1 : b], targets[a : b - 1, i])
            stays += int((targets[a + 1 : b, i] == targets[a : b - 1, i]).sum())
            total += b - a - 1
        assert yard.p_stay[h] == pytest.approx(stays / total)
        counts = np.bincount(targets[:, i], minlength=evaluate.N_CLASSES[h]) + 1
        assert yard.freq[h] == pytest.approx(counts / counts.sum())


def test_scored_sums_agree_with_the_window_metrics(fox_shards, fox_policy):
    """Every validation window, scored perspective by perspective, against `predict` and
    `head_metrics` on the same windows at once."""
    from mmlib.checkpoint.directory import load_policy

    policy = load_policy(fox_policy)
    window = policy.config.max_seq_len
    counts = intervals.score(
        policy.model, intervals.split_perspectives(fox_shards, window), 64, "cpu"
    )
    yard = intervals.train_yardsticks(fox_shards / "train")
    sums = {k: v.sum(0) for k, v in counts.sums(yard).items()}
    windows = evaluate.val_windows(fox_shards / "val", window, intervals.NO_THINNING)
    loss, preds = evaluate.predict(policy.model, windows, 64, policy.device)
    targets = evaluate.targets_by_head(windows)
    ref = evaluate.head_metrics(preds, targets, evaluate.previous_classes(windows))
    train_targets = np.load(fox_shards / "train" / "targets.npy", mmap_mode="r")
    freq = evaluate.frequency_baseline(train_targets, targets)
    copy = evaluate.copy_last_accuracy(windows)
    frames = windows["targets"].shape[0] * window
    for k, h in enumerate(HEADS):
        assert sums["frames"][k] == frames
        assert sums["correct"][k] / frames == pytest.approx(ref[h]["acc"])
        assert sums["change_frames"][k] == ref[h]["change_frames"]
        assert sums["change_correct"][k] / sums["change_frames"][k] == pytest.approx(
            ref[h]["change_acc"]
        )
        assert sums["false_change"][k] / sums["held_frames"][k] == pytest.approx(
            ref[h]["false_change"]
        )
        assert sums["nll"][k] / frames == pytest.approx(loss[h], rel=1e-5)
        assert sums["freq_nll"][k] / frames == pytest.approx(freq[h])
        assert sums["copy_correct"][k] / frames == pytest.approx(copy[h])
    s = intervals.summary(counts, yard, n_boot=200)
    assert s["n_games"] == len(set(counts.games)) and s["n_frames"] == frames
    table = intervals.markdown(s)
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == [*HEADS, "total"]
    assert all(len(r.split(" | ")) == len(rows[0].split(" | ")) for r in rows)
