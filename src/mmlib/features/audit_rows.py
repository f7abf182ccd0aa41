"""Reading the ECB audit's rows: every leader row of every game on both parse paths, aligned.

- libmelee: `PlayerState` values from its file console (`replay_console.ReplayConsole`), read
  as MIMIC read them (first copy of a rollback frame, reader fallbacks included);
- peppi: the same player's value computed from the ingested columns (`columns.PlayerColumn.ingest`;
  `hitstun_left` is the decoded, gated column). This is computed here, independently of
  `build.py`, so that the audit measures the replay rather than mmlib's feature code.

Rows are aligned by (file, port, frame), leaving out frames that rollback re-sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from mmlib.data.members import CACHE, replay_file, short_name, split_source
from mmlib.data.replay import read_raw
from mmlib.data.schema import COLUMNS, Version
from mmlib.data.store import read_frames
from mmlib.errors import UsageError
from mmlib.features.columns import FLAGS, OLD_NUMERIC, PlayerColumn, libmelee_value
from mmlib.features.replay_console import ReplayConsole, ReplayError, describe

AUDITED: list[PlayerColumn] = OLD_NUMERIC + FLAGS
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
DASHING, TURNING = 20, 18  # action state ids (libmelee `Action`)
_SINCE = {c.name: c.since for c in COLUMNS}  # ingest field -> first Slippi version recording it
_KEY_DTYPES = {"frame": np.int32, "port": np.uint8, "character": np.uint8, "action": np.uint16}
_PEPPI_READ = sorted(
    {s for sources in PEPPI_SOURCES.values() for s in sources}
    | {"frame", "port", "follower", "present", "post_character", "post_misc_as", "post_hitlag"}
    | {"post_animation_index", "post_last_hit_by_instance", "post_instance_id"}
    | {field for field, _ in GATES.values()}
)


def version_key(version: str) -> Version:
    """Sort key of a Slippi version, oldest first: "3.16.0" -> (3, 16, 0)."""
    return tuple(int(p) for p in version.split("."))


def _libmelee_frame(keys: dict[str, list], values: dict[str, list]) -> pd.DataFrame:
    out = {k: np.array(v, dtype=_KEY_DTYPES[k]) for k, v in keys.items()}
    for c in AUDITED:
        out[c.name] = np.array(values[c.name], dtype=bool if c in FLAGS else np.float32)
    return pd.DataFrame(out)


def read_libmelee(path: Path) -> pd.DataFrame:
    """One row per (frame, port) leader `PlayerState` libmelee yields for a replay.

    Columns: frame, port, character, action, then the 27 audited columns (numeric as float32,
    with float reads' bits intact; flags as bool). A replay libmelee cannot read raises
    `ReplayError`.
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


def read_libmelee_all(
    paths: dict[str, Path], names: dict[str, str] | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """`read_libmelee` on every replay (md5 -> path), stacked with an `md5` column; the replays
    libmelee could not read, as name (`names[md5]`, default the file's name) -> one-line error
    without the path, e.g. "DecoderException: ... (the file is empty)" (their rows are left
    out)."""
    empty = _libmelee_frame({k: [] for k in _KEY_DTYPES}, {c.name: [] for c in AUDITED})
    tables, unreadable = [empty.assign(md5=pd.Series(dtype=object))], {}
    names = names or {}
    for md5, path in paths.items():
        name = names.get(md5, Path(path).name)
        try:
            tables.append(read_libmelee(path).assign(md5=md5))
        except ReplayError as e:  # a finding, not a crash
            unreadable[name] = e.finding
        except Exception as e:  # noqa: BLE001 - any other libmelee failure is a finding too
            unreadable[name] = describe(e)
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
    fields = [n for n in _PEPPI_READ if n not in ("follower", "present")]
    raw = {n: table[n].fill_null(0).to_numpy() for n in fields}  # null read as 0
    ok = {n: table[n].is_valid().to_numpy() for n in fields}  # recorded: not null
    out = {"frame": raw["frame"], "port": raw["port"], "character": raw["post_character"]}
    for name, sources in PEPPI_SOURCES.items():
        out[f"{name}__ok"] = np.logical_and.reduce([ok[s] for s in sources])
    out |= _peppi_numeric(raw)
    out |= _peppi_flags(raw, _stage_edge(stage_id))
    out |= _alias_and_gate_fields(raw, ok)
    return pd.DataFrame(out)


def _peppi_numeric(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The recorded numeric columns as float32, each with `<name>__lm`: the same, except that
    libmelee truncates hitlag and the ungated misc_as (NaN -> 0) to int (SPEC 1.5)."""
    out = {}
    for c in OLD_NUMERIC:
        if c.name in PEPPI_SOURCES:
            out[c.name] = out[f"{c.name}__lm"] = raw[PEPPI_SOURCES[c.name][0]].astype(np.float32)
    out["hitlag_left__lm"] = np.trunc(raw["post_hitlag"])
    misc = raw["post_misc_as"]
    out["hitstun_left__lm"] = np.where(np.isnan(misc), 0, np.trunc(misc)).astype(np.float32)
    return out


def _peppi_flags(raw: dict[str, np.ndarray], edge: float | None) -> dict[str, np.ndarray]:
    """The five flags, derived from the ingest's fields as libmelee derives them from its own
    (`<name>__lm` is the same array); `edge`: the stage's ground-edge x (None: unknown stage)."""
    airborne = raw["post_airborne"] != 0
    x, y = raw["post_position_x"], raw["post_position_y"]
    beyond = np.abs(x) > np.float32(edge) if edge is not None else np.zeros(len(x), bool)
    state = raw["post_state"].astype(np.int32)
    prev = np.r_[-1, state[:-1]]
    prev[np.r_[True, raw["port"][1:] != raw["port"][:-1]]] = -1  # no previous row of this port
    flags = {
        "on_ground": ~airborne,
        "off_stage": (beyond | (y < -6)) & airborne,
        "facing": raw["post_direction"] > 0,
        "invulnerable": raw["post_hurtbox_state"] != 0,
        "moonwalkwarning": (state == DASHING) & (prev != DASHING) & (prev != TURNING),
    }
    return flags | {f"{name}__lm": value for name, value in flags.items()}


def _alias_and_gate_fields(raw: dict[str, np.ndarray], ok: dict[str, np.ndarray]) -> dict:
    """The integer fields of ALIAS_FIELDS as uint32 and the flag bits of GATES, each with
    whether it is recorded (`<field>__ok`, `<name>__gate_ok`)."""
    hit_by = raw["post_last_hit_by_instance"].astype(np.uint32)
    out = {
        "post_animation_index": raw["post_animation_index"].astype(np.uint32),
        "post_animation_index__ok": ok["post_animation_index"],
        "instance_ids": (hit_by << 16) | raw["post_instance_id"].astype(np.uint32),
        "instance_ids__ok": ok["post_instance_id"] & ok["post_last_hit_by_instance"],
    }
    for name, (field, bit) in GATES.items():
        out[f"{name}__gate"] = (raw[field] & bit) != 0
        out[f"{name}__gate_ok"] = ok[field]
    return out


def replay_paths(games: pd.DataFrame, replay_dir: Path, cache: Path = CACHE) -> dict[str, Path]:
    """md5 -> the replay file of each ingested game: a plain file looked up by name in
    `replay_dir`; an archive member extracted into `cache` (`members.replay_file`)."""
    paths = {}
    for md5, source in zip(games["md5"], games["source"], strict=True):
        if split_source(source) is not None:
            paths[md5] = replay_file(source, md5, cache)
            continue
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


@dataclass
class AuditRows:
    """The leader rows of both paths; every table has the game's `md5` and Slippi `version`."""

    lm: pd.DataFrame  # libmelee's rows (read_libmelee_all)
    pp: pd.DataFrame  # the ingest's rows (peppi_rows)
    aligned: pd.DataFrame  # lm joined with pp (align)
    rolled_back: pd.DataFrame  # (md5, frame) of every frame rollback re-sent
    unreadable: dict[str, str]  # replays libmelee could not read: short_name -> error

    @cached_property
    def by_version(self) -> dict[str, dict[str, pd.DataFrame]]:
        """Each table (name "lm", "pp" or "aligned") split by version: name -> version -> rows."""
        tables = {"lm": self.lm, "pp": self.pp, "aligned": self.aligned}
        return {name: dict(list(t.groupby("version"))) for name, t in tables.items()}


def read_rows(
    ingest_dir: Path, games: pd.DataFrame, replay_dir: Path, cache: Path = CACHE
) -> AuditRows:
    """Both paths' rows of the ingested `games` (rows of `read_games`), aligned. A replay that
    is not in `replay_dir` (archive members: not in its archive, extracted into `cache`) is a
    UsageError; one libmelee cannot read is listed in `unreadable`."""
    paths = replay_paths(games, replay_dir, cache)
    names = {md5: short_name(s) for md5, s in zip(games["md5"], games["source"], strict=True)}
    lm, unreadable = read_libmelee_all(paths, names)
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
    version = dict(zip(games["md5"], games["slippi_version"], strict=True))
    for table in (lm, pp, aligned):
        table["version"] = table["md5"].map(version)
    return AuditRows(lm, pp, aligned, rolled_back, unreadable)
