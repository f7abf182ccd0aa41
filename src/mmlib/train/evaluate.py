"""Validation: fixed windows of the validation games, losses, per-head metrics and yardsticks.

The validation set is every non-overlapping window of each validation game (evenly thinned to at
most `limit` windows), so a pass sees the same frames every time and its loss is comparable
across steps. Frame t of a window is scored on the controller of frame t + 1, as in training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mmlib.features import controller
from mmlib.features.sampler import ARRAYS
from mmlib.models.bc import HEADS, losses

HEAD_NAMES = tuple(name for name, _ in HEADS)
N_CLASSES = dict(HEADS)
MAIN_NEUTRAL = 0  # MAIN_STICK_CENTERS[0] is (0.5, 0.5)
C_NEUTRAL = 0
# Where each head's previous-controller one-hot sits in the float columns' last 56 (main, c,
# button, shoulder), for the copy-the-last-input yardstick.
_ONE_HOT = {
    "main": (0, controller.N_MAIN),
    "c": (controller.N_MAIN, controller.N_C),
    "button": (controller.N_MAIN + controller.N_C, controller.N_BUTTON),
    "shoulder": (controller.N_MAIN + controller.N_C + controller.N_BUTTON, controller.N_SHOULDER),
}

CHUNK_ROWS = 1 << 20


def default_device() -> torch.device:
    """The first GPU when there is one (a full-profile validation set is slow on a CPU)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def val_windows(
    split_dir: Path, window: int, limit: int, games: list[int] | None = None
) -> dict[str, np.ndarray]:
    """Every non-overlapping `window` of each game in a split (thinned evenly to `limit`):
    each array as (N, window, ...). `games`: only these games (indices in the split)."""
    arrays = {name: np.load(Path(split_dir) / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    offsets = np.load(Path(split_dir) / "offsets.npy")
    keep = range(len(offsets) - 1) if games is None else games
    starts = np.concatenate(
        [np.arange(offsets[g], offsets[g + 1] - window + 1, window) for g in keep]
        + [np.zeros(0, np.int64)]
    )
    if len(starts) > limit:
        starts = starts[np.linspace(0, len(starts) - 1, limit).round().astype(np.int64)]
    rows = starts[:, None] + np.arange(window)
    return {name: np.asarray(a[rows]) for name, a in arrays.items()}


@torch.no_grad()
def predict(
    model: torch.nn.Module, windows: dict[str, np.ndarray], batch: int, device, autocast_dtype=None
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Mean losses over all windows, and each head's argmax class (N, window)."""
    was_training = model.training
    model.eval()
    n = len(windows["ints"])
    sums: dict[str, float] = {}
    preds = {name: [] for name in HEAD_NAMES}
    for i in range(0, n, batch):
        ints = torch.from_numpy(windows["ints"][i : i + batch]).to(device)
        floats = torch.from_numpy(windows["floats"][i : i + batch]).to(device)
        targets = torch.from_numpy(windows["targets"][i : i + batch]).to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits, _ = model(ints, floats)
        for name, value in losses(logits, targets).items():
            sums[name] = sums.get(name, 0.0) + value.item() * len(ints)
        for name in HEAD_NAMES:
            preds[name].append(logits[name].argmax(-1).cpu().numpy())
    model.train(was_training)
    return {k: v / n for k, v in sums.items()}, {k: np.concatenate(v) for k, v in preds.items()}


def targets_by_head(windows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: windows["targets"][..., i].astype(np.int64) for i, name in enumerate(HEAD_NAMES)}


def previous_classes(windows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each head's class of the controller in the input (frame t), read off the one-hot."""
    ctrl = windows["floats"][..., -controller.CONTROLLER_DIM :]
    return {
        name: ctrl[..., start : start + width].argmax(-1)
        for name, (start, width) in _ONE_HOT.items()
    }


def macro_f1(pred: np.ndarray, true: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes present in `true`."""
    cm = confusion(pred, true, n_classes)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(1), cm.sum(0)
    present = support > 0
    f1 = np.divide(
        2 * tp, support + predicted, out=np.zeros_like(tp), where=support + predicted > 0
    )
    return float(f1[present].mean())


def confusion(pred: np.ndarray, true: np.ndarray, n_classes: int) -> np.ndarray:
    """(true class, predicted class) counts."""
    idx = true.ravel() * n_classes + pred.ravel()
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def head_metrics(
    preds: dict[str, np.ndarray], targets: dict[str, np.ndarray], prev: dict | None = None
) -> dict:
    """Top-1 accuracy and macro-F1 per head, plus the neutral-stick and NONE-button shares
    predicted and true, and c-stick accuracy on non-neutral targets. Given the current inputs'
    classes (`previous_classes`), also each head's accuracy on the frames where the human's class
    changes (`change_acc`; copying the input scores 0 there), how many there are, and the share
    of the other frames where the prediction leaves the held class (`false_change`: copying
    scores 0 there; a model beats copying only if its changes are right more often than not)."""
    out = {}
    for name in HEAD_NAMES:
        p, t = preds[name], targets[name]
        out[name] = {"acc": float((p == t).mean()), "macro_f1": macro_f1(p, t, N_CLASSES[name])}
        if prev is not None:
            changed = t != prev[name]
            out[name]["change_acc"] = float((p == t)[changed].mean()) if changed.any() else None
            out[name]["change_frames"] = int(changed.sum())
            held = ~changed
            out[name]["false_change"] = float((p != t)[held].mean()) if held.any() else None
    active = targets["c"] != C_NEUTRAL  # None when the validation windows never move the c-stick
    hits = preds["c"][active] == targets["c"][active]
    out["c"]["active_acc"] = float(hits.mean()) if active.any() else None
    for key, head, cls in (
        ("neutral_main", "main", MAIN_NEUTRAL),
        ("none_button", "button", controller.BTN_NONE),
    ):
        out[key] = {
            "predicted": float((preds[head] == cls).mean()),
            "true": float((targets[head] == cls).mean()),
        }
    return out


def frequency_baseline(train_targets: np.ndarray, val: dict[str, np.ndarray]) -> dict[str, float]:
    """Cross-entropy on the validation targets of always predicting the training split's class
    frequencies (add-one smoothed), per head and summed: the yardstick a model must beat."""
    out = {}
    for i, name in enumerate(HEAD_NAMES):
        counts = np.ones(N_CLASSES[name])
        for start in range(0, len(train_targets), CHUNK_ROWS):  # a memory map, read in chunks
            column = train_targets[start : start + CHUNK_ROWS, i].astype(np.int64)
            counts += np.bincount(column, minlength=N_CLASSES[name])
        logp = np.log(counts / counts.sum())
        out[name] = float(-logp[val[name]].mean())
    out["total"] = sum(out[n] for n in HEAD_NAMES)
    return out


def copy_last_accuracy(windows: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-head accuracy of predicting that the next controller equals the current one."""
    prev, true = previous_classes(windows), targets_by_head(windows)
    return {name: float((prev[name] == true[name]).mean()) for name in HEAD_NAMES}
