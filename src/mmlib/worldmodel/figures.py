"""The world-model figures in the published definitions (SPEC 6.5), each with a 95 % interval
over validation games (`intervals`), beside copy-last-frame and dead reckoning.

Teacher-forced, from `evaluate.teacher_forced` (every frame t >= K of every validation game):
- position MAE: |predicted - true| one-frame x and y deltas, per axis (L1), both players, game
  units (nojohns `position_mae`);
- action accuracy and action-change accuracy: player 0 only, as nojohns published them; a change
  is a target action that differs from the last context frame's;
- damage MAE: the same as position for percent, in percent points;
- stocks accuracy (ours): the share of player-frames whose predicted stock count is within half
  a stock of the truth (the trainer's rollout rule, SPEC 6.5).

Rollout coherence (AWM's RC): 300 start frames (seed 42) in validation games, 20 autoregressive
steps fed the recorded controllers; per step the mean of |dx| and |dy| over both players (game
units); RC is the mean over the 20 steps, with the 5- and 10-step sub-means. The published RC
comes from Final Destination games alone, so the starts on FD are also reported apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mmlib.worldmodel import intervals, yardsticks
from mmlib.worldmodel.data import Frames
from mmlib.worldmodel.encoding import SCALE
from mmlib.worldmodel.evaluate import replay_and_copy, rollout_starts
from mmlib.worldmodel.losses import per_player
from mmlib.worldmodel.rollout import rollout

FINAL_DESTINATION = 32  # Slippi's external stage id (`data.ids.STAGES`)
RC_STARTS, RC_SEED, RC_STEPS, RC_SUBS = 300, 42, 20, (5, 10)
YARDSTICKS = ("copy_last_frame", "dead_reckoning")
# name -> whether higher is better (the order of the tables)
TEACHER_FORCED = {"position_mae": False, "action_acc_p0": True, "change_acc_p0": True,
                  "damage_mae": False, "stocks_acc": True}  # fmt: skip


def _stocks_column(enc) -> int:
    return enc.dynamics.index("stocks")


def _rows(enc, out: dict, tgt: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per row: (value, weight) of each teacher-forced figure for one predictor's outputs
    (`out` in the heads' layout: continuous deltas, dynamics absolute, action classes (N, 2))."""
    pos, pct = yardsticks.position_index(), [0, 4]  # continuous: percent, x, y, shield per player
    true, prev = tgt["action"], tgt["prev_action"]
    changed = (true != prev)[:, 0]
    hit = (out["action"] == true)[:, 0]
    rows = {
        "position_mae": np.abs(out["continuous"][:, pos] - tgt["continuous"][:, pos]).mean(1)
        / SCALE["x"],
        "action_acc_p0": hit,
        "change_acc_p0": hit & changed,
        "damage_mae": np.abs(out["continuous"][:, pct] - tgt["continuous"][:, pct]).mean(1)
        / SCALE["percent"],
    }
    weight = {"change_acc_p0": changed}
    if "dynamics" in out:
        k = [_stocks_column(enc) + p * len(enc.dynamics) for p in (0, 1)]
        miss = np.abs(out["dynamics"][:, k] - tgt["dynamics"][:, k]) / SCALE["stocks"]
        rows["stocks_acc"] = (miss < 0.5).mean(1)
    ones = np.ones(len(true))
    return {n: (np.asarray(v, np.float64), weight.get(n, ones)) for n, v in rows.items()}


def _yardstick_outputs(tgt: dict, reckon: bool) -> dict:
    """Copy-last-frame's (nothing moves, every value holds) or dead reckoning's heads."""
    cont = np.zeros_like(tgt["continuous"])
    if reckon:
        cont = yardsticks.continuous_delta(tgt["prev_velocity"], tgt["prev_binary"])
    out = {"continuous": cont, "action": tgt["prev_action"]}
    if "prev_dynamics" in tgt:
        out["dynamics"] = tgt["prev_dynamics"]
    return out


