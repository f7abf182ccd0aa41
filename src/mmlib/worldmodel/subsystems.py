"""Melee's next-frame dynamics as five subsystems (SPEC 6.8.1; issue 7), each defined as code:
the per-player fields it owns, the frames it is scored on, and one headline metric.

- movement: x, y, speed_air_x, speed_y and speed_ground_x deltas; facing, on_ground, jumps
  (+ ground). Headline: position MAE.
- hit_detection: hitlag (+ last_attack). Headline: hit-onset F1.
- damage_knockback: percent, speed_attack_x and speed_attack_y deltas; stocks (+ combo).
  Headline: damage MAE on frames where percent rises.
- action_transitions: action, invulnerable (+ l_cancel, hurtbox). Headline: change accuracy.
- shield_grab: shield delta; guard, the shield/grab state. Headline: guard balanced accuracy.

(v2 fields; v2.1 adds those in brackets.) The five partition the predicted fields, so five
models that each predict their own fields make one whole frame (`rollout.merge`). `guard` is
derived from the action (`encoding.GUARD`: none, shield, shield break, grabbing, grabbed or
thrown); a monolith's guard is its predicted action's.

Definitions of the events the metrics use (per player and frame, from the replay):
- hit onset: hitlag starts (0 on the frame before, > 0 now). Attacker and victim both enter
  hitlag, as does a shield that is hit; the victim's percent rises on the same frame;
- damage frame: percent rises; knockback frame: a knockback velocity changes;
- action change: the action differs from the frame before's (the last context frame's);
- guard frame: the guard state is not `none` (shielding, broken, grabbing, grabbed).

v2 holds no hitstun, combo or last_attack_landed column (hitstun is in no published encoding):
the damage subsystem's combo and the hit subsystem's last_attack join under v2.1 only.

Whether a standalone model decomposes its subsystem (beats the yardsticks, with intervals over
resampled games) is `decomposition`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mmlib.worldmodel import yardsticks
from mmlib.worldmodel.encoding import GUARD, GUARD_STATES, SCALE, EncodingConfig
from mmlib.worldmodel.evaluate import replay_and_copy, sig
from mmlib.worldmodel.losses import per_player

YARDSTICKS = ("copy_last_frame", "dead_reckoning")
ONSET_HITLAG = 0.5  # hitlag counts whole frames: a prediction that rounds to >= 1 is in hitlag


@dataclass(frozen=True)
class Subsystem:
    name: str
    fields: tuple[str, ...]  # per-player fields it owns (those the encoding has)
    headline: str  # key of its headline teacher-forced metric
    higher_is_better: bool
    why: str  # why this headline
    rollout: str  # key of its per-step rollout metric (`rollout_errors`)
    rollout_label: str

    def owns(self, enc: EncodingConfig) -> tuple[str, ...]:
        return tuple(f for f in self.fields if f in enc.fields)


SUBSYSTEMS = (
    Subsystem(
        "movement",
        (
            "x",
            "y",
            "speed_air_x",
            "speed_y",
            "speed_ground_x",
            "facing",
            "on_ground",
            "jumps",
            "ground",
        ),  # fmt: skip
        "position_mae",
        False,
        "where the characters are is what everything else reads; one-frame error in game units",
        "position",
        "position error (game units)",
    ),  # fmt: skip
    Subsystem(
        "hit_detection",
        ("hitlag", "last_attack"),
        "onset_f1",
        True,
        "onsets are ~1% of player-frames: accuracy would reward never predicting a hit, F1 does "
        "not (scored on all frames; recall is the accuracy on hit frames)",
        "hitlag",
        "hitlag-state agreement",
    ),  # fmt: skip
    Subsystem(
        "damage_knockback",
        ("percent", "speed_attack_x", "speed_attack_y", "stocks", "combo"),
        "damage_mae_on_hits",
        False,
        "between hits percent never moves, so 0 is right on ~99% of frames; the size of the "
        "damage on frames where it rises is the part to learn",
        "percent",
        "percent error",
    ),  # fmt: skip
    Subsystem(
        "action_transitions",
        ("action", "invulnerable", "l_cancel", "hurtbox"),
        "change_acc",
        True,
        "the action holds on ~93% of frames, which copy-last-frame gets free; the frames where it "
        "changes are the decisions of the game's state machine",
        "action",
        "action accuracy",
    ),  # fmt: skip
    Subsystem(
        "shield_grab",
        ("shield", "guard"),
        "guard_bacc",
        True,
        "the mean recall over the guard states present: `none` is ~90% of frames and would "
        "swamp plain accuracy; shield strength drains and refills almost deterministically",
        "guard",
        "guard-state agreement",
    ),  # fmt: skip
)
BY_NAME = {s.name: s for s in SUBSYSTEMS}


def check_partition(enc: EncodingConfig) -> None:
    """Every predicted field (and guard) belongs to exactly one subsystem."""
    owned = [f for s in SUBSYSTEMS for f in s.owns(enc)]
    if sorted(owned) != sorted(enc.fields):
        raise AssertionError(f"subsystems own {sorted(owned)}, the encoding predicts {enc.fields}")


# --- decoding heads into per-field values (N, 2), game units -----------------------------


def decode(enc: EncodingConfig, heads: dict, truth: bool = False) -> dict[str, np.ndarray]:
    """Field -> (N, 2) values from heads (N, n) (a model's outputs, or `truth`: the targets):
    deltas or absolutes in game units, binaries as bool, categoricals as class ids. A model's
    outputs may be partial (a subsystem model): only the fields it has are decoded."""
    out = {}
    for head, names in enc.float_groups.items():
        if head not in heads:
            continue
        v = np.asarray(heads[head], dtype=np.float64).reshape(-1, 2, len(names))
        for j, name in enumerate(names):
            if head == "binary":  # targets are 0/1, outputs logits
                out[name] = v[..., j] > (0.5 if truth else 0.0)
            else:
                out[name] = v[..., j] / SCALE[name]
    for name in (*enc.predicted_ints, "guard"):
        if name in heads:
            v = heads[name]
            out[name] = v if truth else per_player(torch.as_tensor(v)).argmax(-1).numpy()
    return out


def expand(enc: EncodingConfig, owns: tuple[str, ...], heads: dict) -> dict:
    """A subsystem model's heads at full width, NaN where it owns nothing (for `decode`)."""
    full, out = enc.head_columns(), {}
    for head, cols in enc.head_columns(owns).items():
        if cols is None:
            out[head] = heads[head]
        else:
            wide = np.full((len(heads[head]), len(full[head])), np.nan, dtype=np.float32)
            wide[:, cols] = heads[head]
            out[head] = wide
    return out


def previous(enc: EncodingConfig, tgt: dict, reckon: bool = False) -> dict[str, np.ndarray]:
    """The frame before each target, decoded like `decode(truth=True)`: absolutes for the
    dynamics, and what copy-last-frame predicts (no delta, the same binaries and classes);
    with `reckon`, dead reckoning's (x and y move by the last velocity, `yardsticks`)."""
    prev = {}
    n = len(tgt["binary"])
    for names in enc.float_groups.values():
        for name in names:
            prev[name] = np.zeros((n, 2))  # a delta of 0: nothing moves
    if reckon:
        step = yardsticks.step(tgt["prev_velocity"], tgt["prev_binary"])  # (n, 2, 2) stored
        prev["x"], prev["y"] = step[..., 0] / SCALE["x"], step[..., 1] / SCALE["y"]
    prev |= decode(enc, {"dynamics": tgt["prev_dynamics"]}, truth=True) if enc.dynamics else {}
    prev |= decode(enc, {"binary": tgt["prev_binary"]}, truth=True)
    for name in enc.predicted_ints:
        prev[name] = tgt[f"prev_{name}"]
    prev["action"] = tgt["prev_action"]
    prev["guard"] = GUARD.numpy()[prev["action"]]
    return prev


# --- events ------------------------------------------------------------------------------


def hit_onset(hitlag: np.ndarray, prev_hitlag: np.ndarray) -> np.ndarray:
    """Hitlag starts: none on the frame before, some now (hitlag in frames)."""
    return (prev_hitlag <= 0) & (hitlag >= ONSET_HITLAG)


def replay_events(enc: EncodingConfig, floats: np.ndarray, ints: np.ndarray, offsets) -> dict:
    """The events of `subsystems` on encoded games (N, 2, ·), per player and frame; a game's
    first frame has no frame before and no events."""
    first = np.zeros(len(floats), bool)
    first[np.asarray(offsets[:-1])] = True

    def col(name):
        return floats[..., enc.fi(name)] / SCALE.get(name, 1.0)

    def before(x):
        return np.where(first.reshape(-1, *[1] * (x.ndim - 1)), x, np.roll(x, 1, axis=0))

    hitlag, percent, action = col("hitlag"), col("percent"), ints[..., enc.ii("action")]
    kb = np.stack([col("speed_attack_x"), col("speed_attack_y")], -1)
    return {
        "hit_onset": hit_onset(hitlag, before(hitlag)) & ~first[:, None],
        "damage": (percent > before(percent) + 1e-3) & ~first[:, None],
        "knockback": (kb != before(kb)).any(-1) & ~first[:, None],
        "action_change": action != before(action),
        "guard": GUARD.numpy()[action] != 0,
    }


# --- teacher-forced metrics --------------------------------------------------------------


def _mean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(x.mean()) if x.size else float("nan")


def _acc(pred, true, where=None) -> float:
    hit = np.asarray(pred == true)
    return _mean(hit if where is None else hit[where])


def _f1(pred: np.ndarray, true: np.ndarray) -> dict:
    tp = float((pred & true).sum())
    precision = tp / max(pred.sum(), 1)
    recall = tp / max(true.sum(), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"onset_f1": f1, "onset_precision": precision, "onset_recall": recall}


def subsystem_metrics(name: str, pred: dict, true: dict, prev: dict) -> dict:
    """One subsystem's teacher-forced figures from decoded predictions, truths and the frame
    before (all field -> (N, 2)). A figure on no frames is NaN -> null in JSON."""
    if name == "movement":
        m = {
            "position_mae": _mean(np.abs(np.stack([pred["x"] - true["x"], pred["y"] - true["y"]]))),
            "velocity_mae": _mean(
                np.abs(
                    np.stack(
                        [pred[v] - true[v] for v in ("speed_air_x", "speed_y", "speed_ground_x")]
                    )
                )
            ),  # fmt: skip
            "facing_acc": _acc(pred["facing"], true["facing"]),
            "on_ground_acc": _acc(pred["on_ground"], true["on_ground"]),
            "jumps_acc": _acc(pred["jumps"], true["jumps"]),
        }
    elif name == "hit_detection":
        onset = hit_onset(true["hitlag"], prev["hitlag"])
        guess = hit_onset(pred["hitlag"], prev["hitlag"])
        m = _f1(guess, onset) | {
            "onset_frames": int(onset.sum()),
            "false_alarm_rate": _mean(guess[~onset]),
            "hitlag_mae": _mean(np.abs(pred["hitlag"] - true["hitlag"])),
        }
    elif name == "damage_knockback":
        hit = true["percent"] > 1e-3
        kb = (true["speed_attack_x"] != 0) | (true["speed_attack_y"] != 0)
        kb_err = np.abs(pred["speed_attack_x"] - true["speed_attack_x"]) + np.abs(
            pred["speed_attack_y"] - true["speed_attack_y"]
        )
        m = {
            "damage_mae_on_hits": _mean(np.abs(pred["percent"] - true["percent"])[hit]),
            "damage_frames": int(hit.sum()),
            "damage_mae": _mean(np.abs(pred["percent"] - true["percent"])),
            "knockback_mae_on_change": _mean(kb_err[kb] / 2),
            "stocks_acc": _acc(np.round(pred["stocks"]), np.round(true["stocks"])),
        }
    elif name == "action_transitions":
        changed = true["action"] != prev["action"]
        m = {
            "change_acc": _acc(pred["action"], true["action"], changed),
            "change_frames": int(changed.sum()),
            "action_acc": _acc(pred["action"], true["action"]),
            "invulnerable_acc": _acc(pred["invulnerable"], true["invulnerable"]),
        }
    elif name == "shield_grab":
        states = sorted(set(np.unique(true["guard"])))
        recall = {GUARD_STATES[s]: _acc(pred["guard"], true["guard"], true["guard"] == s)
                  for s in states}  # fmt: skip
        shielding = (true["guard"] == 1) | (true["shield"] != 0)
        m = {
            "guard_bacc": _mean(list(recall.values())),
            "guard_recall": {k: sig(v) for k, v in recall.items()},
            "guard_frames": {GUARD_STATES[s]: int((true["guard"] == s).sum()) for s in states},
            "guard_change_acc": _acc(pred["guard"], true["guard"], true["guard"] != prev["guard"]),
            "shield_mae_when_used": _mean(np.abs(pred["shield"] - true["shield"])[shielding]),
        }
    else:
        raise KeyError(name)
    return {k: sig(v) if isinstance(v, float) else v for k, v in m.items()}


def decoded(enc: EncodingConfig, pred: dict, owns: tuple[str, ...] = ()) -> dict[str, dict]:
    """Field -> (N, 2) values of `evaluate.teacher_forced` output: the model's ("model"; `owns`:
    the fields it predicts, empty for a monolith, whose guard is its action's), the truth
    ("true"), and the yardsticks' ("copy_last_frame": the frame before; "dead_reckoning" where
    velocities are recorded)."""
    tgt = pred["tgt"]
    guess = decode(enc, expand(enc, owns, pred["out"]) if owns else pred["out"])
    if "guard" not in guess and "action" in guess:
        guess["guard"] = GUARD.numpy()[guess["action"]]
    out = {"model": guess, "true": decode(enc, tgt, truth=True)}
    out["copy_last_frame"] = previous(enc, tgt)
    if "prev_velocity" in tgt:  # only movement differs from copy-last-frame
        out["dead_reckoning"] = previous(enc, tgt, reckon=True)
    return out


def teacher_forced_metrics(enc: EncodingConfig, pred: dict, owns: tuple[str, ...] = ()) -> dict:
    """Per subsystem, the figures of a model (`owns` as in `decoded`) and of the yardsticks, from
    `evaluate.teacher_forced` output. Subsystems the model owns no field of are left out."""
    d = decoded(enc, pred, owns)
    guess, true, prev = d["model"], d["true"], d["copy_last_frame"]
    out = {}
    for sub in SUBSYSTEMS:
        fields = sub.owns(enc)
        if all(f in guess for f in fields) and (not owns or set(fields) <= set(owns)):
            out[sub.name] = subsystem_metrics(sub.name, guess, true, prev)
    for who in YARDSTICKS:
        if who in d:
            out[who] = {s.name: subsystem_metrics(s.name, d[who], true, prev) for s in SUBSYSTEMS}
    return out


# --- rollouts ------------------------------------------------------------------------------


def rollout_errors(frames, starts, pred_f, pred_i, pred_guard) -> dict[str, dict]:
    """Per start and step, each subsystem's rollout metric, for the rollout and for the
    yardsticks: {"model": {metric: (B, H)}, "copy_last_frame": {...}, "dead_reckoning": ...}."""
    enc = frames.cfg
    true_f, true_i, last_f, last_i = replay_and_copy(frames, starts, pred_f.shape[1])
    x, y, pc, hl = (enc.fi(n) for n in ("x", "y", "percent", "hitlag"))
    a = enc.ii("action")
    true_guard = GUARD.numpy()[true_i[..., a]]

    def errors(pf, pi, pg):
        return {
            "position": (
                np.hypot(pf[..., x] - true_f[..., x], pf[..., y] - true_f[..., y]) / SCALE["x"]
            ).mean(-1),  # fmt: skip
            "hitlag": (
                (pf[..., hl] / SCALE["hitlag"] >= ONSET_HITLAG) == (true_f[..., hl] > 0)
            ).mean(-1),
            "percent": (np.abs(pf[..., pc] - true_f[..., pc]) / SCALE["percent"]).mean(-1),
            "action": (pi[..., a] == true_i[..., a]).mean(-1),
            "guard": (pg == true_guard).mean(-1),
        }

    last_guard = GUARD.numpy()[last_i[..., a]]
    out = {
        "model": errors(pred_f.numpy(), pred_i.numpy(), np.asarray(pred_guard)),
        "copy_last_frame": errors(last_f, last_i, last_guard),
    }
    if "speed_y" in enc.floats:
        reckoned = yardsticks.rollout(enc, np.ascontiguousarray(last_f[:, 0]), pred_f.shape[1])
        out["dead_reckoning"] = errors(reckoned, last_i, last_guard)
    return out


def at_horizons(errors: dict, horizons, subsystems=SUBSYSTEMS) -> dict:
    """{subsystem: {horizon: mean metric}} for the named subsystems."""
    return {
        s.name: {str(h): sig(float(errors[s.rollout][:, h - 1].mean())) for h in horizons}
        for s in subsystems
    }


def flops_per_frame(model) -> int:
    """Matmul FLOPs of one rollout step at batch 1 (a deterministic cost; time it with
    `benchmarks/wm_subsystems.py`): the Mamba-2's recurrent step, the MLP's window re-run."""
    from torch.utils.flop_counter import FlopCounterMode

    enc = model.cfg.encoding
    floats = torch.zeros(1, enc.context, 2, len(enc.floats))
    ints = torch.zeros(1, enc.context, 2, len(enc.ints), dtype=torch.int64)
    stage = torch.zeros(1, dtype=torch.int64)
    ctrl = torch.zeros(1, enc.ctrl_dim)
    with torch.inference_mode():
        state = model.seed(floats, ints, stage)
        with FlopCounterMode(display=False) as counter:
            model.predict(model.step(state, floats[:, -1], ints[:, -1]), ctrl)
    return int(counter.get_total_flops())
