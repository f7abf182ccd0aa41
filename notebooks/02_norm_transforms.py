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
# # 02 · Normalisation transforms
#
# **Question.** What do the 13 numeric features look like before and after their transforms,
# fitted on each character's training games only; and how are the controller classes the model
# must predict distributed?
#
# **Inputs.** `artifacts/ingest` (stage `ingest`), `reports/audit/audit.json` (stage `audit`: the
# kept columns), `params.yaml` section `features` (characters, split).
# **Outputs.** Per character, `artifacts/norm/<character>/` with `mimic_norm.json`,
# `norm_stats.json`, `cat_maps.json`, `stick_clusters.json` and `controller_combos.json` in the
# published formats (SPEC 3.6); `reports/norm/metrics.json`, `transforms.png`,
# `controller_classes.png`.
#
# The transforms are fitted on a handful of games per character (the shared set has 42 games,
# 11 of them usable 1v1): the data-derived ranges (position, percent, shield) are those of these
# few games, not of the game.

# %% tags=["parameters"]
ingest_dir: str = "artifacts/ingest"  # output folder of `mmlib ingest`
audit_json: str = "reports/audit/audit.json"  # kept columns (notebook 01)
out_dir: str = "artifacts/norm"  # per-character metadata folders
report_dir: str = "reports/norm"  # metrics and pictures
params_file: str = "params.yaml"  # section `features`

# %%
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mmlib.atomic import write_json
from mmlib.config import stage_params
from mmlib.features import controller, dataset, report
from mmlib.features.schema import load_schema

plt.rcParams["figure.dpi"] = 80
settings = stage_params("features", Path(params_file))
schema = load_schema(Path(audit_json))
reports = Path(report_dir)
reports.mkdir(parents=True, exist_ok=True)
fitted = dataset.fit_characters(
    Path(ingest_dir), settings["characters"], schema, settings, Path(out_dir)
)
sys.stderr.flush()  # the progress bars' last line first: the two streams otherwise race
print(f"numeric columns from the audit: {', '.join(schema.numeric)}")

# %% [markdown]
# ## The split
# Per character, its usable games are split by replay md5 (seeded); the transforms see only the
# training side. A ditto contributes both perspectives.

# %%
pd.DataFrame(
    {
        c: {
            "train games": len(f.data.split["train_md5s"]),
            "val games": len(f.data.split["val_md5s"]),
            "train perspectives": len(f.data.train),
            "val perspectives": len(f.data.val),
        }
        for c, f in fitted.items()
    }
).T

# %% [markdown]
# ## The fitted transforms
# `standardize` for positions, `normalize` for percent, stocks and jumps, `invert_normalize` for
# the shield (full shield -> -1), fixed `tanh_scale` for speeds, `linear_max` for hitlag and
# `log_max` for hitstun (SPEC 3.5).

# %%
pd.DataFrame({c: f.norm.mimic_norm["features"] for c, f in fitted.items()}).map(
    lambda s: (
        ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else str(v) for k, v in s.items())
        if isinstance(s, dict)
        else s
    )
)

# %% [markdown]
# ## Before and after, all characters' training frames
# Each character's frames go through its own transforms; the histograms pool them. Counts are
# log-scaled: most features sit at 0 most of the time (no hitstun, no knockback). The statistics
# above come from every training frame in one streaming pass; these pictures, from a seeded
# sample of at most `features.sample_frames` frames per character (here every frame).

# %%
before = np.concatenate([f.before for f in fitted.values()])
after = np.concatenate([report.after_transforms(f.before, schema, f.norm) for f in fitted.values()])
fig = plt.figure(figsize=(10, 1.3 * len(schema.numeric)), layout="constrained")
report.plot_transforms(before, after, schema, next(iter(fitted.values())).norm, fig)
fig.savefig(reports / "transforms.png", metadata={"Software": None})

# %%
summary = pd.DataFrame(
    {
        "missing share": np.isnan(before).mean(axis=0),
        "raw min": np.nanmin(before, axis=0),
        "raw max": np.nanmax(before, axis=0),
        "after min": after.min(axis=0),
        "after max": after.max(axis=0),
        "after mean": after.mean(axis=0),
    },
    index=list(schema.numeric),
)
summary

# %% [markdown]
# ## What the heads must predict
# The self player's controller on training frames, in the classes of the four heads. A model
# that always predicts these shares is the honest yardstick for the BC losses (issue 4).

# %%
shares = {c: report.class_shares(f.classes) for c, f in fitted.items()}
fig = plt.figure(figsize=(12, 7), layout="constrained")
report.plot_class_shares(shares, fig)
fig.savefig(reports / "controller_classes.png", metadata={"Software": None})

# %%
pd.DataFrame(
    {
        c: dict(zip(controller.BUTTON_CLASSES, s["button"].round(3), strict=True))
        for c, s in shares.items()
    }
).T


# %%
def entropy(p: np.ndarray) -> float:
    """Cross-entropy (nats) of always predicting the class shares: the baseline loss."""
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


metrics = {
    c: {
        "train_games": len(f.data.split["train_md5s"]),
        "val_games": len(f.data.split["val_md5s"]),
        "train_frames": f.frames,
        "button_shares": dict(
            zip(controller.BUTTON_CLASSES, np.round(shares[c]["button"], 4).tolist(), strict=True)
        ),
        "neutral_main_share": round(float(shares[c]["main"][0]), 4),
        "class_frequency_entropy": {h: round(entropy(s), 4) for h, s in shares[c].items()},
    }
    for c, f in fitted.items()
}
write_json(reports / "metrics.json", metrics)
pd.DataFrame(metrics).T[["train_games", "val_games", "train_frames", "neutral_main_share"]]
