"""The ECB-column audit (SPEC 2): which of the old 22 numeric columns and 5 flags carry information.

Every column is measured on both parse paths, per Slippi version, on the leader rows (Nana aside)
of every frame of a seeded sample of games, at most a cap per version (`sample_games`):

- libmelee: `PlayerState` values from its file console (`replay_console.ReplayConsole`), read
  as MIMIC read them (first copy of a rollback frame, reader fallbacks included);
- peppi: the same player's value computed from the ingested columns (`columns.PlayerColumn.ingest`;
  `hitstun_left` is the decoded, gated column).

The figures per (column, version): rows, share non-zero (NaN counts as non-zero), distinct values,
finite min/max, max |v|, NaN count, the float32 bit classes (zero / subnormal / normal / nan-inf),
entropy. A value whose non-zero finite values are mostly subnormal is an integer read as a float;
its bits are compared with the integer fields the replay records at the same (port, frame)
(`post_animation_index`, the packed instance ids): exact equality proves aliasing. Rows are
aligned by (file, port, frame), leaving out frames that rollback re-sent (libmelee keeps the first
copy, the ingest the last), so the comparison holds whatever rollback changed.

The verdict is derived from the figures (`verdict`): a column is kept only if it carries signal
on both paths, signal meaning a version in which it is recorded, not constant, not mostly
subnormal and not aliased to another field. The notebook's tables and figures of the result are
in `audit_report`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mmlib.data.members import CACHE
from mmlib.data.schema import COLUMNS, Column
from mmlib.data.store import read_frames, read_games
from mmlib.errors import UsageError
from mmlib.features.audit_rows import (
    ALIAS_FIELDS,
    AUDITED,
    GATES,
    PEPPI_SOURCES,
    AuditRows,
    read_rows,
    version_key,
)
from mmlib.features.columns import FLAGS, OLD_NUMERIC, PlayerColumn

_SINCE = {c.name: c.since for c in COLUMNS}  # ingest field -> first Slippi version recording it

FALLBACK = {"jumps_left": 1.0, "on_ground": 1.0}  # libmelee's value for missing bytes; else 0
SUBNORMAL_LIMIT = 0.5  # non-zero finite values this subnormal (share or more) are integer bits
RULE = (
    "keep iff the column carries signal on both paths; a (path, version) carries signal when the "
    "version records the field, its values are not constant, fewer than "
    f"{SUBNORMAL_LIMIT:.0%} of its finite non-zero values are subnormal float32, and its bits do "
    "not equal another recorded integer field on every aligned row"
)


# --- measurements -------------------------------------------------------------------------------


def bit_classes(values: np.ndarray) -> dict[str, int]:
    """Counts of float32 bit patterns: zero (+-0), subnormal (exponent 0, mantissa not 0), normal,
    nan_inf (exponent all ones). A small integer n stored as u32 and read as f32 is n * 2**-149,
    a subnormal; 0xFFFFFFFF reads as NaN."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    exponent, mantissa = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    zero = int(((exponent == 0) & (mantissa == 0)).sum())
    subnormal = int(((exponent == 0) & (mantissa != 0)).sum())
    nan_inf = int((exponent == 0xFF).sum())
    return {
        "zero": zero,
        "subnormal": subnormal,
        "normal": len(bits) - zero - subnormal - nan_inf,
        "nan_inf": nan_inf,
    }


def entropy_bits(codes: np.ndarray) -> float:
    """Shannon entropy (bits) of the empirical distribution of integer codes."""
    _, counts = np.unique(codes, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum()) if len(codes) else 0.0


def _codes(values: np.ndarray) -> np.ndarray:
    """Values as exact integer codes: float32 bits (NaN patterns kept apart), bools as 0/1."""
    if values.dtype == np.float32:
        return values.view(np.uint32).astype(np.uint64)
    return values.astype(np.uint64)


