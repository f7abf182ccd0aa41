"""The ECB-column audit (SPEC 2): which of the old 22 numeric columns and 5 flags carry information.

Every column is measured on both parse paths, per Slippi version, on the leader rows (Nana aside)
of every frame:

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
subnormal and not aliased to another field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mmlib.data.replay import read_raw
from mmlib.data.schema import COLUMNS, Version
from mmlib.data.store import read_frames, read_games
from mmlib.errors import UsageError
from mmlib.features.columns import FLAGS, OLD_NUMERIC, PlayerColumn, libmelee_value
from mmlib.features.replay_console import ReplayConsole

AUDITED: list[PlayerColumn] = OLD_NUMERIC + FLAGS
SINCE = {c.name: c.since for c in COLUMNS}
# The ingest fields each column's peppi value is computed from (recorded when all are).
PEPPI_SOURCES: dict[str, tuple[str, ...]] = {
    **{c.name: (c.ingest,) for c in OLD_NUMERIC if c.ingest is not None},
    "hitstun_left": ("hitstun_left",),  # the decoded column: misc_as gated by flags_3 & 0x02
    "on_ground": ("post_airborne",),
    "off_stage": ("post_position_x", "post_position_y", "post_airborne"),
    "facing": ("post_direction",),
    "invulnerable": ("post_hurtbox_state",),
    "moonwalkwarning": ("post_state",),
}
# Integer fields a float read may alias (SPEC 2.2): post offsets 0x4D and 0x51.
ALIAS_FIELDS = ("post_animation_index", "instance_ids")
# Semantic gates (SPEC 2.4 step 7): the column must be 0 while the flag bit is clear.
GATES = {"hitstun_left": ("post_state_flags_3", 0x02), "hitlag_left": ("post_state_flags_1", 0x20)}
FALLBACK = {"jumps_left": 1.0, "on_ground": 1.0}  # libmelee's value for missing bytes; else 0
SUBNORMAL_LIMIT = 0.5  # non-zero finite values this subnormal (share or more) are integer bits
DASHING, TURNING = 20, 18  # action state ids (libmelee `Action`)
RULE = (
    "keep iff the column carries signal on both paths; a (path, version) carries signal when the "
    "version records the field, its values are not constant, fewer than "
    f"{SUBNORMAL_LIMIT:.0%} of its finite non-zero values are subnormal float32, and its bits do "
    "not equal another recorded integer field on every aligned row"
)
_KEY_DTYPES = {"frame": np.int32, "port": np.uint8, "character": np.uint8, "action": np.uint16}
_PEPPI_READ = sorted(
    {s for sources in PEPPI_SOURCES.values() for s in sources}
    | {"frame", "port", "follower", "present", "post_character", "post_misc_as", "post_hitlag"}
    | {"post_animation_index", "post_last_hit_by_instance", "post_instance_id"}
    | {field for field, _ in GATES.values()}
)


def version_str(version: Version) -> str:
    return ".".join(str(p) for p in version)


def version_key(version: str) -> Version:
    return tuple(int(p) for p in version.split("."))


# --- reading both paths ---------------------------------------------------------------------


def _libmelee_frame(keys: dict[str, list], values: dict[str, list]) -> pd.DataFrame:
    out = {k: np.array(v, dtype=_KEY_DTYPES[k]) for k, v in keys.items()}
    for c in AUDITED:
        out[c.name] = np.array(values[c.name], dtype=bool if c in FLAGS else np.float32)
    return pd.DataFrame(out)


def read_libmelee(path: Path) -> pd.DataFrame:
    """One row per (frame, port) leader `PlayerState` libmelee yields for a replay.

    Columns: frame, port, character, action, then the 27 audited columns (numeric as float32,
    with float reads' bits intact; flags as bool). Errors libmelee raises propagate.
    """
    keys: dict[str, list] = {k: [] for k in _KEY_DTYPES}
    values: dict[str, list] = {c.name: [] for c in AUDITED}
    for state in ReplayConsole(path):
        for port, player in state.players.items():
            keys["frame"].append(state.frame)
            keys["port"].append(port)
            keys["character"].append(player.character.value)
            keys["action"].append(player.action.value)
            for c in AUDITED:
                values[c.name].append(libmelee_value(player, c))
    return _libmelee_frame(keys, values)


def read_libmelee_all(paths: dict[str, Path]) -> tuple[pd.DataFrame, dict[str, str]]:
    """`read_libmelee` on every replay (md5 -> path), stacked with an `md5` column; the replays
    libmelee could not read, as file name -> one-line error (their rows are left out)."""
    empty = _libmelee_frame({k: [] for k in _KEY_DTYPES}, {c.name: [] for c in AUDITED})
    tables, unreadable = [empty.assign(md5=pd.Series(dtype=object))], {}
    for md5, path in paths.items():
        try:
            tables.append(read_libmelee(path).assign(md5=md5))
        except Exception as e:  # noqa: BLE001 - any libmelee failure is a finding, not a crash
            unreadable[Path(path).name] = f"{type(e).__name__}: {' '.join(str(e).split())}"
    return pd.concat(tables, ignore_index=True), unreadable


def rolled_back_frames(path: Path) -> np.ndarray:
    """Frame ids a replay holds more than once (rollback re-sent them), read with peppi."""
    ids, counts = np.unique(read_raw(str(path)).frames.field("id").to_numpy(), return_counts=True)
    return ids[counts > 1]


def _stage_edge(stage_id: int) -> float | None:
    """libmelee's ground-edge x for a stage (external id), None for stages it does not know."""
    from melee import stages
    from melee.enums import to_internal_stage

    return stages.EDGE_GROUND_POSITION.get(to_internal_stage(stage_id))


def peppi_rows(ingest_dir: Path, md5: str, stage_id: int) -> pd.DataFrame:
    """The present leader rows of one ingested game: frame, port, character, the 27 audited
    columns' peppi values, `<name>__ok` (all its sources recorded), and what the cross-check
    needs: libmelee's reading of the same bytes (`<name>__lm`), the alias candidates, the gates.
    """
    table = read_frames(ingest_dir, md5, _PEPPI_READ)
    table = table.filter(pc.and_(table["present"], pc.invert(table["follower"])))
    numbers = [n for n in _PEPPI_READ if n not in ("follower", "present")]
    raw = {n: table[n].fill_null(0).to_numpy() for n in numbers}
    ok = {n: table[n].is_valid().to_numpy() for n in numbers}
    out = {"frame": raw["frame"], "port": raw["port"], "character": raw["post_character"]}
    for name, sources in PEPPI_SOURCES.items():
        out[f"{name}__ok"] = np.logical_and.reduce([ok[s] for s in sources])
    for c in OLD_NUMERIC:
        if c.name in PEPPI_SOURCES:
            out[c.name] = raw[PEPPI_SOURCES[c.name][0]].astype(np.float32)
            out[f"{c.name}__lm"] = out[c.name]
    # libmelee truncates hitlag and the ungated misc_as (NaN -> 0) to int (SPEC 1.5)
    out["hitlag_left__lm"] = np.trunc(raw["post_hitlag"])
    misc = raw["post_misc_as"]
    out["hitstun_left__lm"] = np.where(np.isnan(misc), 0, np.trunc(misc)).astype(np.float32)
    airborne = raw["post_airborne"] != 0
    x, y = raw["post_position_x"], raw["post_position_y"]
    edge = _stage_edge(stage_id)
    beyond = np.abs(x) > np.float32(edge) if edge is not None else np.zeros(len(x), bool)
    state = raw["post_state"].astype(np.int32)
    prev = np.r_[-1, state[:-1]]
    prev[np.r_[True, raw["port"][1:] != raw["port"][:-1]]] = -1  # no previous row of this port
    out |= {
        "on_ground": ~airborne,
        "off_stage": (beyond | (y < -6)) & airborne,
        "facing": raw["post_direction"] > 0,
        "invulnerable": raw["post_hurtbox_state"] != 0,
        "moonwalkwarning": (state == DASHING) & (prev != DASHING) & (prev != TURNING),
    }
    for f in FLAGS:
        out[f"{f.name}__lm"] = out[f.name]
    out["post_animation_index"] = raw["post_animation_index"].astype(np.uint32)
    out["post_animation_index__ok"] = ok["post_animation_index"]
    hit_by = raw["post_last_hit_by_instance"].astype(np.uint32)
    out["instance_ids"] = (hit_by << 16) | raw["post_instance_id"].astype(np.uint32)
    out["instance_ids__ok"] = ok["post_instance_id"] & ok["post_last_hit_by_instance"]
    for name, (field, bit) in GATES.items():
        out[f"{name}__gate"] = (raw[field] & bit) != 0
        out[f"{name}__gate_ok"] = ok[field]
    return pd.DataFrame(out)


# --- figures ------------------------------------------------------------------------------------


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
    nonzero = v != 0  # True for NaN
    floats = v.dtype.kind == "f"
    finite = v[np.isfinite(v)] if floats else v
    out = {
        "rows": n,
        "nonzero_share": round(float(nonzero.mean()), 6) if n else None,
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
        out["subnormal_share"] = (
            round(out["bits"]["subnormal"] / finite_nonzero, 6) if finite_nonzero else None
        )
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


def carries_signal(fig: dict) -> bool:
    """A (path, version) carries signal: recorded, rows, not constant, not integer bits."""
    return bool(
        fig.get("recorded", True)
        and fig["rows"]
        and not fig["constant"]
        and (fig.get("subnormal_share") or 0.0) < SUBNORMAL_LIMIT
        and fig.get("aliased_to") is None
    )


def _agree(a: np.ndarray, b: np.ndarray) -> float:
    same = a == b
    if a.dtype.kind == "f":
        same |= np.isnan(a) & np.isnan(b)
    return round(float(same.mean()), 6)


def libmelee_figures(name: str, rows: pd.DataFrame, aligned: pd.DataFrame) -> dict:
    """A column's figures on the libmelee path for one version: `rows` are libmelee's rows,
    `aligned` the rows joined with the ingest (peppi columns suffixed `_pp`)."""
    values = rows[name].to_numpy()
    context = (rows["character"].to_numpy(np.uint64) << np.uint64(16)) | rows["action"].to_numpy(
        np.uint64
    )
    fig = figures(values, context)
    fig["fallback"] = fig["constant"] and fig["min"] == FALLBACK.get(name, 0.0)
    fig["aligned_rows"] = len(aligned)
    if name in PEPPI_SOURCES and len(aligned):
        ok = aligned[f"{name}__ok"].to_numpy()
        if ok.any():
            lm, pp = aligned[name].to_numpy()[ok], aligned[f"{name}__lm"].to_numpy()[ok]
            fig["agrees_with_peppi"] = _agree(lm, pp.astype(lm.dtype))
    if name in GATES and len(aligned):
        ok = aligned[f"{name}__gate_ok"].to_numpy()
        outside = ok & ~aligned[f"{name}__gate"].to_numpy()
        if outside.any():
            fig["nonzero_outside_gate"] = round(float((aligned[name][outside] != 0).mean()), 6)
    fig["aliased_to"] = None
    if (fig.get("subnormal_share") or 0.0) >= SUBNORMAL_LIMIT and len(aligned):
        candidates = {}
        for field in ALIAS_FIELDS:
            ok = aligned[f"{field}__ok"].to_numpy()
            if ok.all():
                candidates[field] = aligned[field].to_numpy()
        fig["alias"] = alias_check(aligned[name].to_numpy(), candidates)
        nonzero = int((aligned[name].to_numpy() != 0).sum())
        fig["aliased_to"] = aliased_to(fig["alias"], nonzero)
    return fig


def peppi_figures(name: str, rows: pd.DataFrame, version: str) -> dict:
    """A column's figures on the peppi path for one version (`recorded`: every source field is
    non-null on every row, and the schema says the version records it)."""
    sources = PEPPI_SOURCES.get(name)
    since = max(SINCE[s] for s in sources) if sources else None
    recorded = bool(
        sources and since <= version_key(version) and rows[f"{name}__ok"].to_numpy().all()
    )
    if not recorded:
        return {"recorded": False, "rows": 0, "constant": True}
    return {"recorded": True, **figures(rows[name].to_numpy())}


# --- verdicts -------------------------------------------------------------------------------


def _versions(vs: list[str]) -> str:
    return ", ".join(vs) if len(vs) <= 3 else f"{len(vs)} versions, {vs[0]} to {vs[-1]}"


def _describe_libmelee(by_version: dict[str, dict]) -> str:
    parts = []
    const = [v for v, f in by_version.items() if f["constant"]]
    if const:
        values = sorted({f["min"] for v, f in by_version.items() if v in const}, key=str)
        rows = sum(by_version[v]["rows"] for v in const)
        parts.append(f"constant {'/'.join(map(str, values))} on {rows:,} rows ({_versions(const)})")
    bits = [v for v, f in by_version.items() if not f["constant"] and not carries_signal(f)]
    if bits:
        rows = sum(by_version[v]["rows"] for v in bits)
        nonzero = sum(by_version[v]["rows"] * by_version[v]["nonzero_share"] for v in bits)
        sub = sum(by_version[v]["bits"]["subnormal"] for v in bits)
        finite_nonzero = sum(
            by_version[v]["rows"] - by_version[v]["bits"]["zero"] - by_version[v]["bits"]["nan_inf"]
            for v in bits
        )
        max_abs = max(by_version[v]["max_abs"] or 0.0 for v in bits)
        text = (
            f"non-zero on {nonzero / rows:.1%} of {rows:,} rows ({_versions(bits)}) but "
            f"{sub / max(finite_nonzero, 1):.1%} of its finite non-zero values are subnormal "
            f"(max |v| {max_abs:.3g})"
        )
        fields = sorted({by_version[v]["aliased_to"] for v in bits} - {None})
        for field in fields:
            hits = [by_version[v]["alias"][field] for v in bits if by_version[v]["aliased_to"]]
            eq, n = sum(a["equal"] for a in hits), sum(a["rows"] for a in hits)
            text += f"; its bits equal {field} on {eq:,}/{n:,} aligned rows"
        parts.append(text)
    signal = [v for v, f in by_version.items() if carries_signal(f)]
    if signal:
        parts.append(f"signal in {len(signal)}/{len(by_version)} versions")
    return "; ".join(parts)


def verdict(name: str, libmelee: dict[str, dict], peppi: dict[str, dict]) -> tuple[str, str]:
    """keep / drop and a one-line reason, from a column's per-version figures on both paths."""
    lm_signal = any(carries_signal(f) for f in libmelee.values())
    pp_signal = any(carries_signal(f) for f in peppi.values())
    recorded = [v for v, f in peppi.items() if f["recorded"]]
    if name not in PEPPI_SOURCES:
        pp_text = "no Slippi version records it"
    elif not recorded:
        pp_text = "no version in the data records it"
    else:
        n = sum(peppi[v]["rows"] for v in recorded)
        share = sum(peppi[v]["rows"] * peppi[v]["nonzero_share"] for v in recorded) / n
        signal = sum(carries_signal(peppi[v]) for v in recorded)
        pp_text = (
            f"recorded from {recorded[0]}, signal in {signal}/{len(recorded)} recording versions, "
            f"non-zero {share:.1%}"
        )
    decision = "keep" if lm_signal and pp_signal else "drop"
    why = (
        "signal on both paths"
        if decision == "keep"
        else "no signal on "
        + " or ".join(p for p, s in (("libmelee", lm_signal), ("peppi", pp_signal)) if not s)
    )
    return decision, f"{why}. peppi: {pp_text}. libmelee: {_describe_libmelee(libmelee)}"


# --- the whole audit ------------------------------------------------------------------------


def replay_paths(games: pd.DataFrame, replay_dir: Path) -> dict[str, Path]:
    """md5 -> the replay file of each ingested game, looked up by name in `replay_dir`."""
    paths = {}
    for md5, source in zip(games["md5"], games["source"], strict=True):
        path = Path(replay_dir) / Path(source).name
        if not path.is_file():
            raise UsageError(f"replay {Path(source).name} of the ingest is not in {replay_dir}")
        paths[md5] = path
    return paths


def align(lm: pd.DataFrame, pp: pd.DataFrame, rolled_back: pd.DataFrame) -> pd.DataFrame:
    """libmelee rows joined with the ingest's on (md5, port, frame) (peppi's clashing columns
    suffixed `_pp`), without the frames rollback re-sent, where the two copies may differ."""
    joined = lm.merge(pp, on=["md5", "port", "frame"], suffixes=("", "_pp"))
    marked = joined.merge(rolled_back, on=["md5", "frame"], how="left", indicator=True)
    return marked[marked["_merge"] == "left_only"].drop(columns="_merge")


def ingest_field_figures(ingest_dir: Path, games: pd.DataFrame) -> dict[str, dict]:
    """Every ingest column (schema.COLUMNS) per Slippi version on the present rows of all
    streams: recorded by the version (schema), non-null rows, non-zero share, distinct, min/max."""
    out: dict[str, dict] = {
        c.name: {"since": version_str(c.since), "by_version": {}} for c in COLUMNS
    }
    for version, group in sorted(games.groupby("slippi_version"), key=lambda g: version_key(g[0])):
        tables = [read_frames(ingest_dir, md5) for md5 in group["md5"]]
        table = pd.concat([t.filter(t["present"]).to_pandas() for t in tables])
        for c in COLUMNS:
            col = table[c.name]
            values = col.dropna().to_numpy(
                dtype=bool if pa.types.is_boolean(c.type) else np.float64
            )
            fig = figures(values)
            if pa.types.is_integer(c.type) and fig["rows"]:  # exact in float64; shown as ints
                fig["min"], fig["max"] = int(fig["min"]), int(fig["max"])
            out[c.name]["by_version"][version] = {
                "recorded": c.since <= version_key(version),
                "nonnull": fig["rows"],
                **{k: fig[k] for k in ("nonzero_share", "distinct", "min", "max")},
            }
    return out


def run_audit(ingest_dir: Path, replay_dir: Path) -> dict:
    """The whole audit: figures and verdicts per column, the kept schema, the ingest fields.

    Deterministic (no timings, no paths of this machine): equal inputs give an equal dict.
    """
    games = read_games(ingest_dir).to_pandas().sort_values("source", ignore_index=True)
    paths = replay_paths(games, replay_dir)
    version = dict(zip(games["md5"], games["slippi_version"], strict=True))
    lm, unreadable = read_libmelee_all(paths)
    pp = pd.concat(
        [
            peppi_rows(ingest_dir, md5, stage).assign(md5=md5)
            for md5, stage in zip(games["md5"], games["stage_id"], strict=True)
        ],
        ignore_index=True,
    )
    rolled_back = pd.concat(
        [pd.DataFrame({"md5": md5, "frame": rolled_back_frames(p)}) for md5, p in paths.items()],
        ignore_index=True,
    )
    aligned = align(lm, pp, rolled_back)
    for table in (lm, pp, aligned):
        table["version"] = table["md5"].map(version)
    versions = sorted(games["slippi_version"].unique(), key=version_key)
    by = {name: dict(list(t.groupby("version"))) for name, t in [("lm", lm), ("pp", pp)]}
    al = dict(list(aligned.groupby("version")))
    columns = {}
    for c in AUDITED:
        lm_by = {
            v: libmelee_figures(c.name, by["lm"][v], al.get(v, aligned.iloc[:0]))
            for v in versions
            if v in by["lm"]
        }
        pp_by = {v: peppi_figures(c.name, by["pp"][v], v) for v in versions}
        decision, reason = verdict(c.name, lm_by, pp_by)
        recorded = [v for v in versions if pp_by[v]["recorded"]]
        pp_all = pp[pp["version"].isin(recorded)]
        columns[c.name] = {
            "verdict": decision,
            "reason": reason,
            "libmelee": {
                "attribute": c.libmelee,
                "all": libmelee_figures(c.name, lm, aligned),
                "by_version": lm_by,
            },
            "peppi": {
                "sources": list(PEPPI_SOURCES.get(c.name, ())),
                "all": figures(pp_all[c.name].to_numpy()) if recorded else None,
                "by_version": pp_by,
            },
        }
    return {
        "columns": columns,
        "schema": {
            "numeric": [c.name for c in OLD_NUMERIC if columns[c.name]["verdict"] == "keep"],
            "flags": [c.name for c in FLAGS if columns[c.name]["verdict"] == "keep"],
        },
        "ingest_fields": ingest_field_figures(ingest_dir, games),
        "libmelee_unreadable": unreadable,
        "n_games": len(games),
        "versions": {
            v: {"games": int(len(g)), "frames": int(g["frames"].sum())}
            for v, g in games.groupby("slippi_version")
        },
        "version_order": versions,  # oldest first (JSON sorts the keys above as strings)
        "rows": {
            "libmelee": len(lm),
            "peppi": len(pp),
            "aligned": len(aligned),
            "rolled_back_frames_left_out": len(rolled_back),
        },
        "rule": RULE,
    }


# --- tables and pictures for the notebook -----------------------------------------------------


def _names(audit: dict) -> list[str]:
    """The audited columns in schema order (a loaded audit.json has its keys sorted)."""
    return [c.name for c in AUDITED if c.name in audit["columns"]]


def verdict_table(audit: dict) -> pd.DataFrame:
    """One line per audited column: verdict, non-zero shares on both paths, the reason."""
    rows = []
    for name in _names(audit):
        col = audit["columns"][name]
        lm, pp = col["libmelee"]["all"], col["peppi"]["all"]
        aliased = sorted({f["aliased_to"] for f in col["libmelee"]["by_version"].values()} - {None})
        rows.append(
            {
                "column": name,
                "verdict": col["verdict"],
                "libmelee_nonzero": lm["nonzero_share"],
                "libmelee_distinct": lm["distinct"],
                "libmelee_subnormal": lm.get("subnormal_share"),
                "aliased_to": ", ".join(aliased),
                "peppi_nonzero": pp["nonzero_share"] if pp else None,
                "reason": col["reason"],
            }
        )
    return pd.DataFrame(rows).set_index("column")


def version_table(audit: dict, name: str, path: str = "libmelee") -> pd.DataFrame:
    """A column's figures per Slippi version on one path (SPEC 2.2's table, measured)."""
    by_version = audit["columns"][name][path]["by_version"]
    rows = {}
    for v, f in by_version.items():
        alias = f.get("alias", {}).get(f.get("aliased_to"), {})
        rows[v] = {k: f.get(k) for k in ("rows", "nonzero_share", "distinct", "min", "max", "nan")}
        rows[v] |= {"subnormal_share": f.get("subnormal_share"), "aliased_to": f.get("aliased_to")}
        rows[v] |= {"alias_equal": alias.get("equal"), "alias_rows": alias.get("rows")}
    return pd.DataFrame.from_dict(rows, orient="index")


def share_matrix(audit: dict, path: str) -> pd.DataFrame:
    """Non-zero share, audited column x Slippi version, on one path (NaN: not recorded)."""
    versions = audit["version_order"]
    return pd.DataFrame(
        {
            v: {
                name: audit["columns"][name][path]["by_version"].get(v, {}).get("nonzero_share")
                for name in _names(audit)
            }
            for v in versions
        },
        dtype=float,
    )


def ingest_field_table(audit: dict) -> pd.DataFrame:
    """Non-zero share of every ingest field per version (NaN where the version does not record
    it), with the version that first records it."""
    table = pd.DataFrame(
        {
            name: {
                v: f["nonzero_share"] if f["recorded"] else None
                for v, f in field["by_version"].items()
            }
            for name, field in audit["ingest_fields"].items()
        },
        dtype=float,
    ).T
    table = table[sorted(table.columns, key=version_key)]
    table.insert(0, "since", [f["since"] for f in audit["ingest_fields"].values()])
    return table


def plot_nonzero_share(audit: dict, axes) -> None:
    """Heat maps of the non-zero share, column x version, libmelee beside peppi. Grey: not
    recorded (peppi) or no rows; red text: mostly subnormal (integer bits), `=`: aliased."""
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"].with_extremes(bad="#cccccc")
    for ax, path in zip(axes, ("libmelee", "peppi"), strict=True):
        m = share_matrix(audit, path)
        im = ax.imshow(m.values, cmap=cmap, vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(m.shape[1]), m.columns, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(m.shape[0]), m.index, fontsize=8)
        for i, name in enumerate(m.index):
            for j, v in enumerate(m.columns):
                f = audit["columns"][name][path]["by_version"].get(v, {})
                if f.get("nonzero_share") is None:
                    continue
                bits = (f.get("subnormal_share") or 0) >= SUBNORMAL_LIMIT
                share = f["nonzero_share"]
                text = "<1" if 0 < share < 0.01 else f"{100 * share:.0f}"
                text += "=" if f.get("aliased_to") else ""
                color = "red" if bits else ("black" if share > 0.6 else "white")
                ax.text(j, i, text, ha="center", va="center", fontsize=6, color=color)
        ax.set_title(f"{path}: % of leader rows non-zero")
        ax.set_xlabel("Slippi version")
    axes[-1].figure.colorbar(im, ax=list(axes), label="non-zero share", shrink=0.6)


def plot_bit_patterns(audit: dict, ax, path: str = "libmelee") -> None:
    """Stacked bars: how each numeric column's non-zero values split into subnormal / normal /
    NaN-inf float32 bit patterns (all versions together; empty bar: never non-zero)."""
    names = [c.name for c in OLD_NUMERIC]
    counts = pd.DataFrame(
        {n: audit["columns"][n][path]["all"]["bits"] for n in names}, dtype=float
    ).T
    nonzero = counts.drop(columns="zero").sum(axis=1)
    shares = counts.div(nonzero.where(nonzero > 0), axis=0).fillna(0.0)
    colors = {"subnormal": "#d62728", "normal": "#1f77b4", "nan_inf": "#000000"}
    left = np.zeros(len(names))
    for kind, color in colors.items():
        ax.barh(names, shares[kind], left=left, color=color, label=kind)
        left += shares[kind].to_numpy()
    for i, n in enumerate(nonzero):
        ax.text(1.01, i, f"{int(n):,}", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="share of the non-zero rows (count at right)", xlim=(0, 1))
    ax.set_title(f"float32 bit classes of the non-zero values, {path} path")
    ax.legend(loc="upper left", bbox_to_anchor=(1.12, 1), fontsize=8)
