"""The one feature function: raw columns (from either adapter in `raw.py`) -> the BC model's
input (SPEC 3.1-3.4), the same code for training shards and for live play.

Per frame and player: 13 numeric columns (normalised when a fitted `Norm` is given, raw
otherwise), 5 flags (0/1), the character and action as dense embedding indices; the stage as a
dense index; and the self player's controller of that frame as the 56-wide one-hot (it is the
"previous controller" of the frame the model predicts next). `pack` lays a frame out as the two
arrays the shards store and the model reads.

Decisions (the reason beside each):
- Hitstun is gated by action state, not by the in-hitstun flag: live play gets a libmelee
  `GameState`, which does not expose the flag (SPEC 1.2). On the 42 shared games the action
  gate below gives the same whole frames of hitstun as the flag gate on all 199,652 rows.
- Values a replay's version does not record (NaN in raw) become 0, as MIMIC's shards do; the
  norm fit ignores them.
- `off_stage` and `moonwalkwarning` follow libmelee's rules, computed here from the raw columns
  for both paths; `moonwalkwarning` uses the stream's own previous action (libmelee's console
  only updates it on Frame Bookends, so it is always False before Slippi 3.0 there).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from mmlib.data import ids
from mmlib.features import controller, transforms

if TYPE_CHECKING:  # schema.py reads audit.json; only its type is needed here
    from mmlib.features.schema import FeatureSchema

# DAMAGE_HIGH_1 .. DAMAGE_FLY_ROLL, DAMAGE_GROUND, BOUNCE_WALL: the action states in which the
# game sets the in-hitstun flag on the shared games.
HITSTUN_ACTIONS = np.array([*range(75, 92), 193, 247])
DASHING, TURNING = 20, 18
OFF_STAGE_BELOW_Y = np.float32(-6.0)
INT_COLUMNS = ("stage", "self_character", "opp_character", "self_action", "opp_action")


@cache
def _edges() -> np.ndarray:
    """libmelee's ledge x indexed by `Stage` value (inf off the six stages), as float32:
    libmelee compares float32 positions with Python floats, which numpy 2 does in float32."""
    from melee import stages

    table = np.full(256, np.inf, np.float32)
    for stage, x in stages.EDGE_GROUND_POSITION.items():
        table[stage.value] = np.float32(x)
    return table


@dataclass(frozen=True)
class Norm:
    """The fitted normalisation: `mimic_norm.json` and `norm_stats.json` contents."""

    mimic_norm: dict
    norm_stats: dict


def _flags(raw: dict[str, np.ndarray], p: str, schema: FeatureSchema) -> np.ndarray:
    x, y = raw[f"{p}pos_x"], raw[f"{p}pos_y"]
    on_ground = np.nan_to_num(raw[f"{p}on_ground"])
    edge = _edges()[raw["stage"]]
    known = ~np.isnan(raw[f"{p}on_ground"])
    action, prev = raw[f"{p}action"], raw[f"{p}prev_action"]
    values = {
        "on_ground": on_ground,
        "off_stage": known & (on_ground == 0) & ((np.abs(x) > edge) | (y < OFF_STAGE_BELOW_Y)),
        "facing": raw[f"{p}facing"],
        "invulnerable": np.nan_to_num(raw[f"{p}invulnerable"]),
        "moonwalkwarning": (action == DASHING) & (prev >= 0) & ~np.isin(prev, [DASHING, TURNING]),
    }
    return np.stack([values[name] for name in schema.flags], axis=-1).astype(np.float32)


def numeric_values(raw: dict[str, np.ndarray], p: str, schema: FeatureSchema) -> np.ndarray:
    """The player's numeric columns (T, len(schema.numeric)) before normalisation, hitstun
    gated, NaN where the replay does not record a value (what the norm fit sees)."""
    columns = []
    for name in schema.numeric:
        values = raw[f"{p}{name}"]
        if name == "hitstun_left":
            gate = np.isin(raw[f"{p}action"], HITSTUN_ACTIONS)
            values = np.where(gate, np.maximum(values, 0), np.where(np.isnan(values), np.nan, 0))
        columns.append(values)
    return np.stack(columns, axis=-1).astype(np.float32)


def _numeric(
    raw: dict[str, np.ndarray], p: str, schema: FeatureSchema, norm: Norm | None
) -> np.ndarray:
    numeric = np.nan_to_num(numeric_values(raw, p, schema), nan=0, posinf=0, neginf=0)
    if norm is None:
        return numeric
    return transforms.normalize_columns(
        numeric, list(schema.numeric), norm.mimic_norm, norm.norm_stats
    )


def controller_classes(raw: dict[str, np.ndarray], p: str = "self_") -> dict[str, np.ndarray]:
    """The controller of each frame as the four head classes (main 37, c 9, button 7,
    shoulder 3): the training targets (one frame later) and the one-hot input."""
    return {
        "main": controller.main_stick_class(raw[f"{p}main_x"], raw[f"{p}main_y"]),
        "c": controller.c_stick_class(raw[f"{p}c_x"], raw[f"{p}c_y"]),
        "button": controller.button_class(
            raw[f"{p}a"], raw[f"{p}b"], raw[f"{p}z"], raw[f"{p}jump"], raw[f"{p}trig"]
        ),
        "shoulder": controller.shoulder_class(raw[f"{p}shoulder"]),
    }


def features(
    raw: dict[str, np.ndarray], schema: FeatureSchema, norm: Norm | None = None
) -> dict[str, np.ndarray]:
    """The model's input for every frame of `raw` (arrays with a leading frame axis)."""
    out = {"stage": ids.stage_index(raw["stage"])}
    for p in ("self_", "opp_"):
        out[f"{p}character"] = ids.character_index(raw[f"{p}character"])
        out[f"{p}action"] = ids.action_index(np.maximum(raw[f"{p}action"], 0))
        out[f"{p}numeric"] = _numeric(raw, p, schema, norm)
        out[f"{p}flags"] = _flags(raw, p, schema)
    classes = controller_classes(raw)
    out["self_controller"] = controller.one_hot(
        classes["main"], classes["c"], classes["button"], classes["shoulder"]
    )
    return out


def pack(feats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A frame table as (ints (T, 5) int16 in `INT_COLUMNS` order, floats (T, F) float32 =
    [self numeric | self flags | opp numeric | opp flags | self controller one-hot])."""
    ints = np.stack([feats[k] for k in INT_COLUMNS], axis=-1).astype(np.int16)
    floats = np.concatenate(
        [
            feats["self_numeric"],
            feats["self_flags"],
            feats["opp_numeric"],
            feats["opp_flags"],
            feats["self_controller"],
        ],
        axis=-1,
    )
    return ints, floats.astype(np.float32)


def float_columns(schema: FeatureSchema) -> list[str]:
    """Names of `pack`'s float columns, in order."""
    names = []
    for p in ("self_", "opp_"):
        names += [p + n for n in schema.numeric] + [p + n for n in schema.flags]
    names += [f"ctrl_main_{i}" for i in range(controller.N_MAIN)]
    names += [f"ctrl_c_{i}" for i in range(controller.N_C)]
    names += [f"ctrl_button_{n}" for n in controller.BUTTON_CLASSES]
    names += [f"ctrl_shoulder_{i}" for i in range(controller.N_SHOULDER)]
    return names
