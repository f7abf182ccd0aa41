"""Whole-game resampling for the world-model figures (`worldmodel.intervals`): a resample is made
of whole games, as often as each is drawn, and a paired difference is called only on enough
games."""

from __future__ import annotations

import numpy as np

from mmlib.worldmodel import intervals


def test_a_resample_repeats_whole_games_as_often_as_drawn():
    game = np.array([2, 0, 1, 0, 2, 2, 1, 0])  # rows of three games, interleaved
    w = np.array([[2, 0, 1], [0, 3, 0], [1, 1, 1]], dtype=float)
    first, second, every = intervals.rows(w, game)
    assert sorted(first.tolist()) == sorted([1, 3, 7] * 2 + [0, 4, 5])  # game 0 twice, game 2 once
    assert sorted(second.tolist()) == [2, 2, 2, 6, 6, 6]
    assert sorted(every.tolist()) == list(range(len(game)))


def test_each_resample_draws_as_many_games_as_there_are_seeded():
    w = intervals.weights(7, n_boot=300, seed=5)
    assert w.shape == (300, 7) and (w.sum(1) == 7).all()
    assert (w == intervals.weights(7, n_boot=300, seed=5)).all()
    assert not (w == intervals.weights(7, n_boot=300, seed=6)).all()
    assert 0.3 < (w == 0).mean() < 0.45  # a game is left out of about (6/7)^7 = 34 % of them


def test_a_ratio_of_per_game_sums_matches_the_resampled_rows():
    rng = np.random.default_rng(0)
    game = rng.integers(0, 5, 400)
    err = rng.random(400)
    w = intervals.weights(5, n_boot=50)
    num = intervals.per_game(err, game, 5)
    den = intervals.per_game(np.ones(400), game, 5)
    value, draws = intervals.ratio(num, den, w)
    assert np.isclose(value, err.mean())
    assert np.allclose(draws, intervals.resampled(lambda idx: err[idx].mean(), w, game))


def test_a_difference_is_called_only_clear_of_zero_and_on_enough_games():
    clear = {"value": 0.2, "lo": 0.1, "hi": 0.3}
    assert intervals.verdict(clear, True, 10) == "beats"
    assert intervals.verdict(clear, False, 10) == "loses"  # an error that grew
    assert intervals.verdict({"value": 0.1, "lo": -0.1, "hi": 0.3}, True, 10) == "tie"
    assert intervals.verdict(clear, True, 9) == intervals.TOO_FEW
    assert intervals.verdict({"value": None, "lo": None, "hi": None}, True, 10) is None
