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
archs: list = ["mlp", "mamba2"]  # params.yaml world_model.archs
report_dir: str = "reports/world_model"

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image

from mmlib.atomic import write_text
from mmlib.worldmodel import report

plt.rcParams["figure.dpi"] = 80
pd.set_option("display.precision", 4)
root = Path(report_dir)
out = root / "compare"
out.mkdir(parents=True, exist_ok=True)
metrics = {a: json.loads((root / a / "metrics.json").read_text()) for a in archs}
curves = {a: pd.read_csv(root / a / "rollout_curve.csv") for a in archs}

# %% [markdown]
# ## The table
# Teacher-forced on every validation frame from the K-th on; rollouts at 10/50/100/200 frames
# after a K-frame real seed. 11 games (about 32K training frames): the published models saw
# 2,000 to 22,000 games.


# %%
def row(parameters: str, tf: dict, roll: dict) -> dict:
    """One line of the table from teacher-forced figures and rollout figures by horizon."""
    return (
        {
            "parameters": parameters,
            "action acc": tf["action_acc"],
            "change acc": tf["change_acc"],
            "position MAE": tf["position_mae"],
            "damage MAE": tf["damage_mae"],
        }
        | {f"pos err @{h}": roll[h]["position"] for h in ("10", "50", "100", "200")}
        | {f"action @{h}": roll[h]["action"] for h in ("10", "200")}
    )


rows = {
    a: row(f"{m['parameters']:,}", m["teacher_forced"], m["rollout"]["model"])
    for a, m in metrics.items()
}
first = metrics[archs[0]]  # the yardstick is the same for every architecture (same frames)
for who in ("copy_last_frame", "dead_reckoning"):
    rows[who.replace("_", " ")] = row("0", first["teacher_forced"][who], first["rollout"][who])
table = pd.DataFrame(rows).T
write_text(out / "table.md", table.to_markdown() + "\n")
table

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