def figures(values: np.ndarray, context: np.ndarray | None = None) -> dict:
    """Statistics of one column's values on one group of rows (any numeric or bool dtype).

    `context` (uint64 codes of the character and action per row) adds H(value | context).
    NaN counts as non-zero; min, max and max_abs are over finite values (None if there are none).
    """
    v = values.astype(np.uint8) if values.dtype == bool else values
    n = len(v)
    floats = v.dtype.kind == "f"
    finite = v[np.isfinite(v)] if floats else v
    out = {
        "rows": n,
        "nonzero_share": round(float((v != 0).mean()), 6) if n else None,  # NaN != 0
        "distinct": int(np.unique(v).size),  # NaNs count as one value
        "min": finite.min().item() if len(finite) else None,
        "max": finite.max().item() if len(finite) else None,
        "max_abs": float(np.abs(finite.astype(np.float64)).max()) if len(finite) else None,
        "nan": int(np.isnan(v).sum()) if floats else 0,
    }
    out["constant"] = out["distinct"] <= 1
    if v.dtype == np.float32:
        out["bits"] = bit_classes(v)
        finite_nonzero = n - out["bits"]["zero"] - out["bits"]["nan_inf"]
        subnormal = out["bits"]["subnormal"]
        out["subnormal_share"] = round(subnormal / finite_nonzero, 6) if finite_nonzero else None
    if context is not None and n:
        codes = _codes(values)
        out["entropy_bits"] = round(entropy_bits(codes), 4) + 0.0  # + 0.0: no -0.0
        joint = entropy_bits((context << np.uint64(32)) | codes)
        out["cond_entropy_bits"] = round(joint - entropy_bits(context), 4) + 0.0
    return out


def alias_check(values: np.ndarray, candidates: dict[str, np.ndarray]) -> dict[str, dict]:
    """Compare a float32 column's bits (as uint32) with integer fields on the same rows.

    Returns, per candidate, rows compared and rows with equal bits. Equality on every row of a
    column that is not all zero proves the float read is the integer field's bytes.
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return {
        name: {"rows": len(field), "equal": int((bits == field.astype(np.uint32)).sum())}
        for name, field in candidates.items()
    }


def aliased_to(alias: dict[str, dict], nonzero_rows: int) -> str | None:
    """The candidate whose bits equal the column's on every compared row (None if none)."""
    for name, a in sorted(alias.items()):
        if nonzero_rows and a["rows"] and a["equal"] == a["rows"]:
            return name
    return None


def libmelee_figures(name: str, rows: pd.DataFrame, aligned: pd.DataFrame) -> dict:
    """A column's figures on the libmelee path for one version: `rows` are libmelee's rows,
    `aligned` the rows joined with the ingest (peppi columns suffixed `_pp`).

    Beside `figures`: `fallback` (constant at libmelee's value for missing bytes), the cross-check
    with the ingest (`_cross_check`) and, for mostly subnormal values, `alias`/`aliased_to`.
    """
    character, action = rows["character"].to_numpy(np.uint64), rows["action"].to_numpy(np.uint64)
    fig = figures(rows[name].to_numpy(), (character << np.uint64(16)) | action)
    fig["fallback"] = fig["constant"] and fig["min"] == FALLBACK.get(name, 0.0)
    fig["aligned_rows"] = len(aligned)
    fig["aliased_to"] = None
    if len(aligned):
        fig |= _cross_check(name, aligned)
        if (fig.get("subnormal_share") or 0.0) >= SUBNORMAL_LIMIT:
            fig |= _alias_figures(name, aligned)
    return fig


def _cross_check(name: str, aligned: pd.DataFrame) -> dict[str, float]:
    """On the aligned rows: `agrees_with_peppi`, the share of rows with all sources recorded
    where libmelee's value equals its reading of the ingest's fields; `nonzero_outside_gate`,
    the non-zero share where the column's gate flag (GATES) is clear."""
    out = {}
    if name in PEPPI_SOURCES:
        ok = aligned[f"{name}__ok"].to_numpy()
        if ok.any():
            lm = aligned[name].to_numpy()[ok]
            pp = aligned[f"{name}__lm"].to_numpy()[ok].astype(lm.dtype)
            same = lm == pp
            if lm.dtype.kind == "f":
                same |= np.isnan(lm) & np.isnan(pp)
            out["agrees_with_peppi"] = round(float(same.mean()), 6)
    if name in GATES:
        outside = aligned[f"{name}__gate_ok"].to_numpy() & ~aligned[f"{name}__gate"].to_numpy()
        if outside.any():
            out["nonzero_outside_gate"] = round(float((aligned[name][outside] != 0).mean()), 6)
    return out


