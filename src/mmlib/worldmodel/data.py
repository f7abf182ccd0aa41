"""Ingested games -> encoded frame arrays for the world model, split by replay.

Which games: two-player games whose Slippi version records every field the encodings use
(hitlag arrived in 3.8.0, velocities in 3.5.0): a world model cannot learn to predict a column
the replay never wrote. Frames run from the first playable frame (-39) to the end; each player is
the port's leader (Nana, the Ice Climbers follower, is not modelled, as in the published parser).

Controller columns are the *processed* inputs the engine read (`pre_joystick`, `pre_triggers`,
the processed button mask), not the physical ones: the world model simulates the engine, and CPU
players press buttons only in the processed mask (SPEC 1.2).

Encoded arrays are compact (ints `INT_DTYPE`, stage uint8) and may be memory-mapped from the
`wm_frames` store (`frame_store.py`); `Frames.clip` gives the model int64 tensors. Clip starts are
numbered k = 0, 1, ... in game order and mapped to rows through per-game counts, so no list of
every start is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from mmlib.data import store
from mmlib.data.ids import PORTS
from mmlib.data.replay import FIRST_PLAYABLE_FRAME
from mmlib.features.split import split_md5s
from mmlib.worldmodel.encoding import SCALE, STAGE_VOCAB, VOCAB, EncodingConfig

MIN_VERSION = (3, 8, 0)
MIN_FRAMES = 300  # playable frames, as for the BC data (5 s)
_CHUNK = 1 << 20  # starts mapped to rows at a time (bounds the temporaries)


def _int_dtype() -> np.dtype:
    """The narrowest of int16 and int32 that holds every categorical id and the stage."""
    top = max(vocab for vocab, _ in (*VOCAB.values(), STAGE_VOCAB))
    return np.dtype(np.int16) if top <= np.iinfo(np.int16).max else np.dtype(np.int32)


INT_DTYPE = _int_dtype()
STAGE_DTYPE = np.dtype(np.uint8)  # stage ids are clipped to STAGE_VOCAB (33)

_FLOAT_SOURCES = {
    "percent": "post_percent",
    "x": "post_position_x",
    "y": "post_position_y",
    "shield": "post_shield",
    "speed_air_x": "post_velocities_self_x_air",
    "speed_y": "post_velocities_self_y",
    "speed_ground_x": "post_velocities_self_x_ground",
    "speed_attack_x": "post_velocities_knockback_x",
    "speed_attack_y": "post_velocities_knockback_y",
    "state_age": "post_state_age",
    "hitlag": "post_hitlag",
    "stocks": "post_stocks",
    "combo": "post_combo_count",
    "shoulder": "pre_triggers",
    "a": "button_a",
    "b": "button_b",
    "x_button": "button_x",
    "y_button": "button_y",
    "z": "button_z",
    "l": "button_l",
    "r": "button_r",
    "d_up": "button_d_up",
}
_STICKS = {  # [-1, 1] -> libmelee's [0, 1], 0.5 = neutral
    "main_x": "pre_joystick_x",
    "main_y": "pre_joystick_y",
    "c_x": "pre_cstick_x",
    "c_y": "pre_cstick_y",
}
_INT_SOURCES = {
    "action": "post_state",
    "jumps": "post_jumps",
    "character": "post_character",
    "l_cancel": "post_l_cancel",
    "hurtbox": "post_hurtbox_state",
    "ground": "post_ground",
    "last_attack": "post_last_attack_landed",
    "state_age": "post_state_age",
}
COLUMNS = sorted(
    {"frame", "port", "follower", "post_direction", "post_airborne"}
    | set(_FLOAT_SOURCES.values())
    | set(_STICKS.values())
    | set(_INT_SOURCES.values())
)


@dataclass
class Frames:
    """Encoded games end to end: floats (N, 2, F), ints (N, 2, I), stage (N,); game g is rows
    offsets[g]:offsets[g + 1]. Player 0 is the lower port. The arrays may be memory-mapped."""

    cfg: EncodingConfig
    floats: np.ndarray
    ints: np.ndarray
    stage: np.ndarray
    offsets: np.ndarray
    md5s: list[str]

    @property
    def n_frames(self) -> int:
        return len(self.floats)

    def game(self, g: int) -> Frames:
        return self.games(g, g + 1)

    def games(self, first: int, stop: int) -> Frames:
        """Games first .. stop - 1 (views of the same arrays)."""
        a, b = self.offsets[first], self.offsets[stop]
        return Frames(
            self.cfg, self.floats[a:b], self.ints[a:b], self.stage[a:b],
            self.offsets[first : stop + 1] - a, self.md5s[first:stop],
        )  # fmt: skip

    def start_counts(self, width: int, step: int = 1) -> np.ndarray:
        """Per game, how many clips of `width + lead` frames fit in it, one every `step` rows
        from its first row."""
        fit = np.maximum(np.diff(self.offsets) - (width + self.cfg.lead) + 1, 0)
        return -(-fit // step)

    def n_starts(self, width: int, step: int = 1) -> int:
        """How many clip starts there are in all games (see `start_rows`)."""
        return int(self.start_counts(width, step).sum())

    def start_rows(self, width: int, k, step: int = 1, out: np.ndarray | None = None):
        """The rows of clip starts number k (1-D, each in [0, n_starts)): start k is the k-th of
        the starts taken game by game, `step` apart, wherever a clip of `width + lead` frames fits
        in one game. `out` (which may be `k` itself) receives the rows, so that mapping an
        epoch's order needs no second array."""
        k = np.asarray(k, dtype=np.int64)
        cum = np.concatenate([[0], np.cumsum(self.start_counts(width, step))]).astype(np.int64)
        if k.size and (k.min() < 0 or k.max() >= cum[-1]):
            raise IndexError(f"clip starts run from 0 to {cum[-1] - 1}")
        out = np.empty_like(k) if out is None else out
        for a in range(0, len(k), _CHUNK):
            part = k[a : a + _CHUNK]
            g = np.searchsorted(cum, part, side="right") - 1
            out[a : a + _CHUNK] = self.offsets[g] + step * (part - cum[g])
        return out

    def clip(self, starts: np.ndarray, width: int) -> tuple[torch.Tensor, ...]:
        """(floats (B, C, 2, F), ints (B, C, 2, I), stage (B,)) for clips of C = width + lead;
        the categoricals as int64, whatever the stored dtype."""
        starts = np.asarray(starts)
        rows = starts[:, None] + np.arange(width + self.cfg.lead)
        return (
            torch.from_numpy(np.asarray(self.floats[rows])),
            torch.from_numpy(self.ints[rows].astype(np.int64)),
            torch.from_numpy(self.stage[starts].astype(np.int64)),
        )


