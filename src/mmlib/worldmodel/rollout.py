"""Autoregressive rollouts (SPEC 6.3.3): seed with K real frames, then feed the model its own
frames and the replay's real controller inputs.

Each new frame starts from the previous one: the core floats and velocities add their predicted
deltas, hitlag/stocks/combo take their predicted values (stocks whole, never rising, falling by
at most one: `whole_stocks`), binaries are `logit > 0`, categoricals the argmax; character and
stage carry over, state_age counts up while the action holds and restarts at 0 when it changes,
and the controller columns are the replay's. Then the physical
clamps apply (percent, position, shield, stocks, hitlag, combo; no velocity clamp, as published).

The MLP re-runs its K-frame window every frame; the Mamba-2 steps its state cache (O(1) per frame
in the history length). Several subsystem models can run as one simulator (`merge`), and a
subsystem can run alone with the rest of the world read from the replay (`oracle`).
"""

from __future__ import annotations

import torch

from mmlib.errors import UsageError
from mmlib.worldmodel.data import Frames
from mmlib.worldmodel.encoding import (
    BINARY,
    CLAMPS,
    CORE,
    GUARD,
    SCALE,
    VELOCITY,
    EncodingConfig,
)  # fmt: skip
from mmlib.worldmodel.losses import per_player

LAST_DEATH = 0x0A  # libmelee's DEAD_DOWN (0x00) to DEAD_UP_FALL_HIT_CAMERA_ICE (0x0A)


def advance(enc: EncodingConfig, floats, ints, out: dict, ctrl):
    """The next frame (floats (B, 2, F), ints (B, 2, I)) from the previous one, the heads'
    outputs for it (head -> (B, n)) and its real controller (B, 2, 13)."""
    f, i = floats.clone(), ints.clone()
    b = len(f)

    def add(names, delta):
        idx = [enc.fi(n) for n in names]
        f[:, :, idx] += delta.view(b, 2, len(names))

    add(CORE, out["continuous"])
    if "velocity" in out:
        add(VELOCITY, out["velocity"])
    if "dynamics" in out:
        f[:, :, [enc.fi(n) for n in enc.dynamics]] = out["dynamics"].view(b, 2, -1)
    f[:, :, [enc.fi(n) for n in BINARY]] = (out["binary"].view(b, 2, -1) > 0).to(f.dtype)
    f[:, :, enc.ctrl_slice] = ctrl
    for name in enc.predicted_ints:
        if name in out:
            i[..., enc.ii(name)] = per_player(out[name]).argmax(-1)
    held = i[..., enc.ii("action")] == ints[..., enc.ii("action")]
    if "dynamics" in out and "stocks" in enc.dynamics:
        k = enc.fi("stocks")
        dead = [x[..., enc.ii("action")] <= LAST_DEATH for x in (i, ints)]
        f[..., k] = whole_stocks(f[..., k], floats[..., k], dead[0] & ~dead[1])
    if "state_age" in enc.ints:
        k = enc.ii("state_age")
        i[..., k] = torch.where(held, (ints[..., k] + 1).clamp(max=149), 0)
    elif "state_age" in enc.floats:
        k = enc.fi("state_age")
        f[..., k] = torch.where(held, floats[..., k] + SCALE["state_age"], 0.0)
    for name, (lo, hi) in CLAMPS.items():
        if name in enc.floats:
            k = enc.fi(name)
            f[..., k] = f[..., k].clamp(lo * SCALE[name], hi * SCALE[name])
    return f, i


def whole_stocks(predicted, previous, dying):
    """Stock counts are whole and fall by one at a death: the predicted count rounded, between
    the previous count less one and the previous count, where `dying` (the new frame enters one
    of libmelee's DEAD_* actions), else the previous count (stored units). In the 8 smoke
    training games 17 of the 19 stock losses fell on the frame entering a DEAD_* action and 2
    (star KOs) later in it: there a rollout loses the stock a few frames early."""
    unit = SCALE["stocks"]
    before = torch.round(previous / unit)
    after = torch.minimum(torch.maximum(torch.round(predicted / unit), before - 1), before)
    return torch.where(dying, after, before) * unit