def _alias_figures(name: str, aligned: pd.DataFrame) -> dict:
    """`alias`: the column's bits against every ALIAS_FIELDS field recorded on all aligned rows;
    `aliased_to`: the one equal on every row, if any."""
    values = aligned[name].to_numpy()
    candidates = {
        field: aligned[field].to_numpy()
        for field in ALIAS_FIELDS
        if aligned[f"{field}__ok"].to_numpy().all()
    }
    alias = alias_check(values, candidates)
    return {"alias": alias, "aliased_to": aliased_to(alias, int((values != 0).sum()))}


def peppi_figures(name: str, rows: pd.DataFrame, version: str) -> dict:
    """A column's figures on the peppi path for one version (`recorded`: every source field is
    non-null on every row, and the schema says the version records it)."""
    sources = PEPPI_SOURCES.get(name)
    recorded = bool(
        sources
        and max(_SINCE[s] for s in sources) <= version_key(version)
        and rows[f"{name}__ok"].to_numpy().all()
    )
    if not recorded:
        return {"recorded": False, "rows": 0, "constant": True}
    return {"recorded": True, **figures(rows[name].to_numpy())}


def ingest_field_figures(ingest_dir: Path, games: pd.DataFrame) -> dict[str, dict]:
    """Every ingest column (schema.COLUMNS) per Slippi version on the present rows of all
    streams of `games`: recorded by the version (schema), non-null rows, non-zero share,
    distinct, min/max. A version's games are held in memory together, so `run_audit` passes
    its sample rather than every ingested game."""
    since = {c.name: ".".join(str(p) for p in c.since) for c in COLUMNS}
    out: dict[str, dict] = {c.name: {"since": since[c.name], "by_version": {}} for c in COLUMNS}
    for version, group in sorted(games.groupby("slippi_version"), key=lambda g: version_key(g[0])):
        tables = [read_frames(ingest_dir, md5) for md5 in group["md5"]]
        table = pd.concat([t.filter(t["present"]).to_pandas() for t in tables])
        for c in COLUMNS:
            out[c.name]["by_version"][version] = _field_figures(c, table[c.name], version)
    return out


def _field_figures(column: Column, values: pd.Series, version: str) -> dict:
    """One ingest column's figures on one version's rows (nulls left out)."""
    is_bool = pa.types.is_boolean(column.type)
    fig = figures(values.dropna().to_numpy(dtype=bool if is_bool else np.float64))
    if pa.types.is_integer(column.type) and fig["rows"]:  # exact in float64; shown as ints
        fig["min"], fig["max"] = int(fig["min"]), int(fig["max"])
    return {
        "recorded": column.since <= version_key(version),
        "nonnull": fig["rows"],
        **{k: fig[k] for k in ("nonzero_share", "distinct", "min", "max")},
    }


# --- the verdict --------------------------------------------------------------------------------


def carries_signal(fig: dict) -> bool:
    """A (path, version) carries signal: recorded, rows, not constant, not integer bits."""
    return bool(
        fig.get("recorded", True)
        and fig["rows"]
        and not fig["constant"]
        and (fig.get("subnormal_share") or 0.0) < SUBNORMAL_LIMIT
        and fig.get("aliased_to") is None
    )


