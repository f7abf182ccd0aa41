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
# # 04 · World model: predict the next frame of Melee
#
# **Question.** Given the last K frames of a game and both players' controller inputs for the
# next frame, how well does a model predict that next frame (teacher-forced), and how far does
# it stay on track when it feeds itself its own frames for 10 to 200 frames (rollouts)? Against
# two yardsticks any useful model must beat: copy-last-frame (nothing moves, the action holds)
# and dead reckoning (each player moves by its last velocity, the action holds).
#
# **Inputs.** the outputs of `mmlib world-model <arch>` (the stage runs it first: it trains,
# resuming from `runs/world_model/<arch>`, and scores; `mmlib.worldmodel.stage.run_arch`):
# `artifacts/world_model/<arch>/model.pt` and `reports/world_model/<arch>/` `metrics.json`,
# `train_curve.csv`, `val_curve.csv`, `rollout_curve.csv`; `artifacts/wm_frames` (stage
# `wm_frames`) for the one rollout drawn.
# **Outputs.** `reports/world_model/<arch>/`: `curves.png`, `horizon.png`, `trajectory.png`.
# **Note.** `research-notes/2026-11-22-world-model.md`.
#
# The stage runs this notebook once per architecture (`-p arch mlp`, `-p arch mamba2`); it reads
# and draws, and trains nothing.

# %% tags=["parameters"]
arch: str = "mlp"  # one of params.yaml world_model.archs
frames_dir: str = "artifacts/wm_frames"  # stage `wm_frames`
model_dir: str = "artifacts/world_model"  # per-architecture checkpoints
report_dir: str = "reports/world_model"  # per-architecture metrics, curves and pictures

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image

from mmlib.worldmodel import figures, frame_store, report, rollout, train

plt.rcParams["figure.dpi"] = 80
pd.set_option("display.precision", 4)
out = Path(report_dir) / arch
metrics = json.loads((out / "metrics.json").read_text())
model = train.load(Path(model_dir) / arch / train.MODEL_FILE)
enc, data = model.cfg.encoding, metrics["data"]
print(f"{arch}: {metrics['parameters']:,} parameters; encoding {enc.version} "
      f"({enc.frame_dim} per frame), contract {enc.contract}, K = {enc.context}")  # fmt: skip
print(f"train: {data['train_games']} games, {data['train_frames']:,} frames; "
      f"validation: {data['val_games']} games, {data['val_frames']:,} frames")  # fmt: skip

# %% [markdown]
# ## How much data
# Two-player games whose replays record every encoded field (Slippi 3.8 and later) and have at
# least 5 s of play (the counts are printed above). The published models trained on 2,000 to
# 22,000 games (SPEC 6.4): one to four orders of magnitude more than these profiles hold, so
# these figures set a floor; they are not a measure of what these architectures can do.

# %% [markdown]
# ## Training
# AdamW (weight decay 1e-5), grad-norm clip 1.0, cosine over the epochs stepped once per epoch,
# the weighted loss of SPEC 6.2.2; the best epoch by validation loss is kept.

# %%
epochs = metrics["steps"] / metrics["epoch_steps"]
print(f"best at epoch {metrics['best_epoch']:g} of {epochs:g} ({metrics['epoch_steps']} steps "
      f"an epoch); validation loss {metrics['val_loss']}")  # fmt: skip
fig = report.curves(
    pd.read_csv(out / "train_curve.csv"), pd.read_csv(out / "val_curve.csv"), f"{arch}: loss"
)
fig.savefig(out / "curves.png")
plt.close(fig)
Image(str(out / "curves.png"))

# %% [markdown]
# ## Teacher-forced, on the validation games
# Every frame from the K-th on, predicted from the real frames before it and the real next
# controller. Action accuracy is pooled over both players (`_p0`: player 0 alone, the published
# figure); change accuracy counts only frames whose action differs from the last context frame's
# (the hard part: about 7% of frames). Position MAE is per axis, in game units; damage in percent.

