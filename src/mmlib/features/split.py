"""Which games and perspectives a character's BC data uses, and the seeded train/val split.

A perspective is one player of a usable 1v1 game seen as `self` (the other is `opp`); both
perspectives of a game are used when both players qualify (dittos). CPU players are left out by
default: replays hold no physical buttons for them (SPEC 1.2), so their button targets would all
be NONE. Splits are by replay md5, so no game is in both. The pooled data set (POOLED) holds
every character's perspectives; its validation games are the listed characters' own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmlib.data.ids import CHARACTERS, PORTS
from mmlib.errors import UsageError

SLUGS = {c.slug: c for c in CHARACTERS.values()}


@dataclass(frozen=True)
class Perspective:
    md5: str
    self_port: int
    opp_port: int
    stage_id: int  # external stage id
    version: tuple[int, int, int]


POOLED = "all"  # the data set of every character's perspectives (one pooled model)


def character_slug(name: str) -> str:
    """Validate a character slug (`fox`, `falco`...) or POOLED; one-line UsageError listing the
    valid ones."""
    if name not in SLUGS and name != POOLED:
        names = ", ".join([*sorted(SLUGS), POOLED])
        raise UsageError(f"unknown character {name!r}; expected one of {names}")
    return name


def perspectives(
    games: pa.Table, character: str, include_cpu: bool = False, include_quits: bool = False
) -> list[Perspective]:
    """Every perspective of a usable 1v1 game whose self player starts as `character` (POOLED:
    any character). `include_quits`: also the 1v1s on a legal stage with enough frames that end
    in a quit or no contest, which `usable_1v1` leaves out (most games of a casual set)."""
    keep = games["usable_1v1"]
    if include_quits:
        keep = pc.and_(pc.and_(games["is_1v1"], games["legal_stage"]), games["enough_frames"])
    out = []
    for g in games.filter(keep).to_pylist():
        ports = [p for p in PORTS if g[f"p{p}_character_ext"] is not None]
        for me in ports:
            if character != POOLED and CHARACTERS[g[f"p{me}_character_ext"]].slug != character:
                continue
            if g[f"p{me}_type"] == "cpu" and not include_cpu:
                continue
            (opp,) = [p for p in ports if p != me]
            version = tuple(int(v) for v in g["slippi_version"].split("."))
            out.append(Perspective(g["md5"], me, opp, g["stage_id"], version))
    return sorted(out, key=lambda p: (p.md5, p.self_port))


def split_md5s(
    md5s: list[str], val_frac: float, seed: int, min_val: int = 1
) -> tuple[list[str], list[str]]:
    """(train, val) md5 lists: a seeded shuffle of the sorted unique md5s; the first
    max(min_val, round(val_frac * n)) games go to validation, but with two or more games each
    side keeps at least one. `min_val` keeps a small character's interval honest (ten games
    where there are enough; one on the 42-game smoke set)."""
    if not 0 < val_frac < 1:
        raise UsageError(f"val_frac must be between 0 and 1, not {val_frac}")
    if min_val < 1:
        raise UsageError(f"min_val_games must be at least 1, not {min_val}")
    unique = sorted(set(md5s))
    order = np.random.default_rng(seed).permutation(len(unique))
    n = len(unique)
    n_val = min(n - 1, max(min_val, round(val_frac * n))) if n >= 2 else 0  # both sides non-empty
    val = sorted(unique[i] for i in order[:n_val])
    train = sorted(unique[i] for i in order[n_val:])
    return train, val
