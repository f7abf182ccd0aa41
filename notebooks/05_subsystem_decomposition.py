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
# # 05 · Subsystem decomposition: which parts of Melee's dynamics can be learned alone?
#
# **Question.** Split the next-frame dynamics into five game systems: movement, hit detection,
# damage and knockback, action transitions, shield and grab. For each: how well does the
# monolithic world model already predict it, can a small model trained on that subsystem alone
# predict it as well, and what happens when the five small models run together as one simulator?
# The published work planned this and never ran it (SPEC 6.8.1).
#
# **Inputs.** the outputs of `mmlib decompose` (the stage runs it first: it scores the
# monoliths of stage `world_model`, trains one small model per subsystem, resuming from
# `runs/decomposition`, and rolls them out; `mmlib.worldmodel.stage.run_decompose`):
# `artifacts/decomposition/<subsystem>.pt` and `reports/decomposition/` `metrics.json`,
# `table.md`, `rollout_curve.csv`.
# **Outputs.** `reports/decomposition/`: `horizon.png`, `confusion.png`.
# **Note.** `research-notes/2026-11-22-subsystem-decomposition.md`.

# %% tags=["parameters"]
report_dir: str = "reports/decomposition"  # `mmlib decompose`'s reports

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Image, Markdown

from mmlib.worldmodel import report, stage
from mmlib.worldmodel import subsystems as sub
from mmlib.worldmodel.encoding import EncodingConfig

plt.rcParams["figure.dpi"] = 80
pd.set_option("display.precision", 4)
out = Path(report_dir)
metrics = json.loads((out / "metrics.json").read_text())
enc, data, figures = EncodingConfig(**metrics["encoding"]), metrics["data"], metrics["subsystems"]
print(f"encoding {enc.version}, contract {enc.contract}, K = {enc.context}; "
      f"train: {data['train_games']} games, {data['train_frames']:,} frames; "
      f"validation: {data['val_games']} games, {data['val_frames']:,} frames")  # fmt: skip

# %% [markdown]
# ## How much data
# The world models' split: 11 usable games, 8 to train on (about 32K frames) and 3 to validate
# on (about 16K frames, so a few hundred hit onsets and a few thousand action changes). The
# published models saw 2,000 to 22,000 games. Differences of a few points between models here
# are within what another split or seed would move; the note says which are not.

# %% [markdown]
# ## The five subsystems, as code
# Each owns a disjoint set of per-player fields (together, every predicted field), is scored on
# the frames named below, and has one headline metric (`mmlib.worldmodel.subsystems`).

# %%
pd.DataFrame(
    {
        s.name: {
            "owns": ", ".join(s.owns(enc)),
            "headline": s.headline + (" (higher is better)" if s.higher_is_better else ""),
            "why": s.why,
            "rollout metric": s.rollout_label,
        }
        for s in sub.SUBSYSTEMS
    }
).T

# %% [markdown]
# The events the metrics count, on the validation games (per player and frame). A hit onset
# marks both the attacker and the victim (and a shield that is hit), so onsets outnumber damage
# frames; `tests/test_wm_subsystems.py` checks these definitions on the replays.

# %%
pd.DataFrame(
    {
        k: {"player-frames": n, "share": n / metrics["player_frames"]}
        for k, n in metrics["events"].items()
    }
).T

# %% [markdown]
# ## Step 1 · Inside the monoliths
# The trained world models (stage `world_model`), teacher-forced on every validation frame from
# the K-th on, scored per subsystem; copy-last-frame beside them. A monolith's guard state is the
# one its predicted action implies.


# %%
def headlines(who: str) -> dict:
    return {s.name: figures[s.name]["teacher_forced"][who][s.headline] for s in sub.SUBSYSTEMS}


pd.DataFrame(
    {
        **{a: headlines(f"{a}_monolith") for a in metrics["monoliths"]},
        "copy last frame": headlines("copy_last_frame"),
        "dead reckoning": headlines("dead_reckoning"),
    }
)

