"""Figures of the bc stage (notebooks/03_train_bc.py): loss curves, per-head scores against the
yardsticks, the button confusion matrix, and predicted against human inputs over a game.

Each function returns a `matplotlib.figure.Figure` built without pyplot (no global state); save
it with `fig.savefig(path, metadata={"Software": None})` for byte-stable PNGs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mmlib.features import controller
from mmlib.train import evaluate

HEAD_COLORS = {"shoulder": "#8c6bb1", "c": "#e08214", "main": "#3b75af", "button": "#2f9e44"}
HUMAN = dict(color="#bbbbbb", lw=3.0, label="human")
MODEL = dict(color="#c0392b", lw=1.0, label="model")
C_STICK_LABELS = ("none", "R", "L", "D", "U", "DL", "DR", "UR", "UL")  # C_STICK_CENTERS order


def curves(
    train_rows: Sequence[dict],
    val_rows: Sequence[dict],
    baseline_total: float,
    baseline_heads: dict[str, float] | None = None,
) -> Figure:
    """Left: training and validation total loss against step, with the class-frequency baseline
    as a horizontal line. Right: each head's validation loss (and, given `baseline_heads`, its
    own baseline, dashed).

    train_rows: one dict per training record (`step`, `total`, ...), as in train_curve.csv.
    val_rows: one dict per validation pass (`step`, `total`, one key per head).
    """
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_total, ax_heads = fig.subplots(1, 2)
    steps = [r["step"] for r in val_rows]
    ax_total.plot(
        [r["step"] for r in train_rows],
        [r["total"] for r in train_rows],
        color="#999999",
        label="train (mean over log_every steps)",
    )
    ax_total.plot(steps, [r["total"] for r in val_rows], "o-", color="#c0392b", ms=3, label="val")
    baseline = f"class-frequency baseline ({baseline_total:.3f})"
    ax_total.axhline(baseline_total, color="black", ls="--", lw=1, label=baseline)
    ax_total.set(title="total loss (sum of the four heads)", xlabel="step", ylabel="nats")
    ax_total.legend(fontsize=8)
    for head in evaluate.HEAD_NAMES:
        color = HEAD_COLORS[head]
        ax_heads.plot(steps, [r[head] for r in val_rows], "o-", color=color, ms=3, label=head)
        if baseline_heads is not None:
            ax_heads.axhline(baseline_heads[head], color=color, ls="--", lw=1)
    title = "validation loss per head" + (" (dashed: baseline)" if baseline_heads else "")
    ax_heads.set(title=title, xlabel="step", ylabel="nats")
    ax_heads.legend(fontsize=8)
    return fig


def head_scores(metrics: dict) -> Figure:
    """Per head, validation accuracy, accuracy on the frames where the human's class changes
    and macro-F1 as bars, with the accuracy of copying the last input as a black marker on the
    accuracy bar (on change frames copying scores 0).

    metrics: as `mmlib.train.character.run_character` returns it (`val`, `copy_last_acc`).
    """
    fig = Figure(figsize=(7.5, 4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(evaluate.HEAD_NAMES))
    acc = [metrics["val"][h]["acc"] for h in evaluate.HEAD_NAMES]
    change = [metrics["val"][h].get("change_acc") or 0.0 for h in evaluate.HEAD_NAMES]
    f1 = [metrics["val"][h]["macro_f1"] for h in evaluate.HEAD_NAMES]
    copy = [metrics["copy_last_acc"][h] for h in evaluate.HEAD_NAMES]
    w = 0.27
    ax.bar(x - w, acc, width=w, color="#3b75af", label="accuracy")
    ax.bar(x, change, width=w, color="#e6a04b", label="accuracy on changes")
    ax.bar(x + w, f1, width=w, color="#9ecae1", label="macro-F1")
    ax.scatter(x - w, copy, marker="D", color="black", zorder=3, label="copy last input (acc)")
    for xi, a, ch, f, c in zip(x, acc, change, f1, copy, strict=True):
        ax.text(xi - w, a / 2, f"{a:.3f}", ha="center", va="center", fontsize=7, color="white")
        ax.text(xi, ch + 0.01, f"{ch:.3f}", ha="center", va="bottom", fontsize=7)
        ax.text(xi + w, f + 0.01, f"{f:.3f}", ha="center", va="bottom", fontsize=7)
        ax.text(xi - w, c + 0.025, f"{c:.3f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, evaluate.HEAD_NAMES)
    ax.set(ylim=(0, 1.3), ylabel="share of validation frames", title="validation scores per head")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    return fig


def pooled_comparison(result: dict) -> Figure:
    """Per character (one panel each), per head: the per-character and the pooled policy's
    accuracy (solid) and accuracy on change frames (hatched), copy-last as a black marker.

    result: as `mmlib.train.pooled.compare` returns it.
    """
    fig = Figure(figsize=(3.2 * len(result), 3.8), layout="constrained")
    axes = fig.subplots(1, len(result), sharey=True, squeeze=False)[0]
    x = np.arange(len(evaluate.HEAD_NAMES))
    for ax, (character, r) in zip(axes, result.items(), strict=True):
        for k, (who, color) in enumerate((("per_character", "#3b75af"), ("pooled", "#e6a04b"))):
            s = r[who]
            acc = [s[h]["acc"] for h in evaluate.HEAD_NAMES]
            change = [s[h]["change_acc"] or 0.0 for h in evaluate.HEAD_NAMES]
            label = who.replace("_", " ")
            ax.bar(x + (k - 1) * 0.4, acc, width=0.2, color=color, label=f"{label}: accuracy")
            ax.bar(x + (k - 1) * 0.4 + 0.2, change, width=0.2, color=color, hatch="//",
                   edgecolor="white", label=f"{label}: on changes")  # fmt: skip
        copy = [r["copy_last_acc"][h] for h in evaluate.HEAD_NAMES]
        ax.scatter(x - 0.3, copy, marker="D", color="black", zorder=3, label="copy last input")
        ax.set_xticks(x, evaluate.HEAD_NAMES, fontsize=8)
        ax.set(title=f"{character} ({r['windows']} windows)", ylim=(0, 1.05))
    axes[0].set_ylabel("share of validation frames")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=5, fontsize=8)
    fig.suptitle("one pooled policy against one per character, on each character's games")
    return fig


def learning_curve(curve, copy_last: dict, character: str) -> Figure:
    """Validation loss (left, with the calibrated copy-last loss as a dashed line and its band)
    and each head's change-frame accuracy (right) against training games, log-scaled, each
    point with its 95 % interval over validation games.

    curve: a table with `train_games` and, per figure, `<name>`, `<name>_lo`, `<name>_hi`
    (`loss`, `<head>_change_acc`), as notebook 03c builds it; copy_last: {value, lo, hi}.
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    n = np.asarray(curve["train_games"], dtype=float)

    def bars(ax, name: str, **style) -> None:
        v = np.asarray(curve[name], dtype=float)
        err = [
            v - np.asarray(curve[f"{name}_lo"], float),
            np.asarray(curve[f"{name}_hi"], float) - v,
        ]
        ax.errorbar(n, v, yerr=err, capsize=3, marker="o", **style)

    bars(left, "loss", color="#3b75af", label="policy")
    left.axhline(copy_last["value"], color="black", ls="--", lw=1, label="calibrated copy-last")
    left.axhspan(copy_last["lo"], copy_last["hi"], color="black", alpha=0.08)
    left.set(xscale="log", xlabel="training games", ylabel="validation loss (nats, 4 heads)",
             title=f"{character}: loss")  # fmt: skip
    left.legend(fontsize=8)
    colors = ("#3b75af", "#e6a04b", "#59a14f", "#e15759")
    for h, color in zip(evaluate.HEAD_NAMES, colors, strict=True):
        bars(right, f"{h}_change_acc", color=color, label=h)
    right.set(xscale="log", xlabel="training games", ylabel="accuracy on change frames",
              title=f"{character}: change frames (copy-last scores 0)", ylim=(0, None))  # fmt: skip
    right.legend(fontsize=8)
    return fig


