"""The games-table row of one replay: who played where, how it ended, and whether it is usable.

`usable_1v1` is a column computed from its four parts (also stored), never a reason to drop a
game: downstream stages choose their own filter and can always see what was left out.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from mmlib.data import ids
from mmlib.data.replay import FIRST_PLAYABLE_FRAME
from mmlib.data.schema import Version, optional_columns

FPS = 60  # Melee runs at 60 frames/s (59.94 on NTSC hardware; Slippi tools use 60)
END_METHODS = {
    "Unresolved": "UNRESOLVED",
    "Time": "TIME",
    "Game": "GAME",
    "Resolved": "RESOLVED",
    "NoContest": "NO_CONTEST",
}
NORMAL_ENDS = {
    "GAME",
    "RESOLVED",
}  # RESOLVED: a normal end before 2.0 (also seen in one 3.13 replay)
# A replay with no GameEnd event (end_method null) is a recording that stopped without one, which
# is common in netplay and ranked replays. Between two humans it counts as a normal end: the game
# was played, and whether it is long enough is `enough_frames`' call. Its winner is the one player
# with stocks left on the last frame, if the other has none; a cut-off game has no winner.

_PORT_FIELDS = [
    ("character_ext", pa.uint8()),  # external id (Game Start)
    ("character_int", pa.uint8()),  # internal id (post-frames, libmelee)
    ("character", pa.string()),
    ("type", pa.string()),  # human / cpu / demo
    ("cpu_level", pa.uint8()),
    ("netplay_name", pa.string()),
    ("connect_code", pa.string()),
    ("team", pa.uint8()),  # team colour, teams games only
    ("placement", pa.int8()),  # 0 = first (v3.13+)
]
GAMES_SCHEMA = pa.schema(
    [
        ("md5", pa.string()),  # of the raw .slp bytes; also the game file's name
        ("source", pa.string()),  # path it was ingested from (archive members: archive::member)
        ("slippi_version", pa.string()),
        ("is_pal", pa.bool_()),  # null before Slippi 1.5
        ("is_teams", pa.bool_()),
        ("stage_id", pa.uint16()),  # external id
        ("stage", pa.string()),
        ("n_players", pa.uint8()),
        *[(f"p{p}_{name}", t) for p in ids.PORTS for name, t in _PORT_FIELDS],
        ("frames", pa.int32()),  # unique frames stored (countdown included)
        ("playable_frames", pa.int32()),  # frames from -39 (first playable) on
        ("duration_s", pa.float64()),  # playable_frames / 60
        ("rollback_frames_dropped", pa.int32()),
        ("end_method", pa.string()),  # GAME TIME NO_CONTEST; RESOLVED UNRESOLVED (mostly < 2.0)
        ("lras_initiator", pa.uint8()),  # port that quit with L+R+A+Start
        ("winners", pa.list_(pa.uint8())),  # ports; a team's members; empty when none
        ("online", pa.bool_()),  # Slippi online (scene 8), null before 3.7
        ("match_id", pa.string()),  # ranked/unranked/direct match id (3.14+)
        ("played_on", pa.string()),  # metadata: dolphin / nintendont / network
        ("optional_fields", pa.list_(pa.string())),  # frame columns newer than 0.1 it records
        ("is_1v1", pa.bool_()),  # two human-or-CPU players, no teams
        ("legal_stage", pa.bool_()),
        ("enough_frames", pa.bool_()),  # playable_frames >= min_frames
        ("normal_end", pa.bool_()),  # GAME or RESOLVED; or no GameEnd, two humans (see above)
        ("usable_1v1", pa.bool_()),  # all four above
    ]
)


def _clean(name: str | None) -> str | None:
    # peppi returns the connect-code '#' full width (U+FF03); metadata uses ASCII
    return name.replace("\uff03", "#") if name else None


def _port(p: str | None) -> int | None:
    return None if p is None else int(p[1:])  # "P2" -> 2


def _names(player: dict, metadata: dict | None) -> tuple[str | None, str | None]:
    """Display name and connect code: Game Start from 3.9, else the metadata block."""
    netplay = player.get("netplay") or {}
    name, code = _clean(netplay.get("name")), _clean(netplay.get("code"))
    if name or code:
        return name, code
    meta = ((metadata or {}).get("players") or {}).get(str(_port(player["port"]) - 1)) or {}
    names = meta.get("names") or {}
    return _clean(names.get("netplay")), _clean(names.get("code"))


def winners(end_method, lras, players, last_stocks, last_percent, placements) -> list[int]:
    """Winning ports by the rule in SPEC 1.4 (after slippi-js `getWinners`)."""
    ports = [_port(p["port"]) for p in players]
    team = {_port(p["port"]): (p.get("team") or {}).get("color") for p in players}
    if end_method is None:  # no GameEnd: the last frame's stocks decide a finished 1v1
        alive = [p for p in ports if last_stocks[p] > 0]
        return alive if len(ports) == 2 and len(alive) == 1 and team[ports[0]] is None else []
    if len(ports) == 2 and team[ports[0]] is None:
        if end_method in ("NO_CONTEST", "UNRESOLVED"):
            return [p for p in ports if p != lras] if lras in ports else []
        if end_method == "TIME":
            key = {p: (last_stocks[p], -int(last_percent[p])) for p in ports}
            a, b = ports
            return [] if key[a] == key[b] else [max(ports, key=key.get)]
    if end_method == "NO_CONTEST":
        return []
    first = [p for p, place in placements.items() if place == 0]
    if not first:  # no placements before 3.13: the one player (or team) with stocks left
        alive = [p for p in ports if last_stocks[p] > 0]
        one_team = len({team[p] for p in alive}) == 1 and team[alive[0]] is not None
        if not (len(alive) == 1 or one_team):
            return []
        first = alive[:1]
    if team[first[0]] is not None:
        return sorted(p for p in ports if team[p] == team[first[0]])
    return first


def _last_values(frames: pa.Table, ports: list[int]) -> dict[int, tuple[int, float]]:
    """(stocks, percent) of each port's leader on the last frame it was present."""
    cols = frames.select(["port", "follower", "present", "post_stocks", "post_percent"])
    out = {}
    for port in ports:
        mask = pc.and_(pc.equal(cols["port"], port), pc.invert(cols["follower"]))
        rows = cols.filter(pc.and_(mask, cols["present"]))
        out[port] = (
            (rows["post_stocks"][-1].as_py(), rows["post_percent"][-1].as_py())
            if len(rows)
            else (0, 0.0)
        )
    return out


