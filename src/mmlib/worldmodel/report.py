"""Pictures of world-model runs: training curves, one rollout against the truth, and error
against horizon (one architecture or several, always beside copy-last-frame and dead
reckoning)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from mmlib.worldmodel.data import Frames
from mmlib.worldmodel.encoding import SCALE


def curves(train, val, title: str):
    """Training and validation loss against epochs, from the `train_curve.csv` and
    `val_curve.csv` tables of a run (columns `epoch`, `total`)."""
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.plot(train["epoch"], train["total"], "o-", label="train")
    ax.plot(val["epoch"], val["total"], "o-", label="validation")
    best = val["epoch"][int(np.argmin(val["total"]))]
    ax.axvline(best, color="grey", ls=":", label=f"best (epoch {best:g})")
    ax.set(xlabel="epoch", ylabel="weighted loss", title=title, yscale="log")
    ax.legend()
    return fig


def trajectory(frames: Frames, start: int, pred_f: np.ndarray, title: str):
    """x, y and percent of both players over one rollout: predicted against the replay."""
    enc = frames.cfg
    horizon = len(pred_f)
    f, _, _ = frames.clip(np.array([start]), enc.context + horizon - enc.lead)
    true = f[0].numpy()
    t_seed = np.arange(enc.context) - enc.context
    t = np.arange(horizon)
    fig, axes = plt.subplots(3, 2, figsize=(10, 7), sharex=True, layout="constrained")
    for row, name in enumerate(("x", "y", "percent")):
        k = enc.fi(name)
        for p in range(2):
            ax = axes[row, p]
            ax.plot(t_seed, true[: enc.context, p, k] / SCALE[name], color="grey", label="seed")
            ax.plot(t, true[enc.context :, p, k] / SCALE[name], color="black", label="replay")
            ax.plot(t, pred_f[:, p, k] / SCALE[name], color="tab:red", label="rollout")
            ax.set(ylabel=name, title=f"player {p}" if row == 0 else None)
    axes[-1, 0].set_xlabel("frames after the seed")
    axes[-1, 1].set_xlabel("frames after the seed")
    axes[0, 0].legend(loc="best", fontsize=8)
    fig.suptitle(title)
    return fig


ROLLOUT_PANELS = (
    ("position", "position (lower is better)"),
    ("action", "action state (higher is better)"),
    ("stocks", "stocks (higher is better)"),
)
Y_LABELS = {  # per-step rollout metric (`evaluate.rollout_errors`, `subsystems.rollout_errors`)
    "position": "position error (game units)",  # Euclidean, mean over both players
    "action": "action accuracy (share correct)",  # over both players
    "stocks": "stock agreement (share of rollouts)",  # both players' stocks right
    "percent": "percent error (damage %)",  # mean over both players
    "hitlag": "hitlag-state agreement (share)",
    "guard": "guard-state agreement (share)",
}


YARDSTICKS = {  # name -> line style
    "copy last frame": {"ls": "--", "color": "grey"},
    "dead reckoning": {"ls": ":", "color": "dimgrey"},
}


def horizon_curves(errors: dict, title: str, panels=ROLLOUT_PANELS):
    """Per-step rollout curves, one panel per (metric, title), y labelled from `Y_LABELS` (the
    title where the metric has none). `errors`: name -> {metric: (starts, horizon) or (horizon,)
    array}; the yardsticks are drawn in grey (`YARDSTICKS`: copy-last-frame dashed, dead
    reckoning dotted). One legend for the figure, below the panels."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8), layout="constrained")
    lines = {}
    for ax, (metric, label) in zip(axes, panels, strict=True):
        for i, (name, e) in enumerate(errors.items()):
            if metric not in e:
                continue
            curve = np.asarray(e[metric], dtype=float)
            curve = curve.mean(0) if curve.ndim == 2 else curve
            steps = np.arange(1, len(curve) + 1)
            yardstick = name.replace("_", " ") in YARDSTICKS
            style = YARDSTICKS.get(name.replace("_", " "), {"color": f"C{i}"})
            (lines[f"{name} (yardstick)" if yardstick else name],) = ax.plot(steps, curve, **style)
        ax.set(xlabel="rollout horizon (frames)", ylabel=Y_LABELS.get(metric, label), title=label)
    fig.legend(lines.values(), lines.keys(), loc="outside lower center", ncol=len(lines))
    fig.suptitle(title)
    return fig


def confusion(matrices: dict[str, np.ndarray], labels: list[str], title: str):
    """Row-normalised confusion matrices side by side: name -> counts (true x predicted)."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(5.5 * len(matrices), 5),
                             layout="constrained", squeeze=False)  # fmt: skip
    for ax, (name, counts) in zip(axes[0], matrices.items(), strict=True):
        rows = counts.sum(1, keepdims=True)
        share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(share):
            if v >= 0.005:
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.6 else "black")  # fmt: skip
        ticks = np.arange(len(labels))
        ax.set_xticks(ticks, labels, rotation=60, ha="right", fontsize=8)
        names = [f"{lab} ({int(n)})" for lab, n in zip(labels, rows[:, 0], strict=True)]
        ax.set_yticks(ticks, names, fontsize=8)
        ax.set(xlabel="predicted category", ylabel="true category (frames)", title=name)
    fig.suptitle(title)
    return fig
