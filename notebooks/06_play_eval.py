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
# # 06 · Play on replays, no emulator
#
# **Question.** Fed a real validation game through libmelee's file console exactly as live play
# feeds it (the same streaming policy, the same decode path), does the bot act like the human?
# Teacher-forced, how often does it choose what the human did next, against copying the
# human's current input? Free-running on its own inputs, does it keep pressing buttons or
# collapse into NONE? How far does streaming (a rolling key/value cache) drift from the published
# fixed-window recompute, and does the neutral prefill matter?
#
# **Inputs.** `artifacts/bc/<character>` (stage `bc`), `artifacts/shards/<character>/manifest.json`
# (which games are validation, which port), `artifacts/ingest/games.parquet` (their replay files),
# `params.yaml` section `play`.
# **Outputs.** `reports/play/<character>/`: `metrics.json`, `timeline.png`, `health.png`;
# `artifacts/play/<character>/inputs.parquet` (every frame's inputs of the bot in each run and of
# the human).
# **Note.** `research-notes/2026-11-21-play.md`.

# %% tags=["parameters"]
inputs_dir: str = "artifacts/play"  # every frame's inputs, per character (DVC cache)
character: str = "fox"  # one of params.yaml bc.characters
params_file: str = "params.yaml"  # section `play`
policy_dir: str = "artifacts/bc"  # per-character policy directories (stage `bc`)
shards_dir: str = "artifacts/shards"  # per-character manifests (stage `shards`)
games_parquet: str = "artifacts/ingest/games.parquet"  # md5 -> replay file (stage `ingest`)
report_dir: str = "reports/play"  # per-character outputs
timeline_start: int = 1200  # the stretch drawn in timeline.png: its first frame (teacher run)
timeline_frames: int = 600

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pyarrow.parquet as pq
import torch
from IPython.display import Image

from mmlib.atomic import atomic_path, write_json
from mmlib.checkpoint.directory import load_policy
from mmlib.config import stage_params
from mmlib.play import evaluate, report

plt.rcParams["figure.dpi"] = 80
pd.set_option("display.precision", 4)
settings = stage_params("play", Path(params_file))
torch.set_num_threads(settings["threads"])
policy = load_policy(Path(policy_dir) / character)
games = evaluate.validation_games(Path(shards_dir) / character, Path(games_parquet))
out = Path(report_dir) / character
out.mkdir(parents=True, exist_ok=True)
driven = len(games[: settings.get("max_games") or None])  # evaluate's cut: the first by md5
print(f"{character}: {len(games)} validation game(s), {driven} driven, settings {settings}")

# %% [markdown]
# ## The runs
# Three drives per game: teacher-forced with the neutral prefill, teacher-forced with no
# prefill, free-running with the neutral prefill (each capped at `max_frames` fed frames). Each
# frame's four heads are sampled at the `play.temperature` with a seeded generator.

# %%
metrics, inputs = evaluate.evaluate(policy, games, settings)
data_out = Path(inputs_dir) / character  # data, in the DVC cache (not git)
data_out.mkdir(parents=True, exist_ok=True)
with atomic_path(data_out / "inputs.parquet") as tmp:
    pq.write_table(inputs, tmp)
write_json(out / "metrics.json", metrics)
print(f"{metrics['frames']:,} frames per run; inputs: {inputs.num_rows:,} rows")

# %% [markdown]
# ## How much data
# On the smoke profile: one policy trained on one to three games, driven through one to three
# other games of the same small replay set (42 games in all). On the cpu profile: trained on
# 56-393 games of data version 2, driven through the first 10 s of 3 validation games. Either way
# these figures test the play path end to end; they are not a measure of how well a bot plays.

# %% [markdown]
# ## Teacher-forced agreement
# Per head, how often the bot's class equals the human's next input: sampled (what it would
# press) and argmax, beside the yardstick of copying the human's current input.

# %%
rows = {f"bot sampled ({run})": {h: a["sampled"] for h, a in agree.items()}
        for run, agree in metrics["agreement"].items()}  # fmt: skip
rows["bot argmax (teacher)"] = {h: a["argmax"] for h, a in metrics["agreement"]["teacher"].items()}
rows["copy the current input"] = metrics["copy_last_input"]
pd.DataFrame(rows).T

# %% [markdown]
# ## The prefill, over the first three seconds
# The neutral mock frame fills the window before the first real frame; no prefill starts from a
# one-frame context. They differ only until the window slides past the mock frames.

# %%
pd.DataFrame(
    {
        run: {h: a["argmax"] for h, a in agree.items()}
        for run, agree in metrics["agreement_first_3s"].items()
    }  # fmt: skip
).T

# %% [markdown]
# ## Gameplay health (SPEC 5.7), bot and human on the same frames
# Non-NONE share and presses per second count the sampled button class; the stick is neutral
# within 0.05 of the centre on both axes. TRIG presses are onsets of TRIG or A_TRIG (digital L);
# wavedash-shaped: a jump press followed within 8 frames by a downward airdodge press.

# %%
health = {"human": metrics["health_human"]} | {
    f"bot ({run})": figures for run, figures in metrics["health_bot"].items()
}
pd.DataFrame(health).T

# %% [markdown]
# Chatter: the bot's button presses per second over the human's on the same frames (1 is the
# human's rate). Teacher-forced bots press more than free-running ones: cooling the button head
# (`play.temperature: {button: 0.25}`) brings the first to the human's rate and nearly silences
# the second (`studies/bc_chatter.py`).

# %%
pd.Series(metrics["press_ratio"], name="presses per human press")

# %%
fig = report.health_bars(metrics, f"{character}: gameplay health, human vs bot")
fig.savefig(out / "health.png")
plt.close(fig)
Image(str(out / "health.png"))

# %% [markdown]
# ## Inputs over a stretch of game
# The human's main stick and buttons against the bot's, teacher-forced and free-running, on the
# same frames of the first validation game.

# %%
teacher = evaluate.stretch(inputs, "teacher", timeline_start, timeline_frames)
free = evaluate.stretch(inputs, "free", timeline_start, timeline_frames)
fig = report.timeline(teacher, free, f"{character}: {timeline_frames} frames of a validation game")
fig.savefig(out / "timeline.png")
plt.close(fig)
Image(str(out / "timeline.png"))

# %% [markdown]
# ## Streaming vs the fixed-window recompute
# While the 180-frame window fills, the cached step is the published computation (the
# `filling` rows must sit at float precision). After it slides, a deep layer's cached keys were
# computed while older frames were visible: the `sliding` rows measure that drift, on every
# `drift_every`-th frame.

# %%
pd.DataFrame(
    {
        f"{part}: {h}": figures
        for part in ("sliding", "filling")
        for h, figures in metrics["drift"][part].items()
    }  # fmt: skip
).T