def summarize(raw, frames: pa.Table, dropped: int, version: Version, min_frames: int) -> dict:
    """The games-table row (without md5/source) of a parsed replay."""
    start, end, metadata = raw.start, raw.end, raw.metadata
    players = sorted(start["players"], key=lambda p: p["port"])
    end_method = END_METHODS.get(end["method"], end["method"].upper()) if end else None
    lras = _port(end.get("lras_initiator")) if end else None
    placements = {_port(p["port"]): p["placement"] for p in (end or {}).get("players") or []}

    row: dict = {f"p{p}_{name}": None for p in ids.PORTS for name, _ in _PORT_FIELDS}
    for p in players:
        port, char = _port(p["port"]), ids.character(p["character"])
        name, code = _names(p, metadata)
        row |= {
            f"p{port}_character_ext": char.external,
            f"p{port}_character_int": char.internal,
            f"p{port}_character": char.name,
            f"p{port}_type": p["type"].lower(),
            f"p{port}_cpu_level": p.get("cpu_level"),
            f"p{port}_netplay_name": name,
            f"p{port}_connect_code": code,
            f"p{port}_team": (p.get("team") or {}).get("color"),
            f"p{port}_placement": placements.get(port),
        }
    frame_ids = pc.unique(frames["frame"])
    playable = int(pc.sum(pc.greater_equal(frame_ids, FIRST_PLAYABLE_FRAME)).as_py() or 0)
    ports = [_port(p["port"]) for p in players]
    last = _last_values(frames, ports)
    last_stocks = {p: last[p][0] for p in ports}
    last_percent = {p: last[p][1] for p in ports}
    scene = start.get("scene")
    match = start.get("match") or {}
    is_1v1 = (
        len(players) == 2
        and not start["is_teams"]
        and all(p["type"] in ("Human", "Cpu") for p in players)
    )
    legal = start["stage"] in ids.LEGAL_STAGES
    humans = all(p["type"] == "Human" for p in players)
    normal = end_method in NORMAL_ENDS or (end_method is None and is_1v1 and humans)
    row |= {
        "slippi_version": ".".join(map(str, version)),
        "is_pal": start.get("is_pal"),
        "is_teams": start["is_teams"],
        "stage_id": start["stage"],
        "stage": ids.stage_name(start["stage"]),
        "n_players": len(players),
        "frames": len(frame_ids),
        "playable_frames": playable,
        "duration_s": playable / FPS,
        "rollback_frames_dropped": dropped,
        "end_method": end_method,
        "lras_initiator": lras,
        "winners": winners(end_method, lras, players, last_stocks, last_percent, placements),
        "online": None if scene is None else scene["major"] == 8,
        "match_id": match.get("id") or None,
        "played_on": (metadata or {}).get("playedOn"),
        "optional_fields": optional_columns(version),
        "is_1v1": is_1v1,
        "legal_stage": legal,
        "normal_end": normal,
    }
    return with_min_frames(row, min_frames)


def with_min_frames(row: dict, min_frames: int) -> dict:
    """The row with `enough_frames` and `usable_1v1` for this threshold (the ingest re-applies it
    to games stored by earlier runs, so the flag always follows the current setting)."""
    enough = row["playable_frames"] >= min_frames
    usable = row["is_1v1"] and row["legal_stage"] and enough and row["normal_end"]
    return row | {"enough_frames": enough, "usable_1v1": usable}
