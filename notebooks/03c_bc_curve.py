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
# # 03c · Behaviour cloning: a learning curve over training games
#
# **Question.** With the recipe fixed (the same steps, batch and model), how do the validation
# loss and each head's change-frame accuracy move as the policy trains on more games? Where the
# intervals of two sizes overlap, more data has not been shown to help (yet).
#
# **Inputs.** `artifacts/shards/<character>` (stage `shards`), the `bc` run on all of the
# character's training games (`reports/bc/<character>/metrics.json`), `params.yaml` sections
# `bc_curve` and `bc` (profile applied).
# **Outputs.** `reports/bc_curve/`: `curve.csv`, `metrics.json`, `curve.png`, and per size
# `n<games>/<character>/` the run's metrics and curves; the policies in `artifacts/bc_curve/`.
# **Note.** `research-notes/2026-12-07-data-v2.md`.
#
# Each size trains on the first N games (md5s) of one fixed shuffle of the training games, so the
# sets are nested, and every size is scored on the same validation games, every window of them,
# with 95 % intervals from resampling whole games (`mmlib.train.intervals`).

# %% tags=["parameters"]
params_file: str = "params.yaml"  # sections `bc_curve` (character, sizes) and `bc` (recipe)
shards_dir: str = "artifacts/shards"
bc_reports: str = "reports/bc"  # the run on every training game: the curve's last point
policy_dir: str = "artifacts/bc_curve"
report_dir: str = "reports/bc_curve"
runs_dir: str = "runs/bc_curve"

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image

from mmlib.atomic import write_json, write_text
from mmlib.config import load_params, stage_params
from mmlib.train import character as bc
from mmlib.train import evaluate, report

plt.rcParams["figure.dpi"] = 80  # the saved PNGs' resolution; the notebook shows those files
pd.set_option("display.precision", 4)
settings = stage_params("bc_curve", Path(params_file))
character, sizes = settings["character"], settings["train_games"]
cfg, _ = bc.recipe(Path(params_file))
out = Path(report_dir)
manifest = json.loads((Path(shards_dir) / character / "manifest.json").read_text())
n_train = len(manifest["split"]["train_md5s"])
profile = load_params(Path(params_file)).get("profile", "smoke")
print(
    f"{character}, profile {profile}: sizes {sizes} and all {n_train} training games, "
    f"{len(manifest['split']['val_md5s'])} validation games, {cfg.steps} steps of {cfg.batch}"
)

# %% [markdown]
# ## Training, one run per size
# The same recipe as the `bc` stage, with `train_games` set; each run resumes from its own
# checkpoint under `runs/bc_curve/n<games>/`.

# %%
runs = {}
for n in sizes:
    if n >= n_train:
        raise ValueError(f"bc_curve.train_games {n} is not below {character}'s {n_train} games")
    where = f"n{n}"
    paths = bc.Paths(
        Path(shards_dir), Path(policy_dir) / where, out / where, Path(runs_dir) / where
    )
    runs[n] = bc.run_character(character, Path(params_file), paths, lambda _: None, train_games=n)
runs[n_train] = json.loads((Path(bc_reports) / character / "metrics.json").read_text())

# %% [markdown]
# ## The curve
# Validation loss (summed over the four heads) beside the calibrated copy-last loss, and each
# head's accuracy on the frames where the human's class changes (copying scores 0 there).

# %%
rows = []
for n, m in sorted(runs.items()):
    held = m["held_out"]
    row = {"train_games": n, "train_rows": m["train_rows"]}
    for name, f in [("loss", held["total"]["loss"])] + [
        (f"{h}_change_acc", held["heads"][h]["change_acc"]) for h in evaluate.HEAD_NAMES
    ]:
        row |= {name: f["value"], f"{name}_lo": f["lo"], f"{name}_hi": f["hi"]}
    rows.append(row)
curve = pd.DataFrame(rows)
copy_last = runs[n_train]["held_out"]["total"]["copy_last_loss"]
write_text(out / "curve.csv", curve.to_csv(index=False, float_format="%.4f"))
write_json(out / "metrics.json", {"character": character, "steps": cfg.steps, "batch": cfg.batch,
           "validation_games": held["n_games"], "copy_last_loss": copy_last,
           "points": [bc.round_floats(r) for r in rows]})  # fmt: skip
curve

# %%
fig = report.learning_curve(curve, copy_last, character)
fig.savefig(out / "curve.png", metadata={"Software": None})
Image(filename=out / "curve.png")

# %% [markdown]
# ## Read it with the data size
# The largest point is the `bc` stage's own policy. Every size trains for the same optimizer
# steps, so the small sets are seen many times over and the large ones a fraction of once:
# at this step budget, more games can help only as much as the steps let the model see them.

# %%
for r in rows:
    print(
        f"{r['train_games']:5d} games: loss {r['loss']:.3f} [{r['loss_lo']:.3f}, "
        f"{r['loss_hi']:.3f}] (calibrated copy-last {copy_last['value']:.3f})"
    )