def teacher_forced(enc, pred: dict, n_games: int, seed: int = 0) -> dict:
    """{predictor: {figure: {value, lo, hi}}} for the model and both yardsticks, and for each
    figure the model's paired difference with the better yardstick and its verdict."""
    out, tgt, game = dict(pred["out"]), pred["tgt"], pred["game"]
    out["action"] = per_player(torch.from_numpy(out["action"])).argmax(-1).numpy()
    who = {"model": out, "copy_last_frame": _yardstick_outputs(tgt, False)}
    if "prev_velocity" in tgt:
        who["dead_reckoning"] = _yardstick_outputs(tgt, True)
    w = intervals.weights(n_games, seed=seed)
    sums = {}
    for name, o in who.items():
        sums[name] = {
            f: tuple(intervals.per_game(x, game, n_games) for x in (v * d, d))
            for f, (v, d) in _rows(enc, o, tgt).items()
        }
    return _tables(sums, w, n_games)


def _tables(sums: dict, w: np.ndarray, n_games: int, higher=TEACHER_FORCED) -> dict:
    """Figures (value, interval) per predictor from per-game (numerator, denominator) sums, and
    the model against the better yardstick (by point value) on the same resamples."""
    table, draws = {}, {}
    for name, figs in sums.items():
        table[name], draws[name] = {}, {}
        for f, (num, den) in figs.items():
            point, d = intervals.ratio(num, den, w)
            table[name][f], draws[name][f] = intervals.figure(point, d), (point, d)
    versus = {}
    for f, model in draws["model"].items():
        rivals = {y: draws[y][f][0] for y in YARDSTICKS if y in draws and f in draws[y]}
        best = intervals.better(rivals, higher[f])
        diff, said = intervals.paired(model, draws[best][f], higher[f], n_games)
        versus[f] = {"yardstick": best, **diff, "verdict": said}
    return {**table, "model_vs_yardstick": versus, "games": n_games}


def start_games(frames: Frames, starts: np.ndarray) -> np.ndarray:
    """The game index of each start row."""
    return np.searchsorted(frames.offsets, starts, side="right") - 1


@torch.inference_mode()
def rollout_coherence(model, frames: Frames, seed: int = RC_SEED, n: int = RC_STARTS) -> dict:
    """RC over all starts and over the Final Destination starts: {subset: {predictor: {RC,
    RC@5, RC@10: figure}}, model_vs_yardstick, starts, games}."""
    starts = rollout_starts(frames, RC_STEPS, n, seed)
    pred_f, _ = rollout(model, frames, starts, RC_STEPS)
    enc = frames.cfg
    true_f, _, last_f, _ = replay_and_copy(frames, starts, RC_STEPS)
    reckoned = yardsticks.rollout(enc, np.ascontiguousarray(last_f[:, 0]), RC_STEPS)
    xy = [enc.fi("x"), enc.fi("y")]

    def per_step(pf):  # (B, steps): mean |dx|, |dy| over both players, game units
        return np.abs(np.asarray(pf)[..., xy] - true_f[..., xy]).mean((-1, -2)) / SCALE["x"]

    err = {"model": per_step(pred_f.numpy()), "copy_last_frame": per_step(last_f),
           "dead_reckoning": per_step(reckoned)}  # fmt: skip
    game = start_games(frames, starts)
    stage = np.asarray(frames.stage[starts])
    result = {"starts": int(len(starts)), "steps": RC_STEPS, "seed": seed}
    for subset, keep in (("all", np.ones(len(starts), bool)),
                         ("final_destination", stage == FINAL_DESTINATION)):  # fmt: skip
        games = np.unique(game[keep])
        if not len(games):
            result[subset] = {"starts": 0, "games": 0}
            continue
        dense = np.searchsorted(games, game[keep])  # resample only the subset's games
        w = intervals.weights(len(games), seed=seed)
        count = intervals.per_game(np.ones(keep.sum()), dense, len(games))
        sums = {
            who: {
                label: (intervals.per_game(e[keep, :k].mean(1), dense, len(games)), count)
                for label, k in (("RC", RC_STEPS), *((f"RC@{k}", k) for k in RC_SUBS))
            }
            for who, e in err.items()
        }
        higher = {label: False for label in sums["model"]}
        result[subset] = {"starts": int(keep.sum())} | _tables(sums, w, len(games), higher)
    return result


# --- the tables beside the published rows (SPEC 6.6) ---------------------------------------

