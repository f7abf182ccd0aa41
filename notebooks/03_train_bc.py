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
# # 03 · Behaviour cloning, one character
#
# **Question.** Trained on one character's shards with the `bc` recipe, does the policy predict
# the human's next controller better than the two yardsticks: always predicting the training
# split's class frequencies, and copying the current input? What does it get right and wrong?
#
# **Inputs.** `artifacts/shards/<character>` (stage `shards`), `params.yaml` section `bc`
# (profile applied).
# **Outputs.** `artifacts/bc/<character>/` (the policy directory, loadable alone);
# `reports/bc/<character>/` with `metrics.json`, `train_curve.csv`, `val_curve.csv` (written by
# `mmlib.train.character.run_character`), `curves.png`, `head_scores.png`,
# `button_confusion.png`, `input_strip.png`. The resume checkpoint stays in `runs/bc/<character>`.
# **Note.** `research-notes/2026-11-21-bc.md`.
#
# The stage runs this notebook once per character. Training prints nothing here: a fresh run, a
# resumed one and a finished one give the same notebook, and the curves come from the CSVs.

# %% tags=["parameters"]
character: str = "fox"  # one of params.yaml bc.characters
params_file: str = "params.yaml"  # section `bc` (the recipe)
shards_dir: str = "artifacts/shards"  # per-character shard folders (stage `shards`)
policy_dir: str = "artifacts/bc"  # per-character policy directories
report_dir: str = "reports/bc"  # per-character metrics, curves and pictures
runs_dir: str = "runs/bc"  # per-character resume checkpoints (outside DVC)

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Image, Markdown

from mmlib.checkpoint.directory import load_policy
from mmlib.config import load_params
from mmlib.models.bc import BCTransformer
from mmlib.train import character as bc
from mmlib.train import evaluate, intervals, report

plt.rcParams["figure.dpi"] = 80  # the saved PNGs' resolution; the notebook shows those files
pd.set_option("display.precision", 4)
cfg, model_cfg = bc.recipe(Path(params_file))
paths = bc.Paths(Path(shards_dir), Path(policy_dir), Path(report_dir), Path(runs_dir))
data = paths.shards / character
reports = paths.reports / character
print(f"character {character}, profile {load_params(Path(params_file)).get('profile', 'smoke')}")

# %% [markdown]
# ## The recipe
# `params.yaml` section `bc` with its profile laid over, as `TrainConfig`; the model preset it
# names, as `ModelConfig`.

# %%
pd.Series({k: str(v) for k, v in cfg.to_dict().items()}).to_frame("TrainConfig")

# %%
n_params = sum(p.numel() for p in BCTransformer(model_cfg).parameters())
print(f"preset {cfg.preset}: {n_params:,} parameters, {model_cfg.max_seq_len}-frame windows")
pd.Series({k: str(v) for k, v in model_cfg.to_dict().items()}).to_frame(
    f"ModelConfig ({cfg.preset})"
)

# %% [markdown]
# ## Training
# `run_character` trains (or resumes from `runs/bc/<character>/last.pt`), keeps the weights of
# the best validation pass, and writes the policy directory and the reports.

# %%
training_log: list[str] = []  # kept out of the notebook: a resumed run logs differently
metrics = bc.run_character(character, Path(params_file), paths, training_log.append, False)
print(
    f"{metrics['steps']} steps, best validation pass at step {metrics['best_step']}, "
    f"{metrics['val_windows']} validation windows of {model_cfg.max_seq_len} frames"
)

# %% [markdown]
# ## How much data
# Read every figure below with this table beside it. On the smoke profile (the 42 shared games)
# a character has a few games, split by game, and one validation game: a smoke test of the
# pipeline, not a result about Melee. On the cpu profile (data version 2, 739 games) there are
# 10-45 validation games a character, still far below the published bots' 2,290-51,751 games.

# %%
split = json.loads((data / "manifest.json").read_text())["split"]
pd.Series(
    {
        "train games": len(split["train_md5s"]),
        "train rows (frames)": metrics["train_rows"],
        "validation games": len(split["val_md5s"]),
        "validation windows": metrics["val_windows"],
        "parameters": metrics["n_params"],
        "training windows seen": metrics["steps"] * cfg.batch,
    }
).to_frame(character)

# %% [markdown]
# ## Loss curves
# Training loss (mean over each `log_every` steps, with dropout) and validation loss (every
# `eval_every` steps, on the same fixed windows each time). The dashed line is the class-frequency
# baseline: the loss of always predicting the training split's class shares.

# %%
train_rows = pd.read_csv(reports / "train_curve.csv").to_dict("records")
val_rows = pd.read_csv(reports / "val_curve.csv").to_dict("records")
baseline = metrics["frequency_baseline"]
fig = report.curves(train_rows, val_rows, baseline["total"], baseline)
fig.savefig(reports / "curves.png", metadata={"Software": None})
Image(filename=reports / "curves.png")

