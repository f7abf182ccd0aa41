"""How far each kind of figure in a training stage's metrics may move on another processor.

The clean-clone check (tests/test_pipeline.py) needs data stages byte for byte; a training stage
run on another processor family moves in its last bits, and then its figures are compared here:
strings, booleans (verdicts) and whole numbers exactly, every other figure within the tolerance of
its kind, set once below beside the spread it was measured from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """A kind of figure and how far another processor may move it: `rel` or `abs`, whichever
    is looser (math.isclose). `spread` is the largest move measured from the AMD EPYC that made
    the lock of 9a57dd5 to the Intel Xeon that re-made it at 49192f0 (same code, same data;
    `python studies/figure_spread.py 9a57dd5 49192f0`); each tolerance is 2-5x it."""

    name: str
    where: tuple[str, ...]  # a figure is of this kind when its path holds one of these
    rel: float
    abs: float
    spread: str


KINDS = (
    Kind("streaming drift", (".drift.",), 0.0, 5e-3,
         "argmax agreement 0.9982 -> 1.0; logits 6e-4; KL 1e-7"),
    Kind("free-running play", (".free.",), 0.1, 0.06,
         "agreement 0.248 -> 0.270; neutral-stick share 0.408 -> 0.436; TRIG presses 6 -> 5"),
    Kind("rollout", (".rollout.",), 0.5, 0.2,
         "position @200 219 -> 264 (22 %); stocks right @50 0.25 -> 0.36"),
    Kind("teacher-forced world model", ("reports/world_model/", "reports/decomposition/"),
         0.25, 0.06, "category accuracy 0.752 -> 0.725; shield MAE 0.370 -> 0.421 (12 %)"),
    Kind("teacher-forced policy", ("",), 0.0, 5e-3,
         "val loss 1.9321 -> 1.9332 nats; macro F1 0.2136 -> 0.2129"),
)  # fmt: skip
# Whole numbers (frames, games, parameters, steps) are exact, except counts of what a free-running
# bot or a rollout did, which may move by this many:
COUNT_MOVE = 3
# Picks, not figures: which rollout start the world-model notebook draws is the one with the
# median error at 200 frames, so another processor may rightly pick another (9772 -> 15922 from the
# lock of 90afae5 to this AMD EPYC, 2026-12-07). Only their type is checked.
PICKS = (".trajectory_start",)


def kind_of(where: str) -> Kind:
    """The first kind whose marker is in `where` (file path, colon, dotted keys)."""
    return next(k for k in KINDS if any(marker in where for marker in k.where))


def figures_agree(made, committed, where: str = "") -> list[str]:
    """Where two metrics documents disagree: a key, a type, a string or a boolean (a verdict),
    a whole number, or a figure beyond the tolerance of its kind."""
    if isinstance(committed, dict):
        if not isinstance(made, dict) or set(made) != set(committed):
            return [f"{where}: keys {sorted(made) if isinstance(made, dict) else made}"]
        return [e for k in committed for e in figures_agree(made[k], committed[k], f"{where}.{k}")]
    if isinstance(committed, list):
        if not isinstance(made, list) or len(made) != len(committed):
            return [f"{where}: {made!r} against {committed!r}"]
        return [
            e
            for i, (a, b) in enumerate(zip(made, committed, strict=True))
            for e in figures_agree(a, b, f"{where}[{i}]")
        ]
    kind = kind_of(where)
    if where.endswith(PICKS):
        same = type(made) is type(committed)
    elif isinstance(committed, bool | str) or committed is None:
        same = type(made) is type(committed) and made == committed
    elif isinstance(committed, int) and isinstance(made, int) and not isinstance(made, bool):
        move = COUNT_MOVE if kind.name in ("free-running play", "rollout") else 0
        same = abs(made - committed) <= move
    else:
        same = (
            isinstance(made, int | float)
            and not isinstance(made, bool)
            and math.isclose(made, committed, rel_tol=kind.rel, abs_tol=kind.abs)
        )
    return [] if same else [f"{where}: {made!r} against {committed!r} ({kind.name})"]
