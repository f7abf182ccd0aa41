"""The controller encoding (SPEC 3.7): 37 main-stick, 9 c-stick, 7 button and 3 shoulder classes.

The same classes are the previous-controller input one-hot (56 dims) and the policy's four targets.
Stick coordinates are libmelee's [0, 1] (0.5 neutral, y up); Slippi's processed [-1, 1] values
become those with `to_unit`, bit for bit as libmelee computes them.

- Main stick: nearest of 37 fixed, hand-designed centres (`MAIN_STICK_CENTERS`, MIMIC's
  `MIMIC_STICK_CLUSTERS_37`; not k-means).
- C-stick: nearest of 9 fixed centres (`C_STICK_CENTERS`): neutral, 4 cardinals, 4 diagonals.
- Shoulder: s = max(l_shoulder, r_shoulder), nearest of `SHOULDER_LEVELS` (0, 0.4, 1). In replays
  libmelee copies the one processed trigger into both, so l == r there.
- Buttons: one of 7 classes from the digital bits, by fixed priority (`button_class`).

Nearest means smallest squared Euclidean distance, first index on ties (argmin), computed in
float32 on float32 inputs (float64 inputs are cast first): the same float32 (x, y) gives the same
class whichever caller (shard builder, live play) asks.

C-stick asymmetry, on purpose: MIMIC's published shards built the c-stick *input* one-hot from a
5-direction code (dead zone 0.15, dominant axis; diagonals 5-8 never occur) while its c-stick
*target* and its inference-time input used nearest-of-9. A model trained that way sees diagonal
inputs in play that it never saw in training. mmlib uses nearest-of-9 for input and target alike,
so training and play share one path and every input class can occur in training.
"""

from __future__ import annotations

import numpy as np


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float32)
    a.setflags(write=False)
    return a


# The 37 main-stick centres (x, y), SPEC 3.7 index order, as written (the JSON gets these).
_MAIN_TABLE: tuple[tuple[float, float], ...] = (
    (0.5, 0.5),  # 0 neutral
    *[(0.675, 0.5), (0.325, 0.5), (0.5, 0.675), (0.5, 0.325)],  # 1-4 partial tilt (0.35)
    *[(0.8375, 0.5), (0.1625, 0.5), (0.5, 0.8375), (0.5, 0.1625)],  # 5-8 tilt (0.675)
    *[(1.0, 0.5), (0.5, 1.0), (0.0, 0.5), (0.5, 0.0)],  # 9-12 full cardinals R, U, L, D
    *[(0.975, 0.35), (0.025, 0.35), (0.975, 0.65), (0.025, 0.65)],  # 13-16 +-17.5 deg
    *[(0.925, 0.25), (0.925, 0.75), (0.075, 0.25), (0.075, 0.75)],  # 17-20 ~30 deg
    *[(0.85, 0.15), (0.15, 0.15), (0.85, 0.85), (0.15, 0.85)],  # 21-24 45 deg full
    *[(0.75, 0.75), (0.25, 0.75), (0.75, 0.25), (0.25, 0.25)],  # 25-28 45 deg at 0.707
    *[(0.75, 0.925), (0.25, 0.925), (0.75, 0.075), (0.25, 0.075)],  # 29-32 ~60 deg
    *[(0.65, 0.025), (0.65, 0.975), (0.35, 0.025), (0.35, 0.975)],  # 33-36 72.5 deg
)
MAIN_STICK_CENTERS = _frozen(_MAIN_TABLE)  # (37, 2) float32

# (9, 2) c-stick centres: neutral, right, left, down, up, then the 4 diagonals.
C_STICK_CENTERS = _frozen(
    [
        (0.5, 0.5),
        (1.0, 0.5),
        (0.0, 0.5),
        (0.5, 0.0),
        (0.5, 1.0),
        (0.15, 0.15),
        (0.85, 0.15),
        (0.85, 0.85),
        (0.15, 0.85),
    ]
)

SHOULDER_LEVELS = (0.0, 0.4, 1.0)
_SHOULDER = _frozen(SHOULDER_LEVELS)

BUTTON_CLASSES = ("A", "B", "Z", "JUMP", "TRIG", "A_TRIG", "NONE")
BTN_A, BTN_B, BTN_Z, BTN_JUMP, BTN_TRIG, BTN_A_TRIG, BTN_NONE = range(7)

N_MAIN = len(MAIN_STICK_CENTERS)  # 37
N_C = len(C_STICK_CENTERS)  # 9
N_BUTTON = len(BUTTON_CLASSES)  # 7
N_SHOULDER = len(SHOULDER_LEVELS)  # 3
CONTROLLER_DIM = N_MAIN + N_C + N_BUTTON + N_SHOULDER  # 56
# Offsets of the four blocks in the one-hot: [main 37 | c 9 | button 7 | shoulder 3].
OFFSETS = (0, N_MAIN, N_MAIN + N_C, N_MAIN + N_C + N_BUTTON)