def button_confusion(pred: np.ndarray, true: np.ndarray) -> Figure:
    """The 7x7 button confusion matrix, each row (human class) normalised to 1, shares written
    in the cells and each row's frame count in its label.

    pred, true: button classes, any shape (e.g. (N, window)).
    """
    n = controller.N_BUTTON
    counts = evaluate.confusion(np.asarray(pred), np.asarray(true), n)
    support = counts.sum(1)
    shares = counts / np.maximum(support, 1)[:, None]
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                color = "white" if shares[i, j] > 0.6 else "black"
                text = f"{shares[i, j]:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    labels = controller.BUTTON_CLASSES
    ax.set_xticks(range(n), labels, fontsize=8)
    row_labels = [f"{c} ({k})" for c, k in zip(labels, support, strict=True)]
    ax.set_yticks(range(n), row_labels, fontsize=8)
    ax.set(xlabel="predicted", ylabel="human (frames)", title="button classes, row-normalised")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the row")
    return fig


def strip_data(
    policy, split_dir: Path, frames: int, batch: int = 32
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """The policy's and the human's classes over the first `frames` frames of a split's first
    game, scored as consecutive non-overlapping windows (each window's context starts afresh).

    Returns pred, true (head -> (F,) classes) and the frame index within the game (F,), with
    F = `frames`, or fewer where the game's whole windows hold fewer.
    """
    window = policy.config.max_seq_len
    offsets = np.load(Path(split_dir) / "offsets.npy")
    k = min(-(-frames // window), (offsets[1] - offsets[0]) // window)  # windows, rounded up
    rows = offsets[0] + np.arange(k * window).reshape(k, window)
    windows = {
        name: np.asarray(np.load(Path(split_dir) / f"{name}.npy", mmap_mode="r")[rows])
        for name in ("ints", "floats", "targets")
    }
    _, pred = evaluate.predict(policy.model, windows, batch, policy.device)
    true = evaluate.targets_by_head(windows)
    pred = {h: c.ravel()[:frames] for h, c in pred.items()}
    true = {h: c.ravel()[:frames] for h, c in true.items()}
    return pred, true, np.arange(k * window)[:frames]


def input_strip(
    pred: dict[str, np.ndarray], true: dict[str, np.ndarray], frames: np.ndarray, window: int = 0
) -> Figure:
    """Predicted against human inputs over a stretch of frames, one row each for the shoulder,
    the c-stick, the main stick's x and y (the class centre's coordinates) and the button.

    pred, true: head -> (F,) classes; frames: (F,) frame index of each; window: draw a dotted
    line where each model window (a fresh context) starts, if given.
    """
    main = controller.MAIN_STICK_CENTERS
    rows = [
        ("shoulder", lambda d: d["shoulder"], range(3), controller.SHOULDER_LEVELS),
        ("c-stick", lambda d: d["c"], range(9), C_STICK_LABELS),
        ("main x", lambda d: main[d["main"], 0], (0, 0.5, 1), ("L", "0.5", "R")),
        ("main y", lambda d: main[d["main"], 1], (0, 0.5, 1), ("D", "0.5", "U")),
        ("button", lambda d: d["button"], range(7), controller.BUTTON_CLASSES),
    ]
    fig = Figure(figsize=(12, 9), layout="constrained")
    axes = fig.subplots(len(rows), 1, sharex=True, height_ratios=[1, 2, 1.3, 1.3, 2])
    for ax, (name, value, ticks, labels) in zip(axes, rows, strict=True):
        ax.step(frames, value(true), where="post", **HUMAN)
        ax.step(frames, value(pred), where="post", **MODEL)
        ax.set_yticks(list(ticks), [str(t) for t in labels], fontsize=7)
        ax.set_ylabel(name, fontsize=9)
        if window:
            for start in frames[::window][1:]:
                ax.axvline(start, color="black", ls=":", lw=0.8)
    axes[0].legend(fontsize=8, ncol=2, loc="upper right")
    axes[0].set_title("next-frame inputs: human (grey) and the model's top class (red)")
    axes[-1].set_xlabel("frames into the validation game (shard rows)")
    return fig
