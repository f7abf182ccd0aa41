"""Pictures of notebook 06: the bot's and the human's inputs over a stretch of game, and the
gameplay-health figures side by side."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa

from mmlib.features.controller import BTN_NONE, BUTTON_CLASSES


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


@dataclass(frozen=True)
class HealthPanel:
    """One panel of `health_bars`: a figure of `drive.health`, how to say it, its SPEC 5.7 gate."""

    key: str  # the figure's key in `drive.health`
    title: str
    ylabel: str  # may name `{seconds}`, the length of the stretch
    kind: str  # "share" (drawn in percent), "rate", "probability" (0 to 1) or "count"
    gate: tuple[str, float] | None = None  # (">=" or "<=", threshold) a bot must meet; None: none
    argmax: str | None = None  # key of the same figure for the bot's argmax, drawn as a marker


HEALTH_PANELS = (  # gates: SPEC 5.7's pass thresholds (it gates non-NONE on the argmax)
    HealthPanel(
        "non_none_share",
        "buttons held",
        "share of frames",
        "share",
        (">=", 0.05),
        argmax="top_non_none_share",
    ),
    HealthPanel("stick_neutral_share", "stick neutral", "share of frames", "share", (">=", 0.15)),
    HealthPanel("presses_per_s", "button presses per second", "presses / s", "rate", (">=", 0.5)),
    HealthPanel(
        "none_prob_mean",
        "mean P(NONE) of the button head (bot only)",
        "probability",
        "probability",
        ("<=", 0.95),
    ),
    HealthPanel("trig_presses", "TRIG presses", "presses in {seconds:.0f} s", "count"),
    HealthPanel("wavedash_shaped", "wavedash-shaped inputs", "count in {seconds:.0f} s", "count"),
)
RUN_NAMES = {  # the bot runs of `evaluate`, in the order drawn
    "teacher": "bot, teacher-forced",
    "teacher_no_prefill": "bot, teacher-forced,\nno prefill",
    "free": "bot, free-running",
}
WHO_COLORS = ("k", "tab:blue", "tab:cyan", "tab:orange", "tab:green")
GATE_COLOR = "tab:red"


def _shown(v: float, kind: str) -> str:
    """A health figure as written on its bar."""
    if np.isnan(v):
        return "n/a"
    return f"{v:.0%}" if kind == "share" else f"{v:.0f}" if kind == "count" else f"{v:.3g}"


def health_bars(metrics: dict, title: str, panels=HEALTH_PANELS):
    """Gameplay health (SPEC 5.7), one panel per figure: the human's bar beside the bot runs',
    the human's value as a dotted line across the panel, and the gate a bot must pass as a red
    dashed line with the failing side shaded."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    from mmlib.play.drive import FPS

    runs = metrics["health_bot"]
    order = [r for r in RUN_NAMES if r in runs] + sorted(set(runs) - set(RUN_NAMES))
    who = {"human": metrics["health_human"]}
    who |= {RUN_NAMES.get(r, f"bot, {r}"): runs[r] for r in order}
    seconds = metrics["health_human"]["frames"] / FPS
    x = np.arange(len(who))
    colors = WHO_COLORS[: len(who)]
    fig, axes = plt.subplots(-(-len(panels) // 3), 3, figsize=(12, 7.5), squeeze=False,
                             layout="constrained")  # fmt: skip
    key = {name: Patch(color=c) for name, c in zip(who, colors, strict=True)}
    key["human's value"] = Line2D([], [], color="k", ls=":", lw=1)
    key["bot's argmax (the figure SPEC gates)"] = Line2D([], [], color="w", marker="D", mec="k",
                                                         ls="none")  # fmt: skip
    key["SPEC 5.7 gate: a bot in the red band fails"] = (
        Patch(color=GATE_COLOR, alpha=0.15, lw=0),
        Line2D([], [], color=GATE_COLOR, ls="--", lw=1.2),
    )
    for axis, panel in zip(axes.flat, panels, strict=False):
        values = np.array([w.get(panel.key, np.nan) for w in who.values()], dtype=float)
        marks = np.array([w.get(panel.argmax, np.nan) for w in who.values()], dtype=float)
        axis.bar(x, values, color=colors, zorder=2)
        if panel.argmax:
            axis.plot(x, marks, "D", color="w", mec="k", ls="none", zorder=4)
        above = np.fmax(np.nan_to_num(values), np.nan_to_num(marks))
        lift = 6 if panel.argmax else 1  # points above the bar (or its marker)
        for i, v in enumerate(values):
            axis.annotate(_shown(v, panel.kind), (i, above[i]), xytext=(0, lift), fontsize=8,
                          textcoords="offset points", ha="center", va="bottom")  # fmt: skip
        if not np.isnan(values[0]):
            axis.axhline(values[0], color="k", ls=":", lw=1, zorder=3)
        top = 1.0 if panel.kind == "probability" else 1.2 * np.max([*above, 0.01])
        gate = "not gated"
        if panel.gate:
            side, threshold = panel.gate
            if panel.kind != "probability":  # a probability's axis ends at 1
                top = max(top, 1.2 * threshold)
            failing = (0, threshold) if side == ">=" else (threshold, top)
            axis.axhspan(*failing, color=GATE_COLOR, alpha=0.15, lw=0, zorder=1)
            axis.axhline(threshold, color=GATE_COLOR, ls="--", lw=1.2, zorder=3)
            gate = f"gate: {'≥' if side == '>=' else '≤'} {_shown(threshold, panel.kind)}"
        axis.set(xlim=(-0.6, len(who) - 0.4), ylim=(0, top))
        if panel.kind == "share":
            axis.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
        if panel.kind == "count":
            axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xticks(x, list(who), rotation=30, ha="right", fontsize=8)
        axis.set_title(f"{panel.title}\n({gate})", fontsize=10)
        axis.set_ylabel(panel.ylabel.format(seconds=seconds))
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    fig.legend(key.values(), key.keys(), loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle(title)
    return fig