def select_games(games: pa.Table) -> list[str]:
    """md5s of the games a world model can use (two players, every field recorded, long enough)."""
    out = []
    for g in games.to_pylist():
        version = tuple(int(v) for v in g["slippi_version"].split("."))
        if g["n_players"] == 2 and version >= MIN_VERSION and g["playable_frames"] >= MIN_FRAMES:
            out.append(g["md5"])
    return sorted(out)


def _player(table: pa.Table, port: int) -> dict[str, np.ndarray]:
    mask = pc.and_(pc.equal(table["port"], port), pc.invert(table["follower"]))
    rows = table.filter(mask).sort_by("frame")
    return {name: rows[name].to_numpy(zero_copy_only=False) for name in rows.column_names}


def encode_game(frames: pa.Table, stage_id: int, cfg: EncodingConfig) -> tuple[np.ndarray, ...]:
    """One game's (floats (T, 2, F), ints (T, 2, I), stage (T,)) from its ingested frame table."""
    frames = frames.filter(pc.greater_equal(frames["frame"], FIRST_PLAYABLE_FRAME))
    ports = sorted(set(frames["port"].to_pylist()))
    if len(ports) != 2:
        raise ValueError(f"expected two ports, found {ports}")
    players = [_player(frames, p) for p in ports]
    if not np.array_equal(players[0]["frame"], players[1]["frame"]):
        raise ValueError("the two players' frames differ")
    floats = np.stack([_floats(p, cfg) for p in players], axis=1)
    ints = np.stack([_ints(p, cfg) for p in players], axis=1).astype(INT_DTYPE)
    stage = np.full(len(floats), min(stage_id, STAGE_VOCAB[0] - 1), dtype=STAGE_DTYPE)
    return floats, ints, stage


