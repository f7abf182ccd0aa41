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
# **Inputs.** `artifacts/wm_frames` (stage `wm_frames`: the encoded games, memory-mapped),
# `params.yaml` section `world_model`.
# **Outputs.** `artifacts/world_model/<arch>/model.pt` (a checkpoint that carries its config);
# `reports/world_model/<arch>/`: `metrics.json`, `curves.png`, `trajectory.png`, `horizon.png`,
# `rollout_curve.csv`. The resume file stays in `runs/world_model/<arch>`.
# **Note.** `research-notes/2026-11-22-world-model.md`.
#
# The stage runs this notebook once per architecture (`-p arch mlp`, `-p arch mamba2`).
# Training prints nothing here, so a fresh, a resumed and a finished run give the same notebook.

# %% tags=["parameters"]
arch: str = "mlp"  # one of params.yaml world_model.archs
params_file: str = "params.yaml"  # section `world_model`
frames_dir: str = "artifacts/wm_frames"  # stage `wm_frames`
model_dir: str = "artifacts/world_model"  # per-architecture checkpoints
report_dir: str = "reports/world_model"  # per-architecture metrics and pictures
runs_dir: str = "runs/world_model"  # per-architecture resume files (outside DVC)

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Image

from mmlib.atomic import write_json, write_text
from mmlib.worldmodel import evaluate, frame_store, models, report, train
from mmlib.worldmodel.config import recipe

plt.rcParams["figure.dpi"] = 80
pd.set_option("display.precision", 4)
model_cfg, train_cfg, settings = recipe(Path(params_file), arch)
enc = model_cfg.encoding
out = Path(report_dir) / arch
out.mkdir(parents=True, exist_ok=True)
train_frames, val_frames = frame_store.load(
    Path(frames_dir), enc, settings["val_frac"], settings["split_seed"]
)
print(f"{arch}: encoding {enc.version} ({enc.frame_dim} per frame), contract {enc.contract}, "
      f"K = {enc.context}")  # fmt: skip
print(f"train: {len(train_frames.md5s)} games, {train_frames.n_frames:,} frames; "
      f"validation: {len(val_frames.md5s)} games, {val_frames.n_frames:,} frames")  # fmt: skip

# %% [markdown]
# ## How much data
# Two-player games whose replays record every encoded field (Slippi 3.8 and later) and have at
# least 5 s of play: 11 of the 42 games, about 49K frames in all. The published models trained
# on 2,000 to 22,000 games (SPEC 6.4): four orders of magnitude more. These figures test the
# pipeline end to end and set a floor; they are not a measure of what these architectures can do.

# %% [markdown]
# ## Training
# AdamW (weight decay 1e-5), grad-norm clip 1.0, cosine over the epochs stepped once per epoch,
# the weighted loss of SPEC 6.2.2; the best epoch by validation loss is kept.

# %%
model, history = train.train(
    model_cfg, train_cfg, train_frames, val_frames, Path(runs_dir) / arch, log=lambda _: None
)
Path(model_dir, arch).mkdir(parents=True, exist_ok=True)
train.save(Path(model_dir) / arch / "model.pt", model, history, train_cfg)
print(f"{models.n_params(model):,} parameters; best epoch {history.best_epoch} of "
      f"{train_cfg.epochs}")  # fmt: skip
fig = report.curves(history, f"{arch}: loss per epoch")
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
torch.set_num_threads(train_cfg.threads)
tf = evaluate.teacher_forced_metrics(evaluate.teacher_forced(model, val_frames))
scalars = ["action_acc", "action_acc_p0", "change_acc", "change_acc_p0", "position_mae",
           "damage_mae"]  # fmt: skip
pd.DataFrame(
    {
        arch: {k: tf[k] for k in scalars},
        "copy last frame": tf["copy_last_frame"],
        "dead reckoning": tf["dead_reckoning"],
    }
).T

# %%
pd.DataFrame(tf["category_acc"]).T

# %% [markdown]
# ## Rollouts
# Seeded with K real frames at `rollout_starts` seeded points of the validation games, then fed
# only its own frames and the replay's controller inputs, with the physical clamps. Position
# error is Euclidean (game units) averaged over both players; stocks agree when they round to
# the replay's.

# %%
roll, (starts, pred_f, pred_i, errors) = evaluate.rollout_metrics(
    model, val_frames, settings["rollout_starts"], settings["rollout_seed"]
)
pd.DataFrame(
    {
        f"{who} @ {h}": figures
        for who in ("model", "copy_last_frame", "dead_reckoning")
        for h, figures in roll[who].items()
    }  # fmt: skip
).T

# %%
steps = {"step": np.arange(1, pred_f.shape[1] + 1)}
for who, e in errors.items():
    for metric, v in e.items():
        steps[f"{who}_{metric}"] = [evaluate.sig(x) for x in np.asarray(v, float).mean(0)]
write_text(out / "rollout_curve.csv", pd.DataFrame(steps).to_csv(index=False))
fig = report.horizon_curves(
    {
        arch: errors["model"],
        "copy last frame": errors["copy_last_frame"],
        "dead reckoning": errors["dead_reckoning"],
    },
    f"{arch}: rollout error against horizon ({roll['starts']} starts)",
)
fig.savefig(out / "horizon.png")
plt.close(fig)
Image(str(out / "horizon.png"))

# %% [markdown]
# ## One 200-frame rollout against the replay
# The start with the median 200-frame position error: predicted (red) and true (black) x, y and
# percent of both players.

# %%
final = errors["model"]["position"][:, -1]
pick = int(np.argsort(final)[len(final) // 2])
fig = report.trajectory(
    val_frames, int(starts[pick]), pred_f[pick].numpy(),
    f"{arch}: a 200-frame rollout (median error of {roll['starts']})",
)  # fmt: skip
fig.savefig(out / "trajectory.png")
plt.close(fig)
Image(str(out / "trajectory.png"))

# %%
metrics = {
    "arch": arch,
    "parameters": models.n_params(model),
    "encoding": enc.to_dict(),
    "data": {
        "train_games": len(train_frames.md5s),
        "train_frames": train_frames.n_frames,
        "val_games": len(val_frames.md5s),
        "val_frames": val_frames.n_frames,
        "val_md5s": val_frames.md5s,
    },
    "best_epoch": history.best_epoch,
    "val_loss": evaluate.sig(history.best_loss),
    "teacher_forced": tf,
    "rollout": roll,
}
write_json(out / "metrics.json", metrics)