# %%
tf = metrics["teacher_forced"]
scalars = ["action_acc", "action_acc_p0", "change_acc", "change_acc_p0", "position_mae",
           "damage_mae"]  # fmt: skip
pd.DataFrame(
    {
        arch: {k: tf[k] for k in scalars},
        "copy last frame": tf["copy_last_frame"],
        "dead reckoning": tf["dead_reckoning"],
    }
).T

# %% [markdown]
# The same in the published definitions (player 0's action and change accuracy, per-axis
# position MAE, damage MAE, and our stocks accuracy: a stock count within half a stock), each
# with a 95 % interval over the validation games, and the model's paired difference from the
# better yardstick (a verdict only on 10 games or more: an interval holding 0 is a tie).

# %%
published = metrics["published_definitions"]["teacher_forced"]
cell = figures.cell  # `value [lo, hi]`
pd.DataFrame(
    {who.replace("_", " "): {k: cell(v) for k, v in published[who].items()}
     for who in ("model", "copy_last_frame", "dead_reckoning")}
    | {"model - better yardstick": {k: f"{cell(v)} {v['verdict']} ({v['yardstick']})"
                                    for k, v in published["model_vs_yardstick"].items()}}
).T  # fmt: skip

# %%
pd.DataFrame(tf["category_acc"]).T

# %% [markdown]
# ## Rollouts
# Seeded with K real frames at `rollout_starts` seeded points of the validation games, then fed
# only its own frames and the replay's controller inputs, with the physical clamps; a stock
# count stays whole and falls only on entering a DEAD_* action (`rollout.whole_stocks`).
# Position error is Euclidean (game units) averaged over both players; stocks agree when both
# players' counts equal the replay's.

# %%
roll = metrics["rollout"]
pd.DataFrame(
    {
        f"{who} @ {h}": figs
        for who in ("model", "copy_last_frame", "dead_reckoning")
        for h, figs in roll[who].items()
    }  # fmt: skip
).T

# %% [markdown]
# Rollout coherence as AWM published it: 300 seeded starts, 20 steps, the per-axis position
# error of both players averaged over the steps (RC), and over the first 5 and 10; all stages,
# then the Final Destination starts alone (the published RC used FD games only).

# %%
rc = metrics["published_definitions"]["rollout_coherence"]
pd.DataFrame(
    {f"{who.replace('_', ' ')}, {subset} ({rc[subset]['starts']} starts)":
     {k: cell(v) for k, v in rc[subset][who].items()}
     for subset in ("all", "final_destination") if rc[subset]["starts"]
     for who in ("model", "copy_last_frame", "dead_reckoning")}
).T  # fmt: skip

# %%
curve = pd.read_csv(out / "rollout_curve.csv")
names = {"model": arch, "copy_last_frame": "copy last frame", "dead_reckoning": "dead reckoning"}
errors = {
    label: {c[len(who) + 1 :]: curve[c] for c in curve if c.startswith(f"{who}_")}
    for who, label in names.items()
}
title = f"{arch}: rollout error against horizon ({roll['starts']} starts)"
fig = report.horizon_curves(errors, title)
fig.savefig(out / "horizon.png")
plt.close(fig)
Image(str(out / "horizon.png"))

# %% [markdown]
# ## One 200-frame rollout against the replay
# The start with the median 200-frame position error: predicted (red) and true (black) x, y and
# percent of both players.

# %%
_, val_frames = frame_store.load(Path(frames_dir), enc)
start = metrics["trajectory_start"]
pred_f, _ = rollout.rollout(model, val_frames, [start], len(curve))
fig = report.trajectory(
    val_frames, start, pred_f[0].numpy(),
    f"{arch}: a {len(curve)}-frame rollout (median error of {roll['starts']})",
)  # fmt: skip
fig.savefig(out / "trajectory.png")
plt.close(fig)
Image(str(out / "trajectory.png"))
