# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (mmlib)
#     language: python
#     name: mmlib
# ---

# %% [markdown]
# # 04b · World models side by side
#
# **Question.** On the same split, the same encoding and the same rollout starts, how do the
# frame-stacking MLP and the Mamba-2 compare, teacher-forced and in rollouts, and does either
# beat copy-last-frame and dead reckoning?
#
# **Inputs.** `reports/world_model/<arch>/metrics.json` and `rollout_curve.csv` (stage
# `world_model`). **Outputs.** `reports/world_model/compare/`: `table.md`, `horizon.png`.
# **Note.** `research-notes/2026-11-22-world-model.md`.

# %% tags=["parameters"]
params_file: str = "params.yaml"  # world_model.archs: the architectures compared
report_dir: str = "reports/world_model"

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image, Markdown

from mmlib.worldmodel import figures, report, stage
from mmlib.worldmodel import params as wm_params

plt.rcParams["figure.dpi"] = 80
pd.set_option("display.precision", 4)
root = Path(report_dir)
out = root / "compare"
archs = wm_params.archs(Path(params_file))
curves = {a: pd.read_csv(root / a / "rollout_curve.csv") for a in archs}

# %% [markdown]
# ## The table
# Teacher-forced on every validation frame from the K-th on; rollouts at 10/50/100/200 frames
# after a K-frame real seed. The published models saw 2,000 to 22,000 games.


# %%
stage.compare_table(archs, root)  # also written to compare/table.md

# %% [markdown]
# ## In the published definitions, with intervals
# Position MAE per axis, action and change accuracy of player 0, damage MAE, and stocks
# accuracy (ours); rollout coherence (RC): 300 seeded starts, 20 steps with the recorded
# controllers, the mean per-axis position error. Intervals are 95 % over validation games; a
# verdict is called only where the paired interval against the better yardstick excludes zero,
# and only on 10 games or more. The published rows trained on far more games (their data size
# is in each row), and the RC rows on Final Destination alone.

# %%
metrics = {a: json.loads((root / a / "metrics.json").read_text()) for a in archs}
Markdown(figures.published_tables(metrics))

# %% [markdown]
# ## Error against horizon

# %%
errors = {
    a: {k: c[f"model_{k}"] for k in ("position", "action", "stocks")} for a, c in curves.items()
}
copy = curves[archs[0]]
for who in ("copy_last_frame", "dead_reckoning"):
    errors[who.replace("_", " ")] = {
        k: copy[f"{who}_{k}"] for k in ("position", "action", "stocks")
    }
fig = report.horizon_curves(errors, "world models: rollout error against horizon")
fig.savefig(out / "horizon.png")
plt.close(fig)
Image(str(out / "horizon.png"))