def _floats(p: dict[str, np.ndarray], cfg: EncodingConfig) -> np.ndarray:
    cols = []
    for name in cfg.floats:
        if name in _STICKS:
            v = (p[_STICKS[name]].astype(np.float64) + 1) / 2
        elif name == "facing":
            v = p["post_direction"] > 0
        elif name == "invulnerable":
            v = p["post_hurtbox_state"] != 0
        elif name == "on_ground":
            v = p["post_airborne"] == 0
        else:
            v = p[_FLOAT_SOURCES[name]].astype(np.float64) * SCALE.get(name, 1.0)
        cols.append(np.asarray(v, dtype=np.float32))
    return np.stack(cols, axis=-1)


def _ints(p: dict[str, np.ndarray], cfg: EncodingConfig) -> np.ndarray:
    cols = []
    for name in cfg.ints:
        v = p[_INT_SOURCES[name]].astype(np.int64)
        if name == "ground":  # 65535 = airborne -> 0; surfaces become id + 1
            v = np.where(v == 65535, 0, v + 1)
        cols.append(np.clip(v, 0, VOCAB[name][0] - 1))
    return np.stack(cols, axis=-1)


def read_game(ingest_dir: Path, md5: str) -> pa.Table:
    """The columns `encode_game` reads, of one ingested game's players (no spectator ports)."""
    table = store.read_frames(ingest_dir, md5, COLUMNS)
    return table.filter(pc.is_in(table["port"], pa.array(PORTS, pa.uint8())))


def encode(ingest_dir: Path, md5s: list[str], cfg: EncodingConfig, progress=None) -> Frames:
    """Encode the named games (in this order) from an ingest folder, in memory: for tests and
    benchmarks; the pipeline reads the `wm_frames` store (`frame_store.load`)."""
    games = store.read_games(ingest_dir)
    stage_of = dict(zip(games["md5"].to_pylist(), games["stage_id"].to_pylist(), strict=True))
    parts = []
    for md5 in progress(md5s) if progress else md5s:
        parts.append(encode_game(read_game(ingest_dir, md5), stage_of[md5], cfg))
    lengths = [len(p[0]) for p in parts]
    return Frames(
        cfg,
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        list(md5s),
    )


def split_games(
    ingest_dir: Path, val_frac: float, seed: int, max_games: int = 0
) -> tuple[list[str], list[str]]:
    """(train, val) md5s: the usable games split by md5 exactly as the BC shards are split.
    `max_games` (0: all): a seeded sample of that many games first, so a CPU profile on data
    version 2 trains in minutes."""
    games = select_games(store.read_games(ingest_dir))
    if 0 < max_games < len(games):
        keep = np.random.default_rng(seed).permutation(len(games))[:max_games]
        games = sorted(games[i] for i in keep)
    return split_md5s(games, val_frac, seed)


def split(ingest_dir: Path, cfg: EncodingConfig, val_frac: float, seed: int, progress=None):
    """(train, val) Frames encoded in memory: the games of `split_games`."""
    train, val = split_games(ingest_dir, val_frac, seed)
    return encode(ingest_dir, train, cfg, progress), encode(ingest_dir, val, cfg, progress)
