"""The two adapters: an ingested game (vectorised, for training) and a stream of libmelee
`GameState`s (one frame at a time, for play) both become the same *raw* columns, which
`build.features` turns into the model's input. Nothing here normalises or encodes.

Raw columns, per player prefix `self_` / `opp_` (float32 unless noted):
- the numeric columns of `columns.OLD_NUMERIC` that some Slippi version records, as libmelee
  gives them: hitlag and hitstun truncated to whole frames, hitstun *not yet gated* (libmelee
  reads it on every frame; `build` gates it by action state). A field the replay's version does
  not record is NaN on both paths (libmelee would give its fallbacks: 1 jump, on ground, 0).
- `on_ground`, `facing`, `invulnerable`: 1/0 (NaN where not recorded);
- `action`, `prev_action` (the stream's action on the frame before, -1 at its start),
  `character` (internal id): int64;
- the controller that produced the frame: `main_x`, `main_y`, `c_x`, `c_y` in libmelee's [0, 1]
  coordinates, `shoulder` (the processed analog trigger), and digital `a`, `b`, `z`,
  `jump` (X or Y), `trig` (L or R) as bool, from the physical buttons (SPEC 3.7).
Plus `stage`: libmelee's `Stage` value (0 off the six legal stages) and `frame` (int64).

Rollback: the ingest keeps the last copy of a frame, libmelee the first (SPEC 1.1); compare the
two only on tables read with `keep_copy="first"` (`mmlib.data.replay.read_frames_table`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmlib.data.ids import LEGAL_STAGES
from mmlib.data.replay import FIRST_PLAYABLE_FRAME
from mmlib.data.schema import RAW_COLUMNS, Version
from mmlib.features import controller
from mmlib.features.columns import OLD_NUMERIC, libmelee_value

# Numeric columns some Slippi version records (the others have no source on the peppi path).
RECORDED = [c for c in OLD_NUMERIC if c.ingest is not None]
_TRUNCATED = {"hitlag_left", "hitstun_left"}  # libmelee stores int(float) for these
_FLAG_SOURCES = {"on_ground": "post_airborne", "invulnerable": "post_hurtbox_state"}  # recorded?
CONTROLLER_KEYS = ("main_x", "main_y", "c_x", "c_y", "shoulder", "a", "b", "z", "jump", "trig")
_INT_KEYS = {"action", "prev_action", "character"}
_BOOL_KEYS = {"a", "b", "z", "jump", "trig"}


def _recorded(column: str, version: Version) -> bool:
    return RAW_COLUMNS[column].since <= version


# --------------------------------------------------------------------------------------------
# Ingested game -> raw columns (vectorised)


def _leader(frames: pa.Table, port: int) -> pa.Table:
    mask = pc.and_(pc.equal(frames["port"], port), pc.invert(frames["follower"]))
    return frames.filter(mask)


def _np(table: pa.Table, name: str) -> np.ndarray:
    col = table[name]
    if col.null_count:
        col = col.cast(pa.float64()) if not pa.types.is_floating(col.type) else col
        return col.to_numpy(zero_copy_only=False).astype(np.float64)
    return col.to_numpy()


def _field(rows: pa.Table, name: str, version: Version) -> np.ndarray:
    """A column as float32, all NaN when the replay's version does not record it."""
    if not _recorded(name, version):
        return np.full(rows.num_rows, np.nan, np.float32)
    return _np(rows, name).astype(np.float32)


def _nonzero(values: np.ndarray) -> np.ndarray:
    """1.0 where non-zero, 0.0 where zero, NaN stays NaN (libmelee's `bool(byte)`)."""
    return np.where(np.isnan(values), np.nan, values != 0).astype(np.float32)


def _player_from_table(rows: pa.Table, version: Version) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for col in RECORDED:
        values = _field(rows, col.ingest, version)
        if col.name in _TRUNCATED:
            values = np.trunc(values)
        if col.name == "hitstun_left" and _recorded(col.ingest, version):
            values[np.isnan(values)] = 0.0  # libmelee: int(NaN) fails and it stores 0
        out[col.name] = values
    out["on_ground"] = 1.0 - _nonzero(_field(rows, "post_airborne", version))
    out["invulnerable"] = _nonzero(_field(rows, "post_hurtbox_state", version))
    out["facing"] = (_np(rows, "post_direction") > 0).astype(np.float32)
    action = np.nan_to_num(_np(rows, "post_state").astype(np.float64), nan=-1).astype(np.int64)
    out["action"] = action
    out["prev_action"] = np.concatenate([[-1], action[:-1]])
    out["character"] = np.nan_to_num(_np(rows, "post_character"), nan=0).astype(np.int64)
    out["main_x"] = controller.to_unit(_np(rows, "pre_joystick_x").astype(np.float32))
    out["main_y"] = controller.to_unit(_np(rows, "pre_joystick_y").astype(np.float32))
    out["c_x"] = controller.to_unit(_np(rows, "pre_cstick_x").astype(np.float32))
    out["c_y"] = controller.to_unit(_np(rows, "pre_cstick_y").astype(np.float32))
    out["shoulder"] = _np(rows, "pre_triggers").astype(np.float32)

    def pressed(*names: str) -> np.ndarray:
        return np.logical_or.reduce([_np(rows, f"button_physical_{n}") == 1 for n in names])

    out["a"], out["b"], out["z"] = pressed("a"), pressed("b"), pressed("z")
    out["jump"], out["trig"] = pressed("x", "y"), pressed("l", "r")
    return out


