"""World-model metrics (SPEC 6.5) on the validation games, each beside its honest yardsticks:
copy-last-frame (the action holds, nothing moves) and dead reckoning (the action holds, each
player moves by its last velocity: `yardsticks`), which any model must beat.

Teacher-forced: every frame t >= K of each validation game is predicted from the real frames
before it and the real controller of t. The MLP reads the window [t - K, t); the Mamba-2 reads
the whole game so far through its recurrence (one chunked pass per game), which is how it runs.
Both are scored on the same frames.

- action accuracy: both players pooled (and player 0 alone, the published figure);
- action-change accuracy: over frames whose action differs from the last context frame's;
- position MAE: |predicted - true| one-frame x and y, per axis, game units; damage MAE: percent;
- per-category action accuracy by libmelee action-id groups (SPEC 6.5).

Rollouts: seeded with K real frames, fed the real controllers; at each horizon the Euclidean
position error (game units, mean over players), action accuracy and stock agreement.
"""

from __future__ import annotations

import numpy as np
import torch

from mmlib.worldmodel import encoding, yardsticks
from mmlib.worldmodel.data import Frames
from mmlib.worldmodel.encoding import SCALE
from mmlib.worldmodel.losses import per_player
from mmlib.worldmodel.rollout import rollout

HORIZONS = (10, 50, 100, 200)
_RANGES = {
    "idle": [(14, 14)],
    "movement": [(15, 23), (39, 41), (244, 244)],
    "aerial": [(24, 37), (42, 43)],
    "ground_attack": [(44, 64)],
    "aerial_attack": [(65, 74)],
    "damage": [(38, 38), (75, 91)],
    "shield_dodge": [(178, 182), (233, 236)],
    "grab": [(212, 232), (239, 243)],
    "edge": [(245, 263)],
    "special": [(342, 397)],
}
CATEGORY = np.full(400, "other", dtype=object)
for _name, _spans in _RANGES.items():
    for _a, _b in _spans:
        CATEGORY[_a : _b + 1] = _name


def sig(x: float, digits: int = 4) -> float:
    """Round to significant figures, so the committed metrics do not churn on float noise."""
    return float(f"{x:.{digits}g}")


@torch.inference_mode()
def teacher_forced(model, frames: Frames, batch: int = 512) -> dict[str, np.ndarray]:
    """Predictions and truths for every frame t >= K of every game in `frames`."""
    enc = frames.cfg
    k = enc.context
    outs, tgts, owner = [], [], []
    for g in range(len(frames.md5s)):
        game = frames.game(g)
        if not model.every_position:
            count = game.n_starts(k)
            for a in range(0, count, batch):
                f, i, s = game.clip(game.start_rows(k, np.arange(a, min(a + batch, count))), k)
                out = model(f[:, :k], i[:, :k], s, encoding.next_ctrl(enc, f))
                outs.append(out)
                tgts.append({n: v[:, -1:] for n, v in encoding.targets(enc, f, i).items()})
                owner.append(np.full(len(f), g))
        else:
            f, i, s = game.clip(np.array([0]), game.n_frames - enc.lead)
            out = model(f[:, : -enc.lead], i[:, : -enc.lead], s, encoding.next_ctrl(enc, f))
            keep = slice(k - 1, None)  # position p predicts frame p + 1: frames >= K
            outs.append({n: v[:, keep] for n, v in out.items()})
            tgts.append({n: v[:, keep] for n, v in encoding.targets(enc, f, i).items()})
            owner.append(np.full(tgts[-1]["action"].shape[1], g))
    cat = lambda parts, n: torch.cat([p[n].flatten(0, 1) for p in parts]).numpy()  # noqa: E731
    return {
        "out": {n: cat(outs, n) for n in outs[0]},
        "tgt": {n: cat(tgts, n) for n in tgts[0]},
        "game": np.concatenate(owner),  # each row's game (index into frames.md5s)
    }


