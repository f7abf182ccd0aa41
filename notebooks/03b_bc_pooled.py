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
# # 03b · One pooled policy against one policy per character
#
# **Question.** MIMIC's bots are character-locked: one model per character. The model already
# reads both players' characters, so can one policy, trained on every human perspective of every
# game, replace them? On each character's own validation games, is it better or worse than that
# character's model, and than copying the current input?
#
# **Inputs.** `artifacts/bc/<character>` and `artifacts/bc/all` (stages `bc` and `bc_pooled`),
# `artifacts/shards/<character>` and `artifacts/shards/all`; `params.yaml` sections `bc` and
# `features`. **Outputs.** `reports/bc_pooled/`: `metrics.json`, `table.md`, `compare.png`.
# **Note.** `research-notes/2026-12-06-yardsticks.md`.

# %% tags=["parameters"]
params_file: str = "params.yaml"  # sections `bc` (characters, recipe) and `features`
shards_dir: str = "artifacts/shards"
policy_dir: str = "artifacts/bc"
report_dir: str = "reports/bc_pooled"

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image, Markdown

from mmlib.atomic import write_json, write_text
from mmlib.config import stage_params
from mmlib.features.split import POOLED
from mmlib.train import character as bc
from mmlib.train import evaluate, pooled, report

plt.rcParams["figure.dpi"] = 80
pd.set_option("display.precision", 4)
cfg, _ = bc.recipe(Path(params_file))
characters = [c for c in stage_params("bc", Path(params_file))["characters"] if c != POOLED]
features = stage_params("features", Path(params_file))
out = Path(report_dir)
out.mkdir(parents=True, exist_ok=True)
manifest = json.loads((Path(shards_dir) / POOLED / "manifest.json").read_text())
print(f"pooled: {len(manifest['split']['train_md5s'])} training games "
      f"({manifest['train']['rows']:,} rows, {len(manifest['train']['games'])} perspectives); "
      f"quit-ended games {'in' if features.get('include_quits') else 'left out'}")  # fmt: skip

# %% [markdown]
# ## The data each model saw
# Per character, the training rows of its own model; the pooled model saw all of the pooled
# rows. Both trained for the same steps and batch (`bc` recipe), so the pooled model sees each
# frame fewer times.

# %%
per_character = {
    c: json.loads((Path(shards_dir) / c / "manifest.json").read_text())["train"]["rows"]
    for c in characters
}
pd.Series(per_character | {"all (pooled)": manifest["train"]["rows"]}, name="training rows")

# %% [markdown]
# ## On each character's validation games
# Loss in nats (lower is better) beside the class-frequency baseline; top-1 accuracy beside
# copying the current input; accuracy on the frames where the human's class changes (copying
# scores 0 there).

# %%
result = pooled.compare(Path(shards_dir), Path(policy_dir), characters, cfg.eval_windows,
                        cfg.batch, evaluate.default_device())  # fmt: skip
rows = {}
for c, r in result.items():
    for who in ("per_character", "pooled"):
        s = r[who]
        rows[(c, who.replace("_", " "))] = {"val loss": s["loss"]["total"]} | {
            f"{h} acc": s[h]["acc"] for h in evaluate.HEAD_NAMES
        } | {f"{h} change acc": s[h]["change_acc"] for h in evaluate.HEAD_NAMES}  # fmt: skip
    rows[(c, "copy last input")] = {"val loss": None} | {
        f"{h} acc": r["copy_last_acc"][h] for h in evaluate.HEAD_NAMES
    } | {f"{h} change acc": 0.0 for h in evaluate.HEAD_NAMES}  # fmt: skip
    rows[(c, "class frequency")] = {"val loss": r["frequency_baseline"]["total"]}
table = pd.DataFrame(rows).T
table.index.names = ["character", "model"]
table.astype(object).fillna("")

# %% [markdown]
# ## With intervals, every window of the same games
# The table above scores the thinned validation windows, as training's passes do. Below, every
# window of each character's validation games, each figure with its 95 % interval over games
# (resampling whole games), the calibrated copy-last loss beside the class-frequency one, and
# a verdict only where an interval of a paired difference excludes zero: otherwise `tie`.

# %%
held_table = pooled.table(result)
write_text(out / "table.md", held_table + "\n")
Markdown(held_table)

# %%
fig = report.pooled_comparison(result)
fig.savefig(out / "compare.png", metadata={"Software": None})
plt.close(fig)
Image(filename=out / "compare.png")

# %%
write_json(out / "metrics.json", bc.round_floats(result))
