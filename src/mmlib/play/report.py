"""Pictures of notebook 06: the bot's and the human's inputs over a stretch of game, and the
gameplay-health figures side by side."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa

from mmlib.features.controller import BTN_NONE, BUTTON_CLASSES

HEALTH_SHARES = ("non_none_share", "stick_neutral_share")


def timeline(teacher: pa.Table, free: pa.Table, title: str):
    """Main-stick x and y and the button class per frame: human, bot (teacher-forced), bot
    (free-running), over the same frames."""
    fig, axes = plt.subplots(3, 1, figsize=(11, 6.5), sharex=True)
    seconds = (teacher["frame"].to_numpy() - teacher["frame"][0].as_py()) / 60
    lines = (
        ("human", teacher, "human", "k"),
        ("bot, teacher-forced", teacher, "bot", "tab:blue"),
        ("bot, free-running", free, "bot", "tab:orange"),
    )
    for axis, name in zip(axes[:2], ("x", "y"), strict=True):
        for label, table, who, color in lines:
            values = table[f"{who}_main_{name}"].to_numpy()[: len(seconds)]
            axis.plot(seconds[: len(values)], values, color=color, lw=1, label=label)
        axis.set_ylabel(f"main stick {name}")
        axis.set_ylim(-0.05, 1.05)
    axes[0].legend(loc="upper right", fontsize=8, ncol=3)
    for offset, (label, table, who, color) in enumerate(lines):
        button = table[f"{who}_button"].to_numpy()[: len(seconds)]
        pressed = button != BTN_NONE
        axes[2].scatter(
            seconds[: len(button)][pressed],
            button[pressed] + (offset - 1) * 0.2,
            s=4,
            color=color,
            label=label,
        )
    axes[2].set_yticks(range(len(BUTTON_CLASSES) - 1), BUTTON_CLASSES[:-1])
    axes[2].set_ylabel("button (NONE not drawn)")
    axes[2].set_xlabel("seconds into the stretch")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def health_bars(metrics: dict, title: str):
    """Non-NONE share, stick-neutral share and presses per second: human vs the three bot runs."""
    who = {"human": metrics["health_human"]} | {
        f"bot: {name}": figures for name, figures in metrics["health_bot"].items()
    }
    keys = (*HEALTH_SHARES, "presses_per_s")
    fig, axes = plt.subplots(1, len(keys), figsize=(11, 3.2))
    for axis, key in zip(axes, keys, strict=True):
        values = [w[key] for w in who.values()]
        axis.bar(np.arange(len(who)), values, color=["k", "tab:blue", "tab:cyan", "tab:orange"])
        axis.set_xticks(np.arange(len(who)), list(who), rotation=30, ha="right", fontsize=8)
        axis.set_title(key, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