def merge(enc: EncodingConfig, parts: list[tuple[tuple[str, ...], dict]]) -> dict:
    """Full-width heads from models that each own some fields: (owns, outputs) pairs, where
    `owns` is empty for a model that owns every field. Columns nobody owns stay 0 (a rollout
    then reads those fields from the replay)."""
    full = enc.head_columns()
    merged = {}
    for owns, out in parts:
        if not owns:
            merged |= out
            continue
        for head, cols in enc.head_columns(owns).items():
            if cols is None:
                merged[head] = out[head]
            else:
                if head not in merged:
                    merged[head] = out[head].new_zeros(len(out[head]), len(full[head]))
                merged[head][:, cols] = out[head]
    b = len(next(iter(merged.values())))
    for head in ("continuous", "binary"):  # the heads `advance` always reads
        if head not in merged:
            merged[head] = torch.zeros(b, len(full[head]))
    return merged


def owned_by(models) -> set[str]:
    """The fields a set of models predicts between them."""
    enc = models[0].cfg.encoding
    return set().union(*(m.cfg.owns or enc.fields[:-1] for m in models))


def from_truth(enc: EncodingConfig, f, i, true_f, true_i, owned: set[str]):
    """Overwrite every field nobody owns with the replay's (state_age follows the action)."""
    f, i = f.clone(), i.clone()
    keep = owned | ({"state_age"} if "action" in owned else set())
    for name in (*enc.continuous, *BINARY):
        if name not in keep:
            f[..., enc.fi(name)] = true_f[..., enc.fi(name)]
    for name in enc.ints:
        if name not in keep:
            i[..., enc.ii(name)] = true_i[..., enc.ii(name)]
    return f, i


@torch.inference_mode()
def rollout(model, frames: Frames, starts, horizon: int, oracle: bool = False, guard=False):
    """Roll out from each start: frames [s, s + K) are the seed, frames s + K ... s + K + horizon
    - 1 are predicted. Returns (pred floats, pred ints) of shape (B, horizon, 2, ·).

    `model` may be a list of subsystem models run together as one simulator: each predicts the
    fields it owns and `merge` assembles the frame. With `oracle`, fields no model owns come from
    the replay (a subsystem alone in a true world); without it they must all be owned. With
    `guard`, also returns the shield/grab state (B, horizon, 2): its owner's prediction, else
    the predicted action's."""
    enc = frames.cfg
    if enc.contract != "input":
        raise UsageError("rollouts need the input-conditioned contract (the replay's controller)")
    models = list(model) if isinstance(model, list | tuple) else [model]
    owned = owned_by(models)
    missing = sorted(set(enc.fields[:-1]) - owned)
    if missing and not oracle:
        raise UsageError(f"no model predicts {missing}; add their subsystems or use oracle=True")
    k = enc.context
    floats, ints, stage = frames.clip(starts, k + horizon - enc.lead)
    ctrl = floats[..., enc.ctrl_slice]  # (B, C, 2, 13): the real inputs
    states = [m.seed(floats[:, :k], ints[:, :k], stage) for m in models]
    f, i = floats[:, k - 1], ints[:, k - 1]
    pred_f, pred_i, pred_g = [], [], []
    for t in range(horizon):
        c = ctrl[:, k + t]
        out = merge(
            enc,
            [(m.cfg.owns, m.predict(s, c.flatten(1))) for m, s in zip(models, states, strict=True)],
        )
        f, i = advance(enc, f, i, out, c)
        if missing:
            f, i = from_truth(enc, f, i, floats[:, k + t], ints[:, k + t], owned)
        pred_f.append(f)
        pred_i.append(i)
        if guard:
            g = per_player(out["guard"]).argmax(-1) if "guard" in out else None
            pred_g.append(g if g is not None else GUARD.to(i.device)[i[..., enc.ii("action")]])
        if t + 1 < horizon:
            states = [m.step(s, f, i) for m, s in zip(models, states, strict=True)]
    result = torch.stack(pred_f, 1), torch.stack(pred_i, 1)
    return (*result, torch.stack(pred_g, 1)) if guard else result
