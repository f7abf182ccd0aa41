"""Whether a subsystem decomposes (issue 27): its headline (`subsystems`) for every predictor,
with 95 % intervals over resampled validation games (`intervals`), and verdicts on paired
differences. A standalone model decomposes only when it beats the better of the two yardsticks
(copy-last-frame, dead reckoning); matching a monolith that loses to them shows nothing.

Every headline is a ratio of sums over frames (an MAE, an accuracy on some frames, an F1 as
2 TP / (predicted + true onsets), a mean of per-state recalls), so a resample is scored from
per-game sums: one matrix product, not a pass over its rows (`tests/test_wm_subsystems.py` checks
it against `subsystems.subsystem_metrics` on each resample's rows).
"""

from __future__ import annotations

import numpy as np

from mmlib.worldmodel import intervals
from mmlib.worldmodel.encoding import GUARD_STATES
from mmlib.worldmodel.subsystems import YARDSTICKS, Subsystem, hit_onset

NOT_MEASURABLE = "not measurable here"  # the headline is undefined, or the same for all
YES = "yes"
NO = "no"


def headline_terms(name: str, pred: dict, true: dict, prev: dict) -> tuple[np.ndarray, np.ndarray]:
    """A headline as sums over frames: numerators and denominators per row (N, k), so that a
    resample of whole games is scored from per-game sums (`headline_of`) without a pass over its
    rows. k is 1 but for shield_grab's balanced accuracy (one column per guard state)."""
    if name == "movement":
        num = np.abs(pred["x"] - true["x"]).sum(1) + np.abs(pred["y"] - true["y"]).sum(1)
        den = np.full(len(num), 4.0)  # x and y of two players
    elif name == "hit_detection":  # F1 = 2 TP / (predicted + true onsets)
        onset = hit_onset(true["hitlag"], prev["hitlag"])
        guess = hit_onset(pred["hitlag"], prev["hitlag"])
        num, den = 2 * (onset & guess).sum(1), onset.sum(1) + guess.sum(1)
    elif name == "damage_knockback":
        hit = true["percent"] > 1e-3
        num, den = (np.abs(pred["percent"] - true["percent"]) * hit).sum(1), hit.sum(1)
    elif name == "action_transitions":
        changed = true["action"] != prev["action"]
        num, den = ((pred["action"] == true["action"]) & changed).sum(1), changed.sum(1)
    elif name == "shield_grab":
        state = true["guard"][..., None] == np.arange(len(GUARD_STATES))  # (N, 2, states)
        num = (state & (pred["guard"] == true["guard"])[..., None]).sum(1)
        den = state.sum(1)
    else:
        raise KeyError(name)
    rows = len(num)
    return np.reshape(num, (rows, -1)).astype(np.float64), np.reshape(den, (rows, -1)) * 1.0


def headline_of(name: str, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """The headline from summed `headline_terms` (..., k) -> (...): NaN on no frames, as in
    `subsystem_metrics`, but an F1 with no onset on either side is 0 (as `_f1`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "hit_detection":
            return (num / np.maximum(den, 1))[..., 0]  # no onset either side: num is 0
        if name == "shield_grab":  # the mean recall over the states present
            present = den > 0
            return (num / np.where(present, den, 1)).sum(-1) / present.sum(-1)
        return (num / den)[..., 0]


def headline_draws(sub: Subsystem, pred: dict, true: dict, prev: dict, game: np.ndarray,
                   w: np.ndarray) -> tuple[float, np.ndarray]:  # fmt: skip
    """A predictor's headline on every row, and on each resample of games (`intervals.weights`
    w: (n_boot, G); `game`: each row's game, 0 .. G - 1) -> (value, (n_boot,))."""
    num, den = headline_terms(sub.name, pred, true, prev)
    g = w.shape[1]
    sums = [np.stack([intervals.per_game(c, game, g) for c in x.T], -1) for x in (num, den)]
    value = headline_of(sub.name, num.sum(0), den.sum(0))
    return float(value), headline_of(sub.name, w @ sums[0], w @ sums[1])


def judge(sub: Subsystem, draws: dict[str, tuple[float, np.ndarray]], n_games: int,
          monolith: str = "mamba2_monolith") -> dict:  # fmt: skip
    """Whether a subsystem decomposes, from headline `draws` {who: (value, (n_boot,))} on the
    same resamples of games: "standalone", the yardsticks and the monoliths ("<arch>_monolith").

    - decomposes: "yes" when the standalone model beats the better yardstick (the one whose
      headline is better) with a paired interval clear of 0, "no" when it ties or loses;
      NOT_MEASURABLE when the headline is undefined or the same for every predictor (an F1 of 0
      all round); `intervals.TOO_FEW` below `intervals.MIN_GAMES` games;
    - standalone_vs_<monolith>, <monolith>_vs_yardstick: beats, tie or loses. Reported, not the
      criterion: a standalone as good as a monolith that loses to copy-last-frame shows nothing.
    """
    point = {who: v for who, (v, _) in draws.items()}
    yard = [y for y in YARDSTICKS if y in draws]
    defined = all(np.isfinite(point[who]) for who in ("standalone", *yard))
    # the better yardstick (copy-last on a tie)
    best = (
        intervals.better({y: point[y] for y in yard}, sub.higher_is_better) if defined else yard[0]
    )
    degenerate = not defined or len({v for v in point.values() if np.isfinite(v)}) == 1
    pairs = {"standalone_vs_yardstick": ("standalone", best),
             f"standalone_vs_{monolith}": ("standalone", monolith),
             f"{monolith}_vs_yardstick": (monolith, best)}  # fmt: skip
    out = {"yardstick": best, "intervals": {who: intervals.figure(*d) for who, d in draws.items()}}
    out["differences"], verdicts = {}, {}
    for key, (a, b) in pairs.items():
        if a in draws and b in draws:  # paired: the same resamples
            diff, said = intervals.paired(draws[a], draws[b], sub.higher_is_better, n_games)
            out["differences"][key] = diff
            verdicts[key] = NOT_MEASURABLE if degenerate or said is None else said
    alone = verdicts.pop("standalone_vs_yardstick")
    out["decomposes"] = {"beats": YES, "tie": NO, "loses": NO}.get(alone, alone)
    return out | verdicts
