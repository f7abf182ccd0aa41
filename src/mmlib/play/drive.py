"""Replay-driven evaluation, no emulator: a policy fed a real replay through libmelee's file
console, exactly as live play feeds it (the same `StreamingPolicy`, the same decode path).

Two modes, for one port of the replay:
- `teacher`: the controller history is the human's real inputs (read from each `GameState`);
  each frame's decision is compared with what the human did on the next frame.
- `free`: the controller history is the bot's own previous output (`controller.sent`), as in
  live play; the game itself still follows the replay, so this asks whether the bot keeps
  pressing buttons or collapses into NONE when it only sees its own inputs.

`drive` returns one row per fed frame (`COLUMNS`); `health` turns rows into the gameplay-health
figures of SPEC 5.7, for the bot and for the human on the same frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm  # not tqdm.auto: its warning puts a path into executed notebooks

from mmlib.checkpoint.directory import Policy
from mmlib.errors import UsageError
from mmlib.features import build, raw
from mmlib.features.controller import (
    BTN_A_TRIG,
    BTN_JUMP,
    BTN_NONE,
    BTN_TRIG,
    C_STICK_CENTERS,
    MAIN_STICK_CENTERS,
)
from mmlib.features.replay_console import ReplayConsole
from mmlib.play import controller
from mmlib.play.policy import StreamingPolicy

MODES = ("teacher", "free")
HEADS = ("shoulder", "c", "main", "button")
FPS = 60
NEUTRAL_RADIUS = 0.05  # SPEC 5.7: |x - 0.5| and |y - 0.5| both below this is a neutral stick
WAVEDASH_WITHIN = 8  # frames from a jump press to the airdodge (longest jumpsquat is 8)
WAVEDASH_DOWN_Y = 0.4  # the airdodge's stick must point below this (down or down-diagonal)


def other_port(state, port: int) -> int:
    """The one other player's port of a 1v1 `GameState`; a clear error otherwise."""
    others = sorted(int(p) for p in state.players if p != port)
    if port not in state.players or len(others) != 1:
        raise UsageError(
            f"port {port} is not one side of a 1v1 (ports {sorted(int(p) for p in state.players)})"
        )
    return others[0]


def drive(
    policy: Policy,
    replay: Path | str,
    port: int,
    *,
    mode: str = "teacher",
    prefill: str = "neutral",
    temperature: float | dict[str, float] = 1.0,
    seed: int = 0,
    max_frames: int | None = None,
    progress: bool = False,
) -> pa.Table:
    """Run the policy over `replay` as the player on `port`; one row per fed frame. A missing
    replay, or one libmelee cannot read, raises `ReplayConsole`'s one-line error, and no rows
    are returned."""
    if mode not in MODES:
        raise UsageError(f"mode {mode!r}: one of {', '.join(MODES)}")
    bot, sent, rows = None, None, []
    for state in tqdm(ReplayConsole(replay), desc=Path(replay).name, disable=not progress):
        if bot is None:
            if len(state.players) < 2:
                continue
            bot = StreamingPolicy(
                policy,
                port,
                other_port(state, port),
                temperature=temperature,
                seed=seed,
                prefill=prefill,
            )
        decision = bot.step(state, sent if mode == "free" else None)
        if decision is None:
            continue
        sent = controller.sent(decision.choice)
        human = raw.controller_from_state(state.players[port].controller_state)
        rows.append((int(state.frame), decision, human))
        if max_frames is not None and len(rows) > max_frames:
            break
    if len(rows) < 2:
        raise UsageError(f"{replay}: fewer than 2 playable frames for port {port}")
    return _table(rows)


