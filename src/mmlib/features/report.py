"""Figures and figures-as-numbers of the norm stage (notebooks/02_norm_transforms.py)."""

from __future__ import annotations

import numpy as np

from mmlib.features import build, controller, transforms
from mmlib.features.schema import FeatureSchema


def after_transforms(before: np.ndarray, schema: FeatureSchema, norm: build.Norm) -> np.ndarray:
    """Numeric values (N, C) as the model sees them: missing ones as 0, then the transforms."""
    return transforms.normalize_columns(
        np.nan_to_num(before), list(schema.numeric), norm.mimic_norm, norm.norm_stats
    )


def plot_transforms(before: np.ndarray, after: np.ndarray, schema: FeatureSchema, norm, fig):
    """One row per numeric feature: its raw distribution (left) and after its transform
    (right), log-scaled counts, missing values left out of the left panel."""
    specs = transforms.column_specs(list(schema.numeric), norm.mimic_norm, norm.norm_stats)
    axes = fig.subplots(len(schema.numeric), 2)
    for i, name in enumerate(schema.numeric):
        raw_values = before[:, i][~np.isnan(before[:, i])]
        axes[i, 0].hist(raw_values, bins=60, color="#888")
        axes[i, 1].hist(after[:, i], bins=60, color="#3b75af")
        axes[i, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        axes[i, 1].set_title(specs[i]["transform"], fontsize=8, loc="right", pad=2)
        for ax in axes[i]:
            ax.set_yscale("log")
            ax.tick_params(labelsize=7)
    axes[0, 0].set_title("raw (game units)")
    axes[0, 1].set_title("transformed", loc="left")


def class_shares(counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Share of frames in each class, per head, from the frames per class."""
    return {head: c / max(int(c.sum()), 1) for head, c in counts.items()}


def plot_class_shares(shares: dict[str, dict[str, np.ndarray]], fig) -> None:
    """Per head, the share of frames in each class, one bar group per character."""
    heads = [("button", controller.BUTTON_CLASSES), ("main", None), ("c", None), ("shoulder", None)]
    axes = fig.subplots(2, 2).ravel()
    width = 0.8 / max(len(shares), 1)
    for ax, (head, labels) in zip(axes, heads, strict=True):
        for k, (character, per_head) in enumerate(shares.items()):
            x = np.arange(len(per_head[head])) + k * width
            ax.bar(x, per_head[head], width=width, label=character)
        n = len(next(iter(shares.values()))[head])
        ax.set_xticks(np.arange(n) + 0.4 - width / 2, labels or range(n), fontsize=7)
        ax.set(title=f"{head} classes", ylabel="share of frames")
    axes[0].legend(fontsize=8)