def verdict(name: str, libmelee: dict[str, dict], peppi: dict[str, dict]) -> tuple[str, str]:
    """keep / drop and a one-line reason, from a column's per-version figures on both paths."""
    lm_signal = any(carries_signal(f) for f in libmelee.values())
    pp_signal = any(carries_signal(f) for f in peppi.values())
    if lm_signal and pp_signal:
        decision, why = "keep", "signal on both paths"
    else:
        missing = [p for p, s in (("libmelee", lm_signal), ("peppi", pp_signal)) if not s]
        decision, why = "drop", "no signal on " + " or ".join(missing)
    return (
        decision,
        f"{why}. peppi: {_peppi_text(name, peppi)}. libmelee: {_libmelee_text(libmelee)}",
    )


def _versions_text(versions: list[str]) -> str:
    if len(versions) <= 3:
        return ", ".join(versions)
    return f"{len(versions)} versions, {versions[0]} to {versions[-1]}"


def _peppi_text(name: str, peppi: dict[str, dict]) -> str:
    """The peppi side of a reason: from which version it is recorded, where it carries signal."""
    recorded = {v: f for v, f in peppi.items() if f["recorded"]}
    if name not in PEPPI_SOURCES:
        return "no Slippi version records it"
    if not recorded:
        return "no version in the data records it"
    n = sum(f["rows"] for f in recorded.values())
    share = sum(f["rows"] * f["nonzero_share"] for f in recorded.values()) / n
    signal = sum(carries_signal(f) for f in recorded.values())
    return (
        f"recorded from {next(iter(recorded))}, signal in {signal}/{len(recorded)} recording "
        f"versions, non-zero {share:.1%}"
    )


def _libmelee_text(by_version: dict[str, dict]) -> str:
    """The libmelee side of a reason: the versions where the column is constant, those where its
    values are integer bits, and how many carry signal."""
    constant = {v: f for v, f in by_version.items() if f["constant"]}
    bits = {v: f for v, f in by_version.items() if not f["constant"] and not carries_signal(f)}
    signal = [v for v, f in by_version.items() if carries_signal(f)]
    parts = []
    if constant:
        values = sorted({f["min"] for f in constant.values()}, key=str)
        rows = sum(f["rows"] for f in constant.values())
        where = _versions_text([*constant])
        parts.append(f"constant {'/'.join(map(str, values))} on {rows:,} rows ({where})")
    if bits:
        parts.append(_integer_bits_text(bits))
    if signal:
        parts.append(f"signal in {len(signal)}/{len(by_version)} versions")
    return "; ".join(parts)


def _integer_bits_text(by_version: dict[str, dict]) -> str:
    """Non-zero and subnormal shares over versions whose values are integer bits, and the
    field they alias, with the rows where the bits are equal."""
    figs = by_version.values()
    rows = sum(f["rows"] for f in figs)
    nonzero = sum(f["rows"] * f["nonzero_share"] for f in figs)
    subnormal = sum(f["bits"]["subnormal"] for f in figs)
    finite_nonzero = sum(f["rows"] - f["bits"]["zero"] - f["bits"]["nan_inf"] for f in figs)
    max_abs = max(f["max_abs"] or 0.0 for f in figs)
    text = (
        f"non-zero on {nonzero / rows:.1%} of {rows:,} rows ({_versions_text([*by_version])}) "
        f"but {subnormal / max(finite_nonzero, 1):.1%} of its finite non-zero values are "
        f"subnormal (max |v| {max_abs:.3g})"
    )
    for field in sorted({f["aliased_to"] for f in figs} - {None}):
        hits = [f["alias"][field] for f in figs if f["aliased_to"] == field]
        equal, compared = sum(a["equal"] for a in hits), sum(a["rows"] for a in hits)
        text += f"; its bits equal {field} on {equal:,}/{compared:,} aligned rows"
    return text


# --- the whole audit ----------------------------------------------------------------------------


