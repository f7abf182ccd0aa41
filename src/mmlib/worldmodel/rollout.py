"""Autoregressive rollouts (SPEC 6.3.3): seed with K real frames, then feed the model its own
frames and the replay's real controller inputs.

Each new frame starts from the previous one: the core floats and velocities add their predicted
deltas, hitlag/stocks/combo take their predicted values, binaries are `logit > 0`, categoricals
the argmax; character and stage carry over, state_age counts up while the action holds and
restarts at 0 when it changes, and the controller columns are the replay's. Then the physical
clamps apply (percent, position, shield, stocks, hitlag, combo; no velocity clamp, as published).

The MLP re-runs its K-frame window every frame; the Mamba-2 steps its state cache (O(1) per frame
in the history length).
"""

from __future__ import annotations

import torch

from mmlib.errors import UsageError
from mmlib.worldmodel.data import Frames
from mmlib.worldmodel.encoding import BINARY, CLAMPS, CORE, SCALE, VELOCITY, EncodingConfig
from mmlib.worldmodel.losses import per_player
from mmlib.worldmodel.models import FrameStackMLP


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


@torch.inference_mode()
def rollout(model, frames: Frames, starts, horizon: int):
    """Roll out from each start: frames [s, s + K) are the seed, frames s + K ... s + K + horizon
    - 1 are predicted. Returns (pred floats, pred ints) of shape (B, horizon, 2, ·)."""
    enc = frames.cfg
    if enc.contract != "input":
        raise UsageError("rollouts need the input-conditioned contract (the replay's controller)")
    k = enc.context
    floats, ints, stage = frames.clip(starts, k + horizon - enc.lead)
    ctrl = floats[..., enc.ctrl_slice]  # (B, C, 2, 13): the real inputs
    window_f, window_i = floats[:, :k], ints[:, :k]
    f, i = window_f[:, -1], window_i[:, -1]
    mlp = isinstance(model, FrameStackMLP)
    if not mlp:
        h, caches = model.seed(window_f, window_i, stage)
    pred_f, pred_i = [], []
    for t in range(horizon):
        c = ctrl[:, k + t]
        if mlp:
            out = {
                n: v[:, 0]
                for n, v in model(window_f, window_i, stage, c.flatten(1)[:, None]).items()
            }
        else:
            out = model.predict(h, c.flatten(1))
        f, i = advance(enc, f, i, out, c)
        pred_f.append(f)
        pred_i.append(i)
        if mlp:
            window_f = torch.cat([window_f[:, 1:], f[:, None]], dim=1)
            window_i = torch.cat([window_i[:, 1:], i[:, None]], dim=1)
        elif t + 1 < horizon:
            h, caches = model.step(f, i, stage, caches)
    return torch.stack(pred_f, 1), torch.stack(pred_i, 1)