# %% [markdown]
# ## Step 2 · Standalone
# One small Mamba-2 per subsystem: the same inputs (every field of the K context frames and the
# next controller), only its own targets and loss terms. Trained with the monolith's smoke recipe;
# the best epoch by validation loss is kept.

# %%
pd.DataFrame(
    {
        s.name: {
            "parameters": figures[s.name]["standalone_parameters"],
            "owns": len(figures[s.name]["owns"]),
            s.headline: figures[s.name]["teacher_forced"]["standalone"][s.headline],
        }
        for s in sub.SUBSYSTEMS
    }  # fmt: skip
).T

# %% [markdown]
# ## Rollouts: monoliths, each subsystem alone, and the five recomposed
# From the same seeded starts (K real frames each), 200 frames fed the replay's controllers.
# - a **monolith** predicts every field from its own frames;
# - a **standalone** model predicts only its fields; every other field is read from the replay
#   (the subsystem alone in a true world: the most it could do as a component);
# - **recomposed**: the five standalone models run as one simulator. Each reads the merged frame,
#   predicts its own fields, and a fixed rule assembles the next frame (`rollout.merge`: each
#   field from its owner, then the monolith's reconstruction and clamps). Its guard state is the
#   shield-and-grab model's own.

# %%
horizons = metrics["horizons"]
pd.DataFrame(
    {(s.name, who): v for s in sub.SUBSYSTEMS for who, v in figures[s.name]["rollout"].items()}
).T

# %% [markdown]
# Error against horizon, per subsystem. Solid lines are models; grey, the yardsticks
# (copy-last-frame dashed, dead reckoning dotted: it differs only in position).

# %%
curve = pd.read_csv(out / "rollout_curve.csv")
who = list(figures[sub.SUBSYSTEMS[0].name]["rollout"])  # models first, then the yardsticks
curves = {
    w: {s.rollout: curve[f"{w}_{s.name}".replace(" ", "_")] for s in sub.SUBSYSTEMS
        if f"{w}_{s.name}".replace(" ", "_") in curve}
    for w in who
}  # fmt: skip
panels = [(s.rollout, f"{s.name}\n{s.rollout_label}") for s in sub.SUBSYSTEMS]
title = f"Rollouts per subsystem ({metrics['rollout_starts']} starts, 3 validation games)"
fig = report.horizon_curves(curves, title, panels)
fig.savefig(out / "horizon.png")
plt.close(fig)
Image(str(out / "horizon.png"))

# %% [markdown]
# ## Action transitions by category
# On the frames where the action changes (teacher-forced), the category of the true next action
# against the predicted one (libmelee action-id groups, SPEC 6.5), rows normalised. Predicting
# "the action holds" puts the mass on the previous action's category.

# %%
confusion = metrics["transition_confusion"]
matrices = {k: np.array(v) for k, v in confusion.items() if k != "labels"}
fig = report.confusion(matrices, confusion["labels"], "Action changes: true vs predicted category")
fig.savefig(out / "confusion.png")
plt.close(fig)
Image(str(out / "confusion.png"))

# %% [markdown]
# ## The table
# Headline metric teacher-forced (the recomposed simulator's equals the standalone's there: each
# field comes from the same model), the rollout metric at each horizon, parameters and matmul
# FLOPs per simulated frame (batch 1; measured CPU throughput is in
# `benchmarks/wm_subsystems.py` and the note, since timings never enter a cached output).
# "Decomposes": the standalone headline is as good as the Mamba-2 monolith's or within `margin`
# of it (a score also within `margin` on its complement; `subsystems.decomposes`). Beside it,
# whether each beats copy-last-frame: a subsystem that decomposes but loses to the yardstick has
# only shown that two weak models are equally weak.

# %%
Markdown(stage.decompose_tables(metrics))