def sample_games(games: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    """The games the audit reads: per Slippi version, every game if it has at most `cap`, else
    `cap` of them drawn with `seed` from the version's games sorted by md5. Rows keep their
    order in `games`; equal md5 sets give equal samples, whatever the order of `games`."""
    if cap < 1:
        raise UsageError(f"audit.games_per_version must be at least 1, not {cap}")
    keep: list[int] = []
    rows = games.assign(_row=np.arange(len(games)))  # positions: any index will do
    for _, group in rows.groupby("slippi_version"):
        group = group.sort_values("md5")
        if len(group) > cap:
            # a generator per version: one version's sample does not depend on the others' games
            drawn = np.random.default_rng(seed).choice(len(group), size=cap, replace=False)
            group = group.iloc[np.sort(drawn)]
        keep.extend(group["_row"])
    return games.iloc[np.sort(keep)]


def sample_counts(games: pd.DataFrame, sample: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per Slippi version (oldest first): the games the ingest has and those audited."""
    total, audited = games["slippi_version"].value_counts(), sample["slippi_version"].value_counts()
    return {
        v: {"games": int(total[v]), "audited": int(audited.get(v, 0))}
        for v in sorted(total.index, key=version_key)
    }


def run_audit(
    ingest_dir: Path, replay_dir: Path, *, cap: int, seed: int, cache: Path = CACHE
) -> dict:
    """The whole audit on a sample of the ingested games (`sample_games`: at most `cap` per
    Slippi version, drawn with `seed`): figures and verdicts per column, the kept schema, the
    ingest fields. Every figure, `n_games` and `versions` describe the audited games; `sample`
    says how many the ingest has. Replays are read from `replay_dir`, archive members from
    their archive extracted into `cache` (`audit_rows.replay_paths`).

    Deterministic (no timings, no paths of this machine): equal inputs give an equal dict.
    """
    ingested = read_games(ingest_dir).to_pandas().sort_values("source", ignore_index=True)
    games = sample_games(ingested, cap, seed)
    rows = read_rows(ingest_dir, games, replay_dir, cache)
    versions = sorted(games["slippi_version"].unique(), key=version_key)
    columns = {c.name: _audit_column(c, rows, versions) for c in AUDITED}
    return {
        "columns": columns,
        "schema": {
            "numeric": [c.name for c in OLD_NUMERIC if columns[c.name]["verdict"] == "keep"],
            "flags": [c.name for c in FLAGS if columns[c.name]["verdict"] == "keep"],
        },
        "ingest_fields": ingest_field_figures(ingest_dir, games),
        "libmelee_unreadable": rows.unreadable,
        "n_games": len(games),
        "versions": {
            v: {"games": int(len(g)), "frames": int(g["frames"].sum())}
            for v, g in games.groupby("slippi_version")
        },
        "version_order": versions,  # oldest first (JSON sorts the keys above as strings)
        "rows": {
            "libmelee": len(rows.lm),
            "peppi": len(rows.pp),
            "aligned": len(rows.aligned),
            "rolled_back_frames_left_out": len(rows.rolled_back),
        },
        "rule": RULE,
        "sample": {"cap": cap, "seed": seed, "versions": sample_counts(ingested, games)},
    }


def _audit_column(column: PlayerColumn, rows: AuditRows, versions: list[str]) -> dict:
    """One column's verdict and figures on both paths, per version (oldest first) and in all."""
    name, lm, aligned = column.name, rows.by_version["lm"], rows.by_version["aligned"]
    no_rows = rows.aligned.iloc[:0]
    lm_by = {v: libmelee_figures(name, lm[v], aligned.get(v, no_rows)) for v in versions if v in lm}
    pp_by = {v: peppi_figures(name, rows.by_version["pp"][v], v) for v in versions}
    decision, reason = verdict(name, lm_by, pp_by)
    recorded = [v for v in versions if pp_by[v]["recorded"]]
    pp_recorded = rows.pp[rows.pp["version"].isin(recorded)]
    return {
        "verdict": decision,
        "reason": reason,
        "libmelee": {
            "attribute": column.libmelee,
            "all": libmelee_figures(name, rows.lm, rows.aligned),
            "by_version": lm_by,
        },
        "peppi": {
            "sources": list(PEPPI_SOURCES.get(name, ())),
            "all": figures(pp_recorded[name].to_numpy()) if recorded else None,
            "by_version": pp_by,
        },
    }
