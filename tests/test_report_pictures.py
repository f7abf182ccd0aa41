"""The pictures a researcher reads: every panel says what its axes are, yardsticks and gates drawn.

Small made-up inputs of the right shape; what is checked is the figure's structure (labels,
legend entries, gate lines), not its pixels.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mmlib.play.report import HEALTH_PANELS, health_bars  # noqa: E402
from mmlib.worldmodel.report import horizon_curves  # noqa: E402


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_horizon_panels_have_axis_labels_and_the_yardstick_in_the_legend():
    rng = np.random.default_rng(0)
    curve = {k: rng.random((4, 200)) for k in ("position", "action", "stocks")}
    fig = horizon_curves({"mlp": curve, "copy last frame": curve}, "rollouts")
    for ax in fig.axes:
        assert ax.get_xlabel() == "rollout horizon (frames)"
        assert ax.get_ylabel() and ax.get_ylabel() != ax.get_title()
    assert [a.get_ylabel() for a in fig.axes][0] == "position error (game units)"
    assert _legend_texts(fig) == ["mlp", "copy last frame (yardstick)"]
    plt.close(fig)


def _health(frames: int, **figures) -> dict:
    return {"frames": frames} | figures


def test_health_panels_name_their_figure_and_draw_the_gates():
    human = _health(2400, non_none_share=0.39, stick_neutral_share=0.36, presses_per_s=2.3,
                    trig_presses=25, wavedash_shaped=5)  # fmt: skip
    bot = human | {"presses_per_s": 5.6, "none_prob_mean": 0.68, "top_non_none_share": 0.35}
    metrics = {"health_human": human, "health_bot": {"teacher": bot, "free": bot}}
    fig = health_bars(metrics, "fox")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(HEALTH_PANELS)
    for ax, panel in zip(panels, HEALTH_PANELS, strict=True):
        assert "_" not in ax.get_title()  # a plain-English title, not the variable's name
        assert ax.get_ylabel()
        gate_lines = [
            line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"
        ]
        assert gate_lines == ([panel.gate[1]] if panel.gate else []), panel.key
    assert {"human", "bot, teacher-forced", "bot, free-running"} <= set(_legend_texts(fig))
    plt.close(fig)
