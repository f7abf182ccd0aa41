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
# # 00 · Dataset overview
#
# **Question.** What is in the ingested replay set: which games, versions, stages, characters and
# player types; how long the games are; which files were rejected and why; how much of it is a
# usable 1v1?
#
# **Inputs.** `artifacts/ingest/games.parquet` and `rejects.parquet` (stage `ingest`,
# `mmlib ingest`; layout in `src/mmlib/data/ingest.py`).
# **Outputs.** `reports/overview/metrics.json`, `game_length.png`, `character_stage.png`.
# **Note.** `research-notes/2026-11-21-ingest.md`.
#
# The shared set is small: 42 real games (about 44 minutes of play), many of them recordings made
# to test parsers (a human against a CPU, one technique each), not tournament play. Read every
# count below with that in mind.

# %% tags=["parameters"]
ingest_dir: str = "artifacts/ingest"  # output folder of `mmlib ingest`
report_dir: str = "reports/overview"  # where metrics and pictures go
params_file: str = "params.yaml"  # stage settings (sections `ingest`, `overview`)

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from mmlib.atomic import write_json
from mmlib.config import stage_params
from mmlib.data import overview

pd.set_option("display.width", 160)
pd.set_option("display.max_rows", 100)
plt.rcParams["figure.dpi"] = 80
min_frames = stage_params("ingest", Path(params_file))["min_frames"]
cfg = stage_params("overview", Path(params_file))
report = Path(report_dir)
report.mkdir(parents=True, exist_ok=True)
games, rejects = overview.load(Path(ingest_dir))
print(f"{len(games)} games, {len(rejects)} rejected files")

# %% [markdown]
# ## The games
# One row per ingested game. `usable_1v1` needs two human-or-CPU players, no teams, a legal
# stage, at least `min_frames` playable frames and a normal end (GAME, or RESOLVED before Slippi
# 2.0); games that fail it stay in the data and are only flagged.

# %%
overview.game_table(games)

# %%
games[["is_1v1", "legal_stage", "enough_frames", "normal_end", "usable_1v1"]].sum().to_frame(
    "games"
)

# %%
games.groupby("end_method", dropna=False).size().to_frame("games")

# %%
games.groupby("slippi_version").agg(games=("md5", "size"), frames=("frames", "sum"))

# %% [markdown]
# ## Rejected files
# Every file that could not be ingested, with the reason class and the parser's own message.

# %%
rejects[["source", "reason", "message"]]

# %% [markdown]
# ## Characters and player types
# Frames per character across both perspectives of each game: the budget behaviour cloning has
# per character. CPU slots press buttons only in the processed mask (SPEC 1.2).

# %%
overview.character_frames(games)

# %%
fig, ax = plt.subplots(figsize=(8, 4))
overview.plot_game_lengths(games, min_frames, cfg["length_bin_s"], ax)
fig.tight_layout()
fig.savefig(report / "game_length.png")

# %%
matrix = overview.character_stage_matrix(games)
fig, ax = plt.subplots(figsize=(8, 0.32 * len(matrix) + 2))
overview.plot_character_stage(matrix, ax)
fig.tight_layout()
fig.savefig(report / "character_stage.png")

# %% [markdown]
# ## Metrics
# Written to `metrics.json` (read by `dvc metrics show`).

# %%
metrics = overview.metrics(games, rejects)
write_json(report / "metrics.json", metrics)
metrics
