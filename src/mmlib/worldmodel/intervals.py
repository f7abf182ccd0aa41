"""95 % intervals for world-model figures from resampling whole validation games.

Frames of one game are not independent (one matchup, one stage, one pair of players), so the
unit resampled is the game: each resample draws the validation games with replacement (a seeded
multinomial count per game, games in the order given), and a figure is recomputed on it. Two
predictors scored on the same frames share their resamples, so their difference gets a paired
interval, and `verdict` calls it: an interval that holds 0 is a tie.

Two ways to recompute a figure:
- `ratio`: a ratio of per-game sums (sum of errors / sum of frames): one matrix product;
- `rows`: any function of the rows (an F1, a balanced accuracy), rerun on each resample's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

N_BOOT = 1000
LEVEL = 0.95
MIN_GAMES = 10  # fewer validation games get intervals but no verdict: a handful proves nothing
TOO_FEW = "too few games"


def weights(n_games: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n_boot, n_games) counts: how often each game appears in each resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_games, np.full(n_games, 1 / n_games), size=n_boot).astype(float)


def per_game(values: np.ndarray, game: np.ndarray, n_games: int) -> np.ndarray:
    """Sums of `values` (N,) per game (`game`: each row's game index) -> (n_games,)."""
    return np.bincount(game, weights=np.asarray(values, dtype=np.float64), minlength=n_games)


def ratio(num: np.ndarray, den: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """A ratio of per-game sums (n_games,) over all games, and over each resample (n_boot,)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(num.sum() / den.sum()), (w @ num) / (w @ den)


def rows(w: np.ndarray, game: np.ndarray) -> Iterator[np.ndarray]:
    """Each resample's row indices: every row of each game, repeated as often as it is drawn."""
    order = np.argsort(game, kind="stable")
    bounds = np.searchsorted(game[order], np.arange(w.shape[1] + 1))
    spans = [order[bounds[g] : bounds[g + 1]] for g in range(w.shape[1])]
    for counts in w.astype(int):
        yield np.concatenate([spans[g] for g in np.repeat(np.arange(len(spans)), counts)])


def resampled(fn: Callable[[np.ndarray], float], w: np.ndarray, game: np.ndarray) -> np.ndarray:
    """`fn(row indices) -> figure` over each resample (n_boot,)."""
    return np.array([fn(idx) for idx in rows(w, game)], dtype=np.float64)


def figure(point: float, draws: np.ndarray, digits: int = 4) -> dict:
    """A value and its percentile interval (None where it has no finite resample)."""
    finite = draws[np.isfinite(draws)]
    if not np.isfinite(point) or len(finite) == 0:
        return {"value": None, "lo": None, "hi": None}
    tail = 50 * (1 - LEVEL)
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    r = lambda x: float(f"{x:.{digits}g}")  # noqa: E731
    return {"value": r(point), "lo": r(lo), "hi": r(hi)}


def better(points: dict[str, float], higher_is_better: bool) -> str:
    """The key whose point value is best (the first of equals)."""
    sign = 1 if higher_is_better else -1
    return max(points, key=lambda k: sign * points[k])


def paired(a: tuple, b: tuple, higher_is_better: bool, n_games: int) -> tuple[dict, str | None]:
    """a - b on the same resamples (a, b: (point, draws)) as a figure, and its `verdict`."""
    diff = figure(a[0] - b[0], a[1] - b[1])
    return diff, verdict(diff, higher_is_better, n_games)


def verdict(diff: dict, higher_is_better: bool, n_games: int) -> str | None:
    """`beats`, `loses` or `tie` for a difference (a - b) figure: `beats` when its interval lies
    on the good side of 0; `too few games` below MIN_GAMES."""
    lo, hi = diff["lo"], diff["hi"]
    if lo is None:
        return None
    if n_games < MIN_GAMES:
        return TOO_FEW
    if not higher_is_better:
        lo, hi = -hi, -lo
    return "beats" if lo > 0 else "loses" if hi < 0 else "tie"