PUBLISHED_TEACHER_FORCED = {  # row -> (data, figures); None: not published
    "nojohns MLP v1, ep7": ("2K games", {"position_mae": 0.72, "action_acc_p0": 0.879,
                                         "change_acc_p0": 0.298}),
    "nojohns MLP v2.2, ep4": ("22K games", {"position_mae": 0.79, "action_acc_p0": 0.974,
                                            "change_acc_p0": 0.775}),
    "nojohns Mamba-2 4.3M, ep4": ("22K games", {"position_mae": 0.51, "change_acc_p0": 0.767}),
}  # fmt: skip
PUBLISHED_RC = {  # row -> (data, figures)
    "AWM E025a, Mamba-2 15.8M": ("1.9K FD games", {"RC": 5.146}),
    "later Mamba-2 15.8M": ("7.7K FD games", {"RC@5": 1.289, "RC@10": 2.338, "RC": 4.820}),
}


RC_COLUMNS = (*(f"RC@{k}" for k in RC_SUBS), "RC")


def _frame(rows: dict, columns) -> str:
    """Markdown of {row: {column: cell}} with the columns in a fixed order."""
    return pd.DataFrame(rows).T.reindex(columns=list(columns)).fillna("").to_markdown()


def cell(f: dict | None) -> str:
    """A figure as `value [lo, hi]` (empty where it has none)."""
    if not f or f.get("value") is None:
        return ""
    return f"{f['value']:.4g} [{f['lo']:.4g}, {f['hi']:.4g}]"


def _table_rows(metrics: dict, pick, yardsticks=YARDSTICKS) -> dict:
    """{row: {column: cell}} for each architecture, then the yardsticks (the same for all)."""
    rows = {arch: {k: cell(v) for k, v in pick(m)["model"].items() if isinstance(v, dict)}
            for arch, m in metrics.items()}  # fmt: skip
    first = pick(next(iter(metrics.values())))
    for who in yardsticks:
        if who in first:
            rows[who.replace("_", " ")] = {k: cell(v) for k, v in first[who].items()}
    return rows


def published_tables(metrics: dict[str, dict]) -> str:
    """Markdown: the teacher-forced figures and rollout coherence of each architecture
    (`metrics`: arch -> its metrics.json) beside the yardsticks and the published rows, with
    each table's data size and the verdicts against the better yardstick."""
    first = next(iter(metrics.values()))
    data = first["data"]
    ours = f"{data['train_games']} training games; intervals over {data['val_games']} validation"
    tf = _table_rows(metrics, lambda m: m["published_definitions"]["teacher_forced"])
    for name, (size, figs) in PUBLISHED_TEACHER_FORCED.items():
        tf[f"{name} ({size})"] = {k: f"{v:.4g}" for k, v in figs.items()}
    rc_all = first["published_definitions"]["rollout_coherence"]
    text = [f"## Teacher-forced, published definitions ({ours} games)\n",
            _frame(tf, TEACHER_FORCED), ""]  # fmt: skip
    for subset, title in (("all", "all stages"), ("final_destination", "Final Destination")):
        part = rc_all[subset]
        if not part.get("starts"):
            text += [f"## Rollout coherence, {title}: no start\n"]
            continue
        rows = _table_rows(
            metrics, lambda m, s=subset: m["published_definitions"]["rollout_coherence"][s]
        )
        if subset == "final_destination":
            for name, (size, figs) in PUBLISHED_RC.items():
                rows[f"{name} ({size})"] = {k: f"{v:.4g}" for k, v in figs.items()}
        text += [f"## Rollout coherence, {title} ({part['starts']} starts in {part['games']} "
                 f"games, {rc_all['steps']} steps, seed {rc_all['seed']})\n",
                 _frame(rows, RC_COLUMNS), ""]  # fmt: skip
    verdicts = {
        arch: {k: f"{v['verdict']} vs {v['yardstick'].replace('_', ' ')}"
               for k, v in m["published_definitions"]["teacher_forced"]["model_vs_yardstick"]
               .items()}
        | {k: f"{v['verdict']} vs {v['yardstick'].replace('_', ' ')}"
           for k, v in m["published_definitions"]["rollout_coherence"]["all"]
           ["model_vs_yardstick"].items()}
        for arch, m in metrics.items()
    }  # fmt: skip
    text += ["## Each model against the better yardstick (paired over games)\n",
             _frame(verdicts, (*TEACHER_FORCED, *RC_COLUMNS)), ""]  # fmt: skip
    return "\n".join(text)
