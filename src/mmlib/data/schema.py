"""The columns of an ingested game, with the Slippi version that first records each one.

A game file is a long table: one row per (stream, frame), where a stream is a port's leader or,
for Ice Climbers, its follower (Nana). Every game file has exactly these columns in this order,
whatever its Slippi version, so games concatenate into one dataset; a column the replay's version
does not record is null, never zero. Raw columns keep peppi's names, flattened with `_`
(`pre.joystick.x` -> `pre_joystick_x`); decoded columns are computed once, in `decode.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

Version = tuple[int, int, int]


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    since: Version  # first Slippi version that records it (Slippi replay spec; SPEC 1.1)
    doc: str


def _c(name: str, type_: pa.DataType, since: str, doc: str) -> Column:
    return Column(name, type_, tuple(int(p) for p in since.split(".")), doc)


u8, u16, u32, i8, i32, f32, b = (
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.int8(),
    pa.int32(),
    pa.float32(),
    pa.bool_(),
)

KEY_COLUMNS = [
    _c("frame", i32, "0.1.0", "frame id; -123 is the first frame, -39 the first playable one"),
    _c("port", u8, "0.1.0", "controller port 1-4"),
    _c("follower", b, "0.1.0", "True for Nana, the Ice Climbers follower"),
    _c("present", b, "0.1.0", "the stream sent data this frame (False: every field below is null)"),
]

# Pre-frame: the controller inputs the game read this frame, and the state before it ran.
PRE_COLUMNS = [
    _c("pre_random_seed", u32, "0.1.0", "RNG seed"),
    _c("pre_state", u16, "0.1.0", "action state id"),
    _c("pre_position_x", f32, "0.1.0", ""),
    _c("pre_position_y", f32, "0.1.0", ""),
    _c("pre_direction", f32, "0.1.0", "-1 left, +1 right"),
    _c("pre_joystick_x", f32, "0.1.0", "processed main stick, [-1, 1]"),
    _c("pre_joystick_y", f32, "0.1.0", "processed main stick, [-1, 1]"),
    _c("pre_cstick_x", f32, "0.1.0", "processed C-stick, [-1, 1]"),
    _c("pre_cstick_y", f32, "0.1.0", "processed C-stick, [-1, 1]"),
    _c(
        "pre_triggers",
        f32,
        "0.1.0",
        "processed analog trigger, one value for both shoulders, [0, 1]",
    ),
    _c("pre_buttons", u32, "0.1.0", "processed button bitmask (CPUs press buttons only here)"),
    _c("pre_buttons_physical", u16, "0.1.0", "physical button bitmask (0 for CPUs)"),
    # Slippi writes these bytes from 0.1, but before 1.2 they hold garbage (R = 3.78e22, L = 0).
    _c("pre_triggers_physical_l", f32, "1.2.0", "physical analog L, [0, 1]"),
    _c("pre_triggers_physical_r", f32, "1.2.0", "physical analog R, [0, 1]"),
    _c("pre_raw_analog_x", i8, "1.2.0", "raw main-stick x"),
    _c("pre_percent", f32, "1.4.0", "damage before the frame"),
    _c("pre_raw_analog_y", i8, "3.15.0", "raw main-stick y"),
    _c("pre_raw_analog_cstick_x", i8, "3.17.0", "raw C-stick x"),
    _c("pre_raw_analog_cstick_y", i8, "3.17.0", "raw C-stick y"),
]

# Post-frame: the state after the frame ran.
POST_COLUMNS = [
    _c("post_character", u8, "0.1.0", "internal character id (changes for Zelda/Sheik)"),
    _c("post_state", u16, "0.1.0", "action state id (libmelee `Action`)"),
    _c("post_position_x", f32, "0.1.0", ""),
    _c("post_position_y", f32, "0.1.0", ""),
    _c("post_direction", f32, "0.1.0", "-1 left, +1 right"),
    _c("post_percent", f32, "0.1.0", "damage"),
    _c("post_shield", f32, "0.1.0", "shield size, 60 = full"),
    _c("post_last_attack_landed", u8, "0.1.0", "attack id of the last attack landed"),
    _c("post_combo_count", u8, "0.1.0", ""),
    _c("post_last_hit_by", u8, "0.1.0", "port index (0-3) that last hit; 6 = none"),
    _c("post_stocks", u8, "0.1.0", "stocks remaining"),
    _c("post_state_age", f32, "0.2.0", "frames in the current action"),
    _c("post_state_flags_0", u8, "2.0.0", "state bit flags 1"),
    _c("post_state_flags_1", u8, "2.0.0", "state bit flags 2 (0x20: in hitlag)"),
    _c("post_state_flags_2", u8, "2.0.0", "state bit flags 3 (0x80: shield active)"),
    _c("post_state_flags_3", u8, "2.0.0", "state bit flags 4 (0x02: in hitstun)"),
    _c("post_state_flags_4", u8, "2.0.0", "state bit flags 5 (0x40: dead)"),
    _c("post_misc_as", f32, "2.0.0", "multi-use; hitstun left while in hitstun (see hitstun_left)"),
    _c("post_airborne", u8, "2.0.0", "1 airborne, 0 grounded"),
    _c("post_ground", u16, "2.0.0", "last ground id, 65535 = none"),
    _c("post_jumps", u8, "2.0.0", "jumps remaining"),
    _c("post_l_cancel", u8, "2.0.0", "0 none, 1 success, 2 fail"),
    _c("post_hurtbox_state", u8, "2.1.0", "0 vulnerable, 1 invulnerable, 2 intangible"),
    _c("post_velocities_self_x_air", f32, "3.5.0", ""),
    _c("post_velocities_self_y", f32, "3.5.0", ""),
    _c("post_velocities_knockback_x", f32, "3.5.0", ""),
    _c("post_velocities_knockback_y", f32, "3.5.0", ""),
    _c("post_velocities_self_x_ground", f32, "3.5.0", ""),
    _c("post_hitlag", f32, "3.8.0", "hitlag frames remaining"),
    _c("post_animation_index", u32, "3.11.0", "0xFFFFFFFF = none"),
    _c("post_last_hit_by_instance", u16, "3.16.0", ""),
    _c("post_instance_id", u16, "3.16.0", ""),
]

FRAME_COLUMNS = [
    _c(
        "item_count",
        u8,
        "3.0.0",
        "items (projectiles included) alive this frame; same on every stream",
    ),
]

# Button bits shared by the physical mask and the low 16 bits of the processed mask (SPEC 1.2).
BUTTON_BITS = {
    "a": 0x0100,
    "b": 0x0200,
    "x": 0x0400,
    "y": 0x0800,
    "z": 0x0010,
    "l": 0x0040,
    "r": 0x0020,
    "start": 0x1000,
    "d_up": 0x0008,
    "d_down": 0x0004,
    "d_left": 0x0001,
    "d_right": 0x0002,
}
DECODED_COLUMNS = [
    _c(
        "hitstun_left",
        f32,
        "2.0.0",
        "hitstun frames left: max(misc_as, 0) while flags_3 & 0x02, else 0",
    ),
    *[_c(f"button_{n}", b, "0.1.0", f"{n} in the processed mask") for n in BUTTON_BITS],
    *[_c(f"button_physical_{n}", b, "0.1.0", f"{n} pressed physically") for n in BUTTON_BITS],
]

COLUMNS: list[Column] = KEY_COLUMNS + PRE_COLUMNS + POST_COLUMNS + FRAME_COLUMNS + DECODED_COLUMNS
FRAME_SCHEMA = pa.schema([pa.field(c.name, c.type) for c in COLUMNS])
RAW_COLUMNS = {c.name: c for c in PRE_COLUMNS + POST_COLUMNS}


def optional_columns(version: Version) -> list[str]:
    """Names of the columns newer than Slippi 0.1 that a replay of `version` records."""
    return [c.name for c in COLUMNS if (0, 1, 0) < c.since <= version]