def _table(rows: list) -> pa.Table:
    # Frame t's decision is the controller for frame t + 1: compare it with the human's input
    # there. The last frame has no next one and is dropped.
    frames = np.array([r[0] for r in rows[:-1]], np.int64)
    bot = {h: np.array([getattr(r[1].choice, h) for r in rows[:-1]], np.int8) for h in HEADS}
    greedy = {h: np.array([getattr(r[1].greedy, h) for r in rows[:-1]], np.int8) for h in HEADS}
    p_none = np.array([r[1].probs["button"][BTN_NONE] for r in rows[:-1]], np.float32)
    human_raw = raw.concat(
        [{"self_" + k: np.array([v]) for k, v in r[2].items()} for r in rows[1:]]
    )
    human = build.controller_classes(human_raw)
    main_xy = MAIN_STICK_CENTERS[bot["main"]]
    c_xy = C_STICK_CENTERS[bot["c"]]
    columns = {"frame": frames}
    columns |= {f"bot_{h}": bot[h] for h in HEADS}
    columns |= {f"greedy_{h}": greedy[h] for h in HEADS}
    columns |= {f"human_{h}": human[h].astype(np.int8) for h in HEADS}
    columns |= {
        "bot_main_x": main_xy[:, 0],
        "bot_main_y": main_xy[:, 1],
        "bot_c_x": c_xy[:, 0],
        "bot_c_y": c_xy[:, 1],
        "human_main_x": human_raw["self_main_x"].astype(np.float32),
        "human_main_y": human_raw["self_main_y"].astype(np.float32),
        "p_none": p_none,
    }
    return pa.table(columns)


def _onsets(pressed: np.ndarray) -> np.ndarray:
    """Frames where `pressed` becomes true (true on the first frame counts)."""
    return pressed & ~np.concatenate([[False], pressed[:-1]])


def wavedash_shaped(button: np.ndarray, main_y: np.ndarray) -> int:
    """Jump presses followed within `WAVEDASH_WITHIN` frames by an airdodge press (TRIG or
    A_TRIG onset) with the stick pointing down: the input shape of a wavedash or waveland."""
    jumps = np.flatnonzero(_onsets(button == BTN_JUMP))
    dodges = np.flatnonzero(_onsets(np.isin(button, [BTN_TRIG, BTN_A_TRIG])))
    dodges = dodges[main_y[dodges] < WAVEDASH_DOWN_Y]
    if not len(jumps) or not len(dodges):
        return 0
    nxt = np.searchsorted(dodges, jumps, side="right")  # the first down-airdodge after a jump
    ok = nxt < len(dodges)
    return int(np.sum(dodges[nxt[ok]] - jumps[ok] <= WAVEDASH_WITHIN))


def health(table: pa.Table, who: str = "bot") -> dict[str, float]:
    """Gameplay health (SPEC 5.7) of the bot's sampled inputs or the human's, per frame."""
    button = table[f"{who}_button"].to_numpy()
    x, y = table[f"{who}_main_x"].to_numpy(), table[f"{who}_main_y"].to_numpy()
    active = button != BTN_NONE
    seconds = len(button) / FPS
    out = {
        "frames": len(button),
        "non_none_share": float(active.mean()),
        "stick_neutral_share": float(
            np.mean((np.abs(x - 0.5) < NEUTRAL_RADIUS) & (np.abs(y - 0.5) < NEUTRAL_RADIUS))
        ),
        "presses_per_s": float(_onsets(active)[1:].sum() / seconds),
        "trig_presses": int(_onsets(np.isin(button, [BTN_TRIG, BTN_A_TRIG])).sum()),
        "wavedash_shaped": wavedash_shaped(button, y),
    }
    if who == "bot":
        out["top_non_none_share"] = float((table["greedy_button"].to_numpy() != BTN_NONE).mean())
        out["none_prob_mean"] = float(table["p_none"].to_numpy().mean())
    return out


def agreement(table: pa.Table) -> dict[str, dict[str, float]]:
    """Per head, how often the bot's sampled and argmax classes equal the human's next input."""
    out = {}
    for h in HEADS:
        human = table[f"human_{h}"].to_numpy()
        out[h] = {
            "sampled": float((table[f"bot_{h}"].to_numpy() == human).mean()),
            "argmax": float((table[f"greedy_{h}"].to_numpy() == human).mean()),
        }
    return out
