"""How far streaming play drifts from the published fixed-window recompute.

Streaming (`models.streaming`) is sliding-window attention: at every layer a frame sees the
`window - 1` frames before it, so once the window slides, a deep layer's cached keys were computed
while older frames were visible. The published bots instead re-run the model on the last `window`
frames from scratch every frame. Both agree exactly while the window is filling; this module
measures the difference after it (per-head argmax agreement and mean KL), on real frames fed the
teacher-forced way (the replay's own controller inputs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmlib.checkpoint.directory import Policy
from mmlib.features.replay_console import ReplayConsole
from mmlib.models.bc import BCTransformer
from mmlib.models.streaming import Stream
from mmlib.play.drive import other_port


def replay_rows(
    policy: Policy, replay: Path | str, port: int, max_frames: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The fed frames of `replay` for `port` (the first `max_frames`, default all) through the
    live feature path: (ints, floats)."""
    feats, rows = None, []
    for state in ReplayConsole(replay):
        if feats is None:
            if len(state.players) < 2:
                continue
            feats = policy.features(port, other_port(state, port))
        if (row := feats.push(state)) is not None:
            rows.append(row)
        if max_frames is not None and len(rows) >= max_frames:
            break
    return np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])


@torch.inference_mode()
def streaming_logits(
    model: BCTransformer, ints: np.ndarray, floats: np.ndarray, chunk: int = 256
) -> dict[str, torch.Tensor]:
    """Logits of every frame as streaming play computes them, {head: (T, classes)}: the cache
    is fed a chunk at a time (exactly the per-frame steps; see tests)."""
    stream, out = Stream(model), []
    for s in range(0, len(ints), chunk):
        i = torch.from_numpy(ints[s : s + chunk].astype(np.int64))[None]
        out.append(stream.extend(i, torch.from_numpy(floats[s : s + chunk])[None]))
    return {h: torch.cat([o[h][0] for o in out]).float() for h in out[0]}


@torch.inference_mode()
def recompute_logits(
    model: BCTransformer, ints: np.ndarray, floats: np.ndarray, frames: np.ndarray, batch: int = 64
) -> dict[str, torch.Tensor]:
    """The published computation at each of `frames` (all >= window - 1): the model run on the
    `window` frames ending there, last position kept. {head: (len(frames), classes)}."""
    W = model.cfg.max_seq_len
    ints_t = torch.from_numpy(ints.astype(np.int64))
    floats_t = torch.from_numpy(floats)
    out = []
    for s in range(0, len(frames), batch):
        idx = torch.as_tensor(frames[s : s + batch])[:, None] + torch.arange(-W + 1, 1)
        logits, _ = model(ints_t[idx], floats_t[idx])
        out.append({h: v[:, -1] for h, v in logits.items()})
    return {h: torch.cat([o[h] for o in out]).float() for h in out[0]}


def compare(fixed: dict, streaming: dict) -> dict[str, dict[str, float]]:
    """Per head: argmax agreement, mean KL(fixed || streaming) in nats, max |logit difference|."""
    out = {}
    for h, a in fixed.items():
        b = streaming[h]
        kl = F.kl_div(F.log_softmax(b, -1), F.log_softmax(a, -1), log_target=True, reduction="none")
        out[h] = {
            "argmax_agreement": float((a.argmax(-1) == b.argmax(-1)).float().mean()),
            "kl_mean": float(kl.sum(-1).mean()),
            "max_abs_logit_diff": float((a - b).abs().max()),
        }
    return out


@torch.inference_mode()
def measure(
    model: BCTransformer, ints: np.ndarray, floats: np.ndarray, every: int = 4
) -> dict[str, dict]:
    """Drift after the window slides (every `every`-th frame from the window on), and the same
    comparison on the filling frames (which must agree to float precision)."""
    W = model.cfg.max_seq_len
    stream = streaming_logits(model, ints, floats)
    sliding = np.arange(W - 1, len(ints), every)
    fixed = recompute_logits(model, ints, floats, sliding)
    filling = np.arange(0, min(W - 1, len(ints)), every)
    filled = {}
    for t in filling:  # a shorter context: the model on frames 0..t
        logits, _ = model(torch.from_numpy(ints[None, : t + 1].astype(np.int64)),
                          torch.from_numpy(floats[None, : t + 1]))  # fmt: skip
        filled[t] = logits
    first = {h: torch.stack([filled[t][h][0, -1] for t in filling]).float() for h in stream}
    return {
        "frames_compared": len(sliding),
        "sliding": compare(fixed, {h: v[sliding] for h, v in stream.items()}),
        "filling": compare(first, {h: v[filling] for h, v in stream.items()}),
    }