def from_table(
    frames: pa.Table,
    version: Version,
    stage_external: int,
    self_port: int,
    opp_port: int,
    first_frame: int = FIRST_PLAYABLE_FRAME,
) -> dict[str, np.ndarray]:
    """Raw columns of one perspective of an ingested game, from `first_frame` on (countdown
    frames are left out by default, in training and play alike; SPEC "where mmlib departs").

    Both players' leader streams must cover the same frames (true of every ingested game).
    """
    me, opp = _leader(frames, self_port), _leader(frames, opp_port)
    frame = me["frame"].to_numpy().astype(np.int64)
    if not np.array_equal(frame, opp["frame"].to_numpy()):
        raise ValueError(f"ports {self_port} and {opp_port} do not cover the same frames")
    keep = frame >= first_frame
    out = {"frame": frame[keep]}
    for prefix, rows in (("self_", me), ("opp_", opp)):
        for key, values in _player_from_table(rows, version).items():
            out[prefix + key] = values[keep]
    out["stage"] = np.full(len(out["frame"]), LEGAL_STAGES.get(stage_external, 0), np.int64)
    return out


# --------------------------------------------------------------------------------------------
# libmelee GameState -> raw columns (one frame at a time)


class OnlineRaw:
    """Raw columns of one perspective from libmelee `GameState`s, one frame per `push`.

    It remembers each player's previous action (for `moonwalkwarning`) across pushes, so push
    every frame, in order, from the first frame the bot sees. `version` is the Slippi version
    of the stream (live Dolphin is current, so every field is recorded).
    """

    def __init__(self, self_port: int, opp_port: int, version: Version = (3, 18, 0)):
        self.ports = {"self_": self_port, "opp_": opp_port}
        self.version = version
        self._prev_action = {self_port: -1, opp_port: -1}
        self._missing = {c.name for c in RECORDED if not _recorded(c.ingest, version)} | {
            flag for flag, src in _FLAG_SOURCES.items() if not _recorded(src, version)
        }

    def push(self, state, controllers: dict | None = None) -> dict[str, np.ndarray] | None:
        """Raw columns (arrays of length 1) of `state`; None if a player is missing from it.

        `controllers` maps a prefix (`"self_"`) to the controller that produced this frame, as
        `raw_controller` builds it; by default it is read from the `GameState` (replays).
        Call it on every frame, countdown included, so the previous actions stay right; leave
        countdown frames out of what you feed the model (`state.frame < FIRST_PLAYABLE_FRAME`).
        """
        players = state.players
        if any(port not in players for port in self.ports.values()):
            return None
        out: dict[str, np.ndarray] = {"frame": np.array([state.frame], np.int64)}
        for prefix, port in self.ports.items():
            player = players[port]
            row = self._player_row(player)
            row["prev_action"] = self._prev_action[port]
            self._prev_action[port] = row["action"]
            given = (controllers or {}).get(prefix)
            row |= given if given is not None else controller_from_state(player.controller_state)
            for key, value in row.items():
                out[prefix + key] = _as_array(key, value)
        out["stage"] = np.array([int(state.stage.value)], np.int64)
        return out

    def _player_row(self, player) -> dict:
        row = {}
        for col in RECORDED:
            row[col.name] = np.nan if col.name in self._missing else libmelee_value(player, col)
        row["on_ground"] = np.nan if "on_ground" in self._missing else player.on_ground
        row["invulnerable"] = np.nan if "invulnerable" in self._missing else player.invulnerable
        row["facing"] = player.facing
        row["action"] = int(player.action.value)
        row["character"] = int(player.character.value)
        return row


def _as_array(key: str, value) -> np.ndarray:
    if key in _INT_KEYS:
        return np.array([value], np.int64)
    if key in _BOOL_KEYS:
        return np.array([bool(value)])
    return np.array([value], np.float32)


def controller_from_state(state) -> dict:
    """The raw controller keys of a libmelee `ControllerState` (physical buttons, as in
    replays; L and R shoulders are the same processed trigger there)."""
    import melee

    held = state.button
    return {
        "main_x": state.main_stick[0],
        "main_y": state.main_stick[1],
        "c_x": state.c_stick[0],
        "c_y": state.c_stick[1],
        "shoulder": max(state.l_shoulder, state.r_shoulder),
        "a": held[melee.Button.BUTTON_A],
        "b": held[melee.Button.BUTTON_B],
        "z": held[melee.Button.BUTTON_Z],
        "jump": held[melee.Button.BUTTON_X] or held[melee.Button.BUTTON_Y],
        "trig": held[melee.Button.BUTTON_L] or held[melee.Button.BUTTON_R],
    }


def concat(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stack per-frame raw columns (from `OnlineRaw.push`) into one table of columns."""
    return {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}