def teacher_forced_metrics(pred: dict) -> dict:
    out, tgt = pred["out"], pred["tgt"]
    action = per_player(torch.from_numpy(out["action"])).argmax(-1).numpy()
    true, prev = tgt["action"], tgt["prev_action"]
    changed = true != prev
    hit = action == true
    # continuous layout: (percent, x, y, shield) for p0 then p1
    pos = yardsticks.position_index()
    pos_err = np.abs(out["continuous"][:, pos] - tgt["continuous"][:, pos]) / SCALE["x"]
    dmg_err = np.abs(out["continuous"][:, [0, 4]] - tgt["continuous"][:, [0, 4]]) / SCALE["percent"]
    m = {
        "frames": int(len(true)),
        "action_acc": hit.mean(),
        "action_acc_p0": hit[:, 0].mean(),
        "change_acc": hit[changed].mean(),
        "change_acc_p0": hit[:, 0][changed[:, 0]].mean(),
        "change_share": changed.mean(),
        "position_mae": pos_err.mean(),
        "damage_mae": dmg_err.mean(),
        "binary_acc": ((out["binary"] > 0) == (tgt["binary"] > 0.5)).mean(),
    }
    if "velocity" in out:
        m["velocity_mae"] = (np.abs(out["velocity"] - tgt["velocity"]) / SCALE["speed_y"]).mean()
    m = {k: sig(v) if isinstance(v, float | np.floating) else v for k, v in m.items()}
    cats = CATEGORY[true]
    m["category_acc"] = {
        c: {"frames": int((cats == c).sum()), "acc": sig(hit[cats == c].mean())}
        for c in sorted(set(cats.ravel()))
    }
    m["copy_last_frame"] = {  # the yardstick: the action holds and nothing moves
        "action_acc": sig((prev == true).mean()),
        "change_acc": 0.0,
        "position_mae": sig((np.abs(tgt["continuous"][:, pos]) / SCALE["x"]).mean()),
        "damage_mae": sig((np.abs(tgt["continuous"][:, [0, 4]]) / SCALE["percent"]).mean()),
    }
    if "prev_velocity" in tgt:  # v2 and later record velocities
        reckoned = yardsticks.continuous_delta(tgt["prev_velocity"], tgt["prev_binary"])
        m["dead_reckoning"] = m["copy_last_frame"] | {  # moves by the last velocity
            "position_mae": sig((np.abs(reckoned - tgt["continuous"])[:, pos] / SCALE["x"]).mean())
        }
    return m


def rollout_starts(frames: Frames, horizon: int, n: int, seed: int) -> np.ndarray:
    """n seeded starts (sorted) whose seed and horizon lie inside one validation game."""
    width = frames.cfg.context + horizon - frames.cfg.lead
    total = frames.n_starts(width)
    rng = np.random.default_rng(seed)  # drawn by start number: the rows a list would give
    return np.sort(frames.start_rows(width, rng.choice(total, size=min(n, total), replace=False)))


def replay_and_copy(frames: Frames, starts, horizon: int) -> tuple[np.ndarray, ...]:
    """The replay's frames over a rollout (true floats, true ints: (B, horizon, 2, ·)) and
    copy-last-frame's (the last seed frame held, same shapes); dead reckoning is
    `yardsticks.rollout` from the same last frame with copy-last's ints."""
    enc = frames.cfg
    f, i, _ = frames.clip(starts, enc.context + horizon - enc.lead)
    true_f, true_i = f[:, enc.context :].numpy(), i[:, enc.context :].numpy()
    last_f = np.broadcast_to(f[:, enc.context - 1 : enc.context].numpy(), true_f.shape)
    last_i = np.broadcast_to(i[:, enc.context - 1 : enc.context].numpy(), true_i.shape)
    return true_f, true_i, last_f, last_i


def rollout_errors(frames: Frames, starts, pred_f, pred_i) -> dict[str, np.ndarray]:
    """Per start and step: position error (Euclidean, mean over players), action and stock
    agreement, percent error; for the predicted frames, copy-last-frame and dead reckoning."""
    enc = frames.cfg
    true_f, true_i, last_f, last_i = replay_and_copy(frames, starts, pred_f.shape[1])
    x, y, pc, st = (enc.fi(n) for n in ("x", "y", "percent", "stocks"))
    a = enc.ii("action")

    def errors(pf, pi):
        d = np.hypot(pf[..., x] - true_f[..., x], pf[..., y] - true_f[..., y]) / SCALE["x"]
        e = {
            "position": d.mean(-1),
            "action": (pi[..., a] == true_i[..., a]).mean(-1),
            "percent": (np.abs(pf[..., pc] - true_f[..., pc]) / SCALE["percent"]).mean(-1),
        }
        if "stocks" in enc.floats:
            e["stocks"] = (np.abs(pf[..., st] - true_f[..., st]) / SCALE["stocks"] < 0.5).all(-1)
        return e

    out = {
        "model": errors(pred_f.numpy(), pred_i.numpy()),
        "copy_last_frame": errors(last_f, last_i),
    }
    if "speed_y" in enc.floats:
        reckoned = yardsticks.rollout(enc, np.ascontiguousarray(last_f[:, 0]), pred_f.shape[1])
        out["dead_reckoning"] = errors(reckoned, last_i)
    return out


def rollout_metrics(model, frames: Frames, n: int, seed: int, horizons=HORIZONS):
    """Rollout errors at each horizon (1-based frame after the seed), model and yardstick."""
    starts = rollout_starts(frames, max(horizons), n, seed)
    pred_f, pred_i = rollout(model, frames, starts, max(horizons))
    errs = rollout_errors(frames, starts, pred_f, pred_i)
    table = {
        who: {str(h): {k: sig(float(v[:, h - 1].mean())) for k, v in e.items()} for h in horizons}
        for who, e in errs.items()
    }
    return {"starts": int(len(starts)), **table}, (starts, pred_f, pred_i, errs)
