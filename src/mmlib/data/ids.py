"""Every id mapping mmlib uses: characters, stages, ports and libmelee's enums, in one place.

Slippi stores a character twice: the Game Start block holds the *external* (character-select)
id and every post-frame holds the *internal* (in-game) id. libmelee's `Character` enum uses
internal ids; `melee.enums.to_internal()` maps character-select *screen* positions, not Slippi's
external ids, so it must not be used on replays (SPEC 1.3). Stages in Game Start are external
ids; libmelee's `Stage` enum has internal values for the six legal stages only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Character:
    external: int  # id in Slippi's Game Start block (character select)
    internal: int  # id in every post-frame and in libmelee's `Character` enum
    name: str  # display name
    slug: str  # lower-case name for command lines and file names


# (external, internal, name, slug). Ice Climbers: Popo (10) leads, Nana (11) follows.
_CHARACTER_ROWS = [
    (0, 2, "Captain Falcon", "falcon"),
    (1, 3, "Donkey Kong", "dk"),
    (2, 1, "Fox", "fox"),
    (3, 24, "Mr. Game & Watch", "gnw"),
    (4, 4, "Kirby", "kirby"),
    (5, 5, "Bowser", "bowser"),
    (6, 6, "Link", "link"),
    (7, 17, "Luigi", "luigi"),
    (8, 0, "Mario", "mario"),
    (9, 18, "Marth", "marth"),
    (10, 16, "Mewtwo", "mewtwo"),
    (11, 8, "Ness", "ness"),
    (12, 9, "Peach", "peach"),
    (13, 12, "Pikachu", "pikachu"),
    (14, 10, "Ice Climbers", "ics"),
    (15, 15, "Jigglypuff", "puff"),
    (16, 13, "Samus", "samus"),
    (17, 14, "Yoshi", "yoshi"),
    (18, 19, "Zelda", "zelda"),
    (19, 7, "Sheik", "sheik"),
    (20, 22, "Falco", "falco"),
    (21, 20, "Young Link", "ylink"),
    (22, 21, "Dr. Mario", "doc"),
    (23, 26, "Roy", "roy"),
    (24, 23, "Pichu", "pichu"),
    (25, 25, "Ganondorf", "ganon"),
    (26, 27, "Master Hand", "master_hand"),
    (27, 29, "Wireframe (male)", "wireframe_male"),
    (28, 30, "Wireframe (female)", "wireframe_female"),
    (29, 31, "Giga Bowser", "giga_bowser"),
    (30, 28, "Crazy Hand", "crazy_hand"),
    (31, 32, "Sandbag", "sandbag"),
    (32, 10, "Popo", "popo"),
]
CHARACTERS: dict[int, Character] = {r[0]: Character(*r) for r in _CHARACTER_ROWS}
"""External id -> Character."""

ICE_CLIMBERS = 14  # external id: the only character with a follower stream (Nana)
NANA_INTERNAL = 11  # internal id of Nana (Popo, the leader, is 10)

# External stage id -> name (Game Start). Ids 33-58 (Target Test) and 84 (Home-Run) are not VS
# stages; peppi-py 0.8.6 refuses those replays anyway (their end methods are 6 and 9).
STAGES: dict[int, str] = {
    2: "Fountain of Dreams",
    3: "Pokemon Stadium",
    4: "Princess Peach's Castle",
    5: "Kongo Jungle",
    6: "Brinstar",
    7: "Corneria",
    8: "Yoshi's Story",
    9: "Onett",
    10: "Mute City",
    11: "Rainbow Cruise",
    12: "Jungle Japes",
    13: "Great Bay",
    14: "Hyrule Temple",
    15: "Brinstar Depths",
    16: "Yoshi's Island",
    17: "Green Greens",
    18: "Fourside",
    19: "Mushroom Kingdom I",
    20: "Mushroom Kingdom II",
    22: "Venom",
    23: "Poke Floats",
    24: "Big Blue",
    25: "Icicle Mountain",
    26: "Icetop",
    27: "Flat Zone",
    28: "Dream Land N64",
    29: "Yoshi's Island N64",
    30: "Kongo Jungle N64",
    31: "Battlefield",
    32: "Final Destination",
}
# The six tournament-legal stages: external id -> libmelee `Stage` value (internal).
LEGAL_STAGES: dict[int, int] = {2: 0x08, 3: 0x12, 8: 0x06, 28: 0x1A, 31: 0x18, 32: 0x19}

PORTS = (
    1,
    2,
    3,
    4,
)  # mmlib numbers ports 1-4, as the game and libmelee do; peppi uses P1..P4 = 0..3


def character(external: int) -> Character:
    """The Character for a Game Start (external) id; ValueError names the id if unknown."""
    try:
        return CHARACTERS[external]
    except KeyError:
        raise ValueError(f"unknown external character id {external} (expected 0-32)") from None


def stage_name(external: int) -> str:
    return STAGES.get(external, f"unknown stage {external}")


def melee_character(internal: int):
    """libmelee's `Character` for an internal (post-frame) id."""
    import melee  # libmelee is heavy; import it only where its enums are needed

    return melee.Character(internal)


def melee_stage(external: int):
    """libmelee's `Stage` for an external (Game Start) id; `Stage.NO_STAGE` off the legal six."""
    import melee

    return melee.Stage(LEGAL_STAGES.get(external, 0))


def melee_action(state: int):
    """libmelee's `Action` for a raw action-state id (ids >= 341 are character-specific)."""
    import melee

    return melee.Action(state)


# Dense indices, as the BC model's embedding tables use them (SPEC 3.4): the position of a value
# in libmelee's `Stage`, `Character` and `Action` enums. Unknown raw values map to 0.
ACTION_TABLE_SIZE = 0x10000  # action ids are u16


@functools.cache
def _dense_table(enum_name: str, size: int) -> np.ndarray:
    import melee

    table = np.zeros(size, np.int64)
    for index, member in enumerate(getattr(melee, enum_name)):
        if member.value < size:
            table[member.value] = index
    return table


def action_index(state: np.ndarray | int) -> np.ndarray:
    """Dense action index (position in libmelee's `Action`) of raw action-state ids."""
    return _dense_table("Action", ACTION_TABLE_SIZE)[np.asarray(state, np.int64)]


def character_index(internal: np.ndarray | int) -> np.ndarray:
    """Dense character index (position in libmelee's `Character`) of internal character ids."""
    return _dense_table("Character", 256)[np.asarray(internal, np.int64)]


def stage_index(stage_value: np.ndarray | int) -> np.ndarray:
    """Dense stage index (position in libmelee's `Stage`: NO_STAGE 0, FD 1, BF 2, PS 3, DL 4,
    FoD 5, YS 6) of libmelee `Stage` values (see `LEGAL_STAGES`)."""
    return _dense_table("Stage", 256)[np.asarray(stage_value, np.int64)]
