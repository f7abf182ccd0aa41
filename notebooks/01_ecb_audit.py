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
# # 01 · ECB-column audit
#
# **Question.** Which of MIMIC's 22 numeric player columns and 5 flags carry information, on each
# parse path (libmelee's file console, peppi via our ingest) and in each Slippi version? In
# particular: are the 8 ECB corners and `invuln_left` empty, and what is the libmelee `ecb_top_x`
# that is non-zero on every modern frame?
#
# **Inputs.** `artifacts/ingest` (stage `ingest`) and the replays it was made from
# (`data/replays`), read a second time through libmelee; settings in `params.yaml` (`audit`).
# **Outputs.** `reports/audit/audit.json` (figures, a verdict per column, and the kept `schema`
# that `mmlib.features.schema.load_schema` gives every later stage), `nonzero_share.png`,
# `bit_patterns.png`.
# **Background.** SPEC section 2; the measurements and verdicts are in
# `src/mmlib/features/audit.py`, the tables and figures below in `audit_report.py`.
#
# The set is small: 42 games, many of them short parser-test recordings (a human against a CPU, one
# technique each), and several Slippi versions are a single file (3.9.1, 3.13.0, 3.15.0, 3.16.0,
# 3.18.0). A column that happens to be constant in one such file (nobody took damage, nobody lost
# a stock) says nothing about the version; the verdict therefore asks for signal in *some*
# version, and only constant-everywhere, integer-bits or aliased columns are dropped.
#
# The audit reads a seeded sample of at most `audit.games_per_version` games per Slippi version
# (libmelee reads ~9k frames/s), which on the shared set is every game; `audit.json` records the
# sample under `sample`.

# %% tags=["parameters"]
ingest_dir: str = "artifacts/ingest"  # output folder of `mmlib ingest`
replay_dir: str = "data/replays"  # the replays that were ingested (read again by libmelee)
report_dir: str = "reports/audit"  # where audit.json and the pictures go
params_file: str = "params.yaml"  # stage settings (section `audit`)

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from mmlib.atomic import write_json
from mmlib.config import stage_params
from mmlib.features import audit as A
from mmlib.features import audit_report as R

pd.set_option("display.width", 200)
pd.set_option("display.max_rows", 120)
pd.set_option("display.max_colwidth", 400)
plt.rcParams["figure.dpi"] = 80
settings = stage_params("audit", Path(params_file))
report = Path(report_dir)
report.mkdir(parents=True, exist_ok=True)
png = {"metadata": {"Software": None}}  # no version string in the PNG: same bytes on re-run
audit = A.run_audit(
    Path(ingest_dir), Path(replay_dir), cap=settings["games_per_version"], seed=settings["seed"]
)
ingested = sum(v["games"] for v in audit["sample"]["versions"].values())
print(f"{audit['n_games']} of {ingested} games (at most {settings['games_per_version']} a version)")
print(f"leader rows: {audit['rows']}")
print("libmelee could not read:", audit["libmelee_unreadable"] or "none")

# %% [markdown]
# ## Verdicts
# One line per column. A (path, version) *carries signal* when the version records the field,
# the values are not constant, fewer than half of its finite non-zero values are subnormal
# float32, and its bits do not equal another recorded integer field on every aligned row. A
# column is kept only when it carries signal on both paths in at least one version. Non-zero
# shares count NaN as non-zero, so a column of NaNs would not pass for empty.

# %%
print(audit["rule"])
R.verdict_table(audit)

# %%
audit["schema"]

# %% [markdown]
# ## `ecb_top_x` and `ecb_top_y`: non-zero, and meaningless
# libmelee reads the ECB top corner as float32 at post-frame offsets 0x4D and 0x51, which hold
# `animation_index` (u32, Slippi 3.11) and `last_hit_by_instance` ‖ `instance_id` (two u16, 3.16).
# A small integer n read as a float is the subnormal n·2⁻¹⁴⁹ and 0xFFFFFFFF is NaN, so the
# column is "non-zero" on every frame. The audit views the bits as uint32 and compares them with
# the ingest's integer fields on the same (game, port, frame), leaving out frames rollback re-sent
# (libmelee keeps their first copy, the ingest the last): `alias_equal` of `alias_rows`.

# %%
R.version_table(audit, "ecb_top_x")

# %%
R.version_table(audit, "ecb_top_y")

# %% [markdown]
# The other six corners and `invuln_left`: libmelee's reads past the end of the post-frame event
# fail and fall back to 0, and `invulnerability_left` is never assigned; no Slippi version
# records any of them, so the peppi path has nothing to read.

# %%
R.all_versions_table(audit, ["invuln_left", "ecb_bottom_x", "ecb_left_y", "ecb_right_x"])

# %% [markdown]
# ## Non-zero share per column and version
# Left libmelee, right peppi. Grey: the version does not record the field (peppi). Red numbers:
# most finite non-zero values are subnormal (integer bits); `=`: bits equal an integer field.
# `<1`: non-zero on under 1 % of rows (`0` means none). Versions where a kept column is empty are
# reader fallbacks (libmelee) or unrecorded fields (peppi).

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 8), sharey=True, layout="constrained")
R.plot_nonzero_share(audit, axes)
fig.savefig(report / "nonzero_share.png", **png)

# %% [markdown]
# ## Bit patterns
# The non-zero values of the numeric columns as float32 bits on the libmelee path, all versions
# together: physical quantities are normal floats; `ecb_top_x/y` are subnormal (NaN where the
# animation index is 0xFFFFFFFF); the other ECB corners and `invuln_left` are never non-zero.

# %%
fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
R.plot_bit_patterns(audit, ax)
fig.savefig(report / "bit_patterns.png", **png)

# %% [markdown]
# ## Reader cross-check and gates
# Share of aligned rows where libmelee's value equals what libmelee would compute from the
# ingest's fields (truncated hitlag and `misc_as`, `not airborne`, `hurtbox_state != 0`, ...), per
# version that records the field. `moonwalkwarning` differs before 3.0 only: libmelee compares
# with the previous *bookend* frame, which those versions do not have.

# %%
R.agreement_table(audit)

# %% [markdown]
# libmelee's `hitstun_left` truncates `misc_as` whatever the state, so it is non-zero outside
# hitstun (flags_3 & 0x02 clear); the ingest's decoded `hitstun_left` is gated and 0 there.
# `hitlag_left` is checked against the in-hitlag flag (flags_1 & 0x20) the same way.

# %%
R.gate_table(audit)

# %% [markdown]
# ## Every ingest field
# Non-zero share of every column the ingest stores, per Slippi version, on the present rows of
# all streams (Nana included); empty where the version does not record the field. Distinct
# values, min and max are in `audit.json` under `ingest_fields`.

# %%
R.ingest_field_table(audit)

# %% [markdown]
# ## Output
# `audit.json` holds every figure above; later stages read the kept columns from its `schema`
# (`mmlib.features.schema.load_schema`). It holds no timings, so a re-run writes the same bytes.

# %%
write_json(report / "audit.json", audit)
audit["schema"]