# %% [markdown]
# ## The policy directory, loaded alone
# `load_policy` rebuilds the model from `artifacts/bc/<character>/` only (config, weights,
# normalisation files); its losses on the validation windows must be the run's.

# %%
policy = load_policy(paths.policies / character, evaluate.default_device())
windows = evaluate.val_windows(data / "val", policy.config.max_seq_len, cfg.eval_windows)
val_loss, preds = evaluate.predict(policy.model, windows, cfg.batch, policy.device)
targets = evaluate.targets_by_head(windows)
scores = evaluate.head_metrics(preds, targets, evaluate.previous_classes(windows))
same = all(np.isclose(val_loss[k], metrics["val_loss"][k], atol=1e-5) for k in val_loss)
print(f"loaded {policy.metadata['run_name']} (step {policy.metadata['global_step']})")
print(f"validation losses equal the run's: {same}")
assert same, f"reloaded policy's validation losses {val_loss} != the run's {metrics['val_loss']}"

# %% [markdown]
# ## Per head, against the yardsticks
# Loss against the class-frequency baseline (lower is better); accuracy and macro-F1 (mean F1
# over the classes present) against the accuracy of copying the current input. Copying is strong
# on 60 fps input: most frames repeat the last one. So each head is also scored on the frames
# where the human's class changes ("change accuracy"), where copying scores 0.

# %%
pd.DataFrame(
    {
        "val loss": {h: val_loss[h] for h in (*evaluate.HEAD_NAMES, "total")},
        "baseline loss": baseline,
        "accuracy": {h: scores[h]["acc"] for h in evaluate.HEAD_NAMES},
        "copy-last accuracy": metrics["copy_last_acc"],
        "change accuracy": {h: scores[h]["change_acc"] for h in evaluate.HEAD_NAMES},
        "change frames": {h: scores[h]["change_frames"] for h in evaluate.HEAD_NAMES},
        "macro-F1": {h: scores[h]["macro_f1"] for h in evaluate.HEAD_NAMES},
    }
).round(4).astype(object).fillna("")

# %%
fig = report.head_scores({"val": scores, "copy_last_acc": metrics["copy_last_acc"]})
fig.savefig(reports / "head_scores.png", metadata={"Software": None})
Image(filename=reports / "head_scores.png")

# %% [markdown]
# ## Every validation window, with intervals over games
# The figures above score the thinned windows training's passes use. `held_out` scores every
# window of every validation game; each figure has a 95 % interval from resampling whole games,
# and the policy `beats` or `loses` to copy-last only where the interval of the paired
# difference excludes zero (else `tie`). The calibrated copy-last loss copies the current class
# with the probability fitted on the training frames and spreads the rest by class frequency:
# the loss a model must beat, far below the class-frequency one.

# %%
Markdown(intervals.markdown(metrics["held_out"]))

# %% [markdown]
# ## Idle or acting
# A policy that collapses onto the most common classes stands still: the share of frames it
# predicts a neutral main stick or no button, beside the human's.

# %%
print(f"c-stick accuracy on frames where the human uses it: {scores['c']['active_acc']:.3f}")
pd.DataFrame(
    {"neutral main stick": scores["neutral_main"], "no button (NONE)": scores["none_button"]}
).T

# %% [markdown]
# ## Buttons
# Rows are the human's button class (frames in brackets), columns the model's; each row sums to 1.

# %%
fig = report.button_confusion(preds["button"], targets["button"])
fig.savefig(reports / "button_confusion.png", metadata={"Software": None})
Image(filename=reports / "button_confusion.png")

# %% [markdown]
# ## The inputs over time
# The first 300 frames (5 seconds) of the first validation game, in consecutive windows (dotted
# lines: each window starts with no context, as validation scores them). Grey is what the human
# pressed on the next frame, red the model's most likely class; the main stick is shown as the x
# and y of its class centre.

# %%
pred, true, frames = report.strip_data(policy, data / "val", 300, cfg.batch)
fig = report.input_strip(pred, true, frames, policy.config.max_seq_len)
fig.savefig(reports / "input_strip.png", metadata={"Software": None})
Image(filename=reports / "input_strip.png")

# %% [markdown]
# ## Metrics
# `run_character` has written `metrics.json` (read by `dvc metrics show`); the headline:

# %%
print(f"val loss {metrics['val_loss']['total']:.4f}, baseline {baseline['total']:.4f}")
for h in evaluate.HEAD_NAMES:
    print(
        f"{h:8s} loss {metrics['val_loss'][h]:.4f} (baseline {baseline[h]:.4f}), "
        f"acc {metrics['val'][h]['acc']:.3f} (copy-last {metrics['copy_last_acc'][h]:.3f}), "
        f"on changes {metrics['val'][h]['change_acc'] or 0:.3f} (copy-last 0)"
    )