def to_unit(processed):
    """Slippi's processed stick value in [-1, 1] -> libmelee's [0, 1]: float32(v) / 2 + 0.5.

    Stays float32 throughout (NumPy 2 keeps python scalars weak), exactly as libmelee's pre-frame
    parser computes `controller_state.main_stick` / `c_stick`. Any shape; scalars give np.float32.
    """
    return np.asarray(processed, dtype=np.float32) / 2 + 0.5


def _nearest(x, y, centers: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)[..., None]
    y = np.asarray(y, dtype=np.float32)[..., None]
    dx = x - centers[:, 0]
    dy = y - centers[:, 1]
    return np.argmin(dx * dx + dy * dy, axis=-1)  # (...,) int64, first index on ties


def main_stick_class(x, y) -> np.ndarray:
    """Main-stick class 0..36 of libmelee (x, y) in [0, 1]; broadcasts, returns int64 (...)."""
    return _nearest(x, y, MAIN_STICK_CENTERS)


def c_stick_class(x, y) -> np.ndarray:
    """C-stick class 0..8 of libmelee (x, y) in [0, 1]; broadcasts, returns int64 (...)."""
    return _nearest(x, y, C_STICK_CENTERS)


def shoulder_class(s) -> np.ndarray:
    """Shoulder class 0..2: nearest of (0, 0.4, 1) to s = max(l, r), first on ties; int64 (...)."""
    s = np.asarray(s, dtype=np.float32)[..., None]
    return np.argmin(np.abs(s - _SHOULDER), axis=-1)


def button_class(a, b, z, jump, trig) -> np.ndarray:
    """7-class button label from digital bits (bools or bool arrays, broadcast); int64 (...).

    jump = X or Y; trig = digital L or R (an analog-only press is not TRIG). Priority, per frame:
    B -> B; else A and TRIG -> A_TRIG; else Z -> Z; else A -> A; else TRIG -> TRIG;
    else JUMP -> JUMP; else NONE.
    """
    a, b, z, jump, trig = (np.asarray(v, dtype=bool) for v in (a, b, z, jump, trig))
    # lowest priority first: each later rule overwrites the earlier ones where it holds
    out = np.where(jump, BTN_JUMP, BTN_NONE)
    out = np.where(trig, BTN_TRIG, out)
    out = np.where(a, BTN_A, out)
    out = np.where(z, BTN_Z, out)
    out = np.where(a & trig, BTN_A_TRIG, out)
    return np.where(b, BTN_B, out).astype(np.int64)


def one_hot(main, c, button, shoulder) -> np.ndarray:
    """The (..., 56) float32 controller one-hot [main 37 | c 9 | button 7 | shoulder 3].

    Args:
        main, c, button, shoulder: class indices of equal (broadcastable) shape (...).
    Returns:
        (..., 56) float32 with exactly four ones per frame.
    Raises:
        ValueError: an index outside its block.
    """
    blocks = (main, c, button, shoulder)
    sizes = (N_MAIN, N_C, N_BUTTON, N_SHOULDER)
    names = ("main", "c", "button", "shoulder")
    idx = np.broadcast_arrays(*(np.asarray(v, dtype=np.int64) for v in blocks))
    for i, n, name in zip(idx, sizes, names, strict=True):
        if i.size and (i.min() < 0 or i.max() >= n):
            raise ValueError(f"{name} class out of range 0..{n - 1}: {i.min()}..{i.max()}")
    cols = np.stack([i + off for i, off in zip(idx, OFFSETS, strict=True)], axis=-1)  # (..., 4)
    out = np.zeros(cols.shape[:-1] + (CONTROLLER_DIM,), dtype=np.float32)
    np.put_along_axis(out, cols, 1.0, axis=-1)
    return out


def stick_clusters_json() -> dict:
    """The published `stick_clusters.json` (SPEC 3.6): 37 main-stick centres and 3 levels.

    The c-stick centres are not part of the published file and are not added.
    """
    return {
        "stick_centers": [list(xy) for xy in _MAIN_TABLE],
        "shoulder_centers": list(SHOULDER_LEVELS),
    }


def controller_combos_json() -> dict:
    """The published 7-class `controller_combos.json` (SPEC 3.6); no `combos` list."""
    return {
        "button_names": list(BUTTON_CLASSES),
        "n_combos": N_BUTTON,
        "class_scheme": "melee_7class",
    }
