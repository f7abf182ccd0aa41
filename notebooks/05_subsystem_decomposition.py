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
# **Outputs.** `reports/decomposition/`: `horizon.png`, `oracle_horizon.png`, `confusion.png`.
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
# ## How much data, and how sure
# The world models' split (stage `world_model`); the published models saw 2,000 to 22,000 games.
# Frames of one game are not independent (one matchup, one stage, one pair of players), so every
# teacher-forced headline below comes with a 95 % interval from resampling whole validation games
# (`mmlib.worldmodel.intervals`), and two predictors are compared on the same resamples (a paired
# difference). Below the minimum number of games the intervals are shown but no verdict is called.

# %%
boot = metrics["bootstrap"]
too_few = "**too few here: no verdict is called** (`too few games`, unless not measurable)."
Markdown(
    f"{data['val_games']} validation games ({data['val_frames']:,} frames), {boot['n_boot']} "
    f"resamples (seed {boot['seed']}); a verdict needs at least {boot['min_games']} games: "
    + ("enough here." if data["val_games"] >= boot["min_games"] else too_few)
)

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
# the K-th on, scored per subsystem, with the two yardsticks beside them: copy-last-frame and dead
# reckoning (the last velocity carried forward; it differs from copy-last-frame only in
# movement). A monolith's guard state is the one its predicted action implies. Each cell: the
# headline and its interval.


# %%
def headlines(who: str) -> dict:
    return {s.name: stage.with_interval(figures[s.name]["intervals"][who]) for s in sub.SUBSYSTEMS}


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
            s.headline: stage.with_interval(figures[s.name]["intervals"]["standalone"]),
        }
        for s in sub.SUBSYSTEMS
    }  # fmt: skip
).T

# %% [markdown]
# ## Does a subsystem decompose?
# A standalone model **decomposes** its subsystem when it beats the better of the two yardsticks
# on the headline: the paired difference (standalone minus yardstick) has an interval clear of 0
# on the good side. Matching the monolith is not enough: a standalone as good as a monolith that
# itself loses to copy-last-frame has only shown that two weak models are equally weak. The
# verdict reads
# - `yes`: it beats the better yardstick; `no`: it ties or loses;
# - `not measurable here`: the headline is undefined (no frames to score) or the same for every
#   model and both yardsticks (an onset F1 of 0 all round says nothing about who learned more);
# - `too few games`: fewer validation games than the minimum above.
#
# Beside it, reported but not the criterion: the standalone model against the Mamba-2 monolith
# (same architecture, same rows, so paired), and the monolith against the better yardstick.

# %%
stage.verdict_table(metrics)

# %%
said = {}
for s in sub.SUBSYSTEMS:
    said.setdefault(figures[s.name]["decomposes"], []).append(s.name)
Markdown("\n".join(f"- **{verdict}**: {', '.join(names)}" for verdict, names in said.items()))

# %% [markdown]
# ## Rollouts: free-running, and each subsystem alone
# From the same seeded starts (K real frames each), fed the replay's controllers. Two different
# questions, so two tables:
# - **free-running**: every field is predicted. A **monolith** predicts every field from its own
#   frames; **recomposed**, the five standalone models run as one simulator: each reads the merged
#   frame, predicts its own fields, and a fixed rule assembles the next frame (`rollout.merge`:
#   each field from its owner, then the monolith's reconstruction and clamps). Its guard state is
#   the shield-and-grab model's own.
# - **oracle mode**: a standalone model predicts only its fields; every other field is read from
#   the replay (the subsystem alone in a true world: the most it could do as a component). It is
#   not comparable with the free-running rows, whose errors compound across subsystems; the
#   yardsticks are repeated beside it for reference.

# %%
stage.rollout_table(metrics, "free_running")

# %%
stage.rollout_table(metrics, "oracle")

# %% [markdown]
# Error against horizon, per subsystem, free-running and then in oracle mode. Solid lines are
# models; grey, the yardsticks (copy-last-frame dashed, dead reckoning dotted: it differs only in
# position).

# %%
curve = pd.read_csv(out / "rollout_curve.csv")
panels = [(s.rollout, f"{s.name}\n{s.rollout_label}") for s in sub.SUBSYSTEMS]


def curves_of(who: list[str]) -> dict:
    """{predictor: {rollout metric: per-step curve}} from `rollout_curve.csv`."""
    column = lambda w, s: f"{w}_{s.name}".replace(" ", "_")  # noqa: E731
    return {w: {s.rollout: curve[column(w, s)] for s in sub.SUBSYSTEMS if column(w, s) in curve}
            for w in who}  # fmt: skip


free = stage.in_order(figures[sub.SUBSYSTEMS[0].name]["rollout"]["free_running"])
oracle = ["standalone oracle", "copy last frame", "dead reckoning"]
starts = f"{metrics['rollout_starts']} starts, {data['val_games']} validation games"
for who, name, title in (
    (free, "horizon.png", f"Free-running rollouts per subsystem ({starts})"),
    (oracle, "oracle_horizon.png", f"Each subsystem alone, the rest from the replay ({starts})"),
):
    fig = report.horizon_curves(curves_of(who), title, panels)
    fig.savefig(out / name)
    plt.close(fig)
Image(str(out / "horizon.png"))

# %%
Image(str(out / "oracle_horizon.png"))

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
# `table.md`, as the stage wrote it: the teacher-forced headlines with their intervals (the
# recomposed simulator's equals the standalone's there: each field comes from the same model),
# the verdicts, both rollout tables, and parameters and matmul FLOPs per simulated frame (batch 1;
# measured CPU throughput is in `benchmarks/wm_subsystems.py` and the note, since timings never
# enter a cached output).

# %%
Markdown(stage.decompose_tables(metrics))
