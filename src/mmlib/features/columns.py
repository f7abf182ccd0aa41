"""The player columns the BC features may use, and where each comes from on both parse paths.

MIMIC's old full schema had 22 numeric columns per player (SPEC 2.1); 9 of them (the 8 ECB
corners and `invuln_left`) were later dropped because they carry no information. Which columns
are kept is not decided here: the ECB audit measures every column on both paths and writes its
verdicts to `reports/audit/audit.json`, and `schema.load_schema` reads the kept list from there.

`ingest` names the column of an ingested game (`mmlib.data.schema`) the value is computed from,
or None where no Slippi version records it; `libmelee` is the `PlayerState` attribute path
(`ecb_top.0` = `ecb_top[0]`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlayerColumn:
    name: str  # MIMIC's column suffix: the feature is `self_<name>` / `opp_<name>`
    ingest: str | None
    libmelee: str
    doc: str


def _ecb(corner: str, axis: int) -> PlayerColumn:
    name = f"ecb_{corner}_{'xy'[axis]}"
    return PlayerColumn(name, None, f"ecb_{corner}.{axis}", f"ECB {corner} corner, {'xy'[axis]}")


# The old 22-column numeric schema, in MIMIC's order (SPEC 2.1).
OLD_NUMERIC: list[PlayerColumn] = [
    PlayerColumn("pos_x", "post_position_x", "position.x", "x position"),
    PlayerColumn("pos_y", "post_position_y", "position.y", "y position"),
    PlayerColumn("percent", "post_percent", "percent", "damage percent"),
    PlayerColumn("stock", "post_stocks", "stock", "stocks left"),
    PlayerColumn("jumps_left", "post_jumps", "jumps_left", "jumps left"),
    PlayerColumn(
        "speed_air_x_self", "post_velocities_self_x_air", "speed_air_x_self", "self air x speed"
    ),
    PlayerColumn(
        "speed_ground_x_self",
        "post_velocities_self_x_ground",
        "speed_ground_x_self",
        "self ground x speed",
    ),
    PlayerColumn(
        "speed_x_attack", "post_velocities_knockback_x", "speed_x_attack", "knockback x speed"
    ),
    PlayerColumn(
        "speed_y_attack", "post_velocities_knockback_y", "speed_y_attack", "knockback y speed"
    ),
    PlayerColumn("speed_y_self", "post_velocities_self_y", "speed_y_self", "self y speed"),
    PlayerColumn("hitlag_left", "post_hitlag", "hitlag_left", "hitlag frames left (truncated)"),
    PlayerColumn(
        "hitstun_left",
        "post_misc_as",
        "hitstun_frames_left",
        "hitstun frames left (truncated), 0 outside the hitstun action states",
    ),
    PlayerColumn("invuln_left", None, "invulnerability_left", "invulnerability frames left"),
    PlayerColumn("shield_strength", "post_shield", "shield_strength", "shield size, 60 = full"),
    _ecb("bottom", 0),
    _ecb("bottom", 1),
    _ecb("left", 0),
    _ecb("left", 1),
    _ecb("right", 0),
    _ecb("right", 1),
    _ecb("top", 0),
    _ecb("top", 1),
]

# The 5 flags (SPEC 3.3). off_stage and moonwalkwarning are derived (see build.py).
FLAGS: list[PlayerColumn] = [
    PlayerColumn("on_ground", "post_airborne", "on_ground", "not airborne"),
    PlayerColumn("off_stage", "post_position_x", "off_stage", "beyond the ledge or below y -6"),
    PlayerColumn("facing", "post_direction", "facing", "facing right"),
    PlayerColumn("invulnerable", "post_hurtbox_state", "invulnerable", "hurtbox state not 0"),
    PlayerColumn("moonwalkwarning", "post_state", "moonwalkwarning", "first frame of a dash"),
]

BY_NAME: dict[str, PlayerColumn] = {c.name: c for c in OLD_NUMERIC + FLAGS}


def libmelee_value(player, column: PlayerColumn):
    """The column's value on a libmelee `PlayerState` (`ecb_top.0` -> `player.ecb_top[0]`)."""
    value = player
    for part in column.libmelee.split("."):
        value = value[int(part)] if part.isdigit() else getattr(value, part)
    return value
