"""World-model rollout throughput on CPU, as multiples of real time (60 frames/s).

In one run, on real validation frames, with the full reconstruction of every frame:
- Mamba-2 `step` (our recurrent state cache) at batch 1 and 64;
- the published way: re-run the whole K-frame window through the sequential scan every frame;
- the frame-stacking MLP (which re-runs its window: it has no state);
- chunked SSD against the sequential scan, a forward pass at K = 60 and batch 64.
Targets (issue 6): Mamba-2 rollouts >= 100x real time per core at batch 64; chunked >= 3x
sequential. Weights are untrained: the cost does not depend on them.

    python benchmarks/wm_rollout.py [--threads 1] [--steps 100] [--preset mamba2-small]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from wm_scan import median_ms  # this folder's sibling script (on sys.path when run)

from mmlib.worldmodel import data, encoding, models, rollout
from mmlib.worldmodel.config import preset
from mmlib.worldmodel.encoding import EncodingConfig

REAL_TIME = 60.0  # frames per second of Melee


@torch.inference_mode()
def window_rollout(model, frames, starts, horizon):
    """The published rollout: every frame, the whole K-frame window from a zero state through
    the sequential scan (SPEC 6.3.3), then the same reconstruction as ours."""
    enc = frames.cfg
    k = enc.context
    floats, ints, stage = frames.clip(starts, k + horizon - enc.lead)
    wf, wi = floats[:, :k], ints[:, :k]
    for t in range(horizon):
        c = floats[:, k + t, :, enc.ctrl_slice]
        ctrl = c.flatten(1)[:, None].expand(-1, k, -1)
        out = {n: v[:, -1] for n, v in model(wf, wi, stage, ctrl, scan="sequential").items()}
        f, i = rollout.advance(enc, wf[:, -1], wi[:, -1], out, c)
        wf = torch.cat([wf[:, 1:], f[:, None]], 1)
        wi = torch.cat([wi[:, 1:], i[:, None]], 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ingest", type=Path, default=Path("artifacts/ingest"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100, help="rollout frames per timing")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preset", default="mamba2-small")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    enc = EncodingConfig()
    _, frames = data.split(args.ingest, enc, 0.25, 4)
    mamba = models.build(preset(args.preset, encoding=enc.to_dict())).eval()
    mlp = models.build(preset("mlp", encoding=enc.to_dict())).eval()
    print(f"torch {torch.__version__}, {args.threads} thread(s); {args.preset} "
          f"({models.n_params(mamba):,} params), mlp ({models.n_params(mlp):,}); "
          f"K = {enc.context}, {args.steps}-frame rollouts, median of {args.repeats}")  # fmt: skip
    rng = np.random.default_rng(0)
    width = enc.context + args.steps
    pool = frames.n_starts(width)

    print(f"\n{'path':<44}{'batch':>6}{'frames/s':>11}{'x real time':>13}")
    rates = {}
    for batch in (1, 64):
        starts = frames.start_rows(width, rng.choice(pool, batch, replace=False))
        runs = {
            "mamba2 step (state cache)": (rollout.rollout, mamba),
            "mamba2 window re-run, sequential (published)": (window_rollout, mamba),
            "mlp window": (rollout.rollout, mlp),
        }
        for name, (run, model) in runs.items():
            seconds = median_ms(lambda: run(model, frames, starts, args.steps), args.repeats) / 1e3  # noqa: B023
            rate = batch * args.steps / seconds
            rates[name, batch] = rate
            print(f"{name:<44}{batch:>6}{rate:>11,.0f}{rate / REAL_TIME:>12,.0f}x")
    step64 = rates["mamba2 step (state cache)", 64]
    base64 = rates["mamba2 window re-run, sequential (published)", 64]
    print(f"\nmamba2 step at batch 64: {step64 / REAL_TIME:,.0f}x real time on "
          f"{args.threads} thread(s) (target >= 100x per core); "
          f"{step64 / base64:.1f}x the published window re-run")  # fmt: skip

    b, L = 64, 60
    f, i, s = frames.clip(frames.start_rows(L, rng.choice(frames.n_starts(L), b, replace=False)), L)
    ctrl = encoding.next_ctrl(enc, f)
    chunked = preset(args.preset, encoding=enc.to_dict(), chunk=30)
    model = models.build(chunked).eval()
    with torch.inference_mode():
        scans = {
            scan: median_ms(lambda scan=scan: model(f[:, :L], i[:, :L], s, ctrl, scan=scan), 3)
            / 1e3
            for scan in ("chunked", "sequential")
        }
    ratio = scans["sequential"] / scans["chunked"]
    print(f"forward at K = {L}, batch {b}: chunked SSD (chunk 30) {scans['chunked'] * 1e3:.1f} ms, "
          f"sequential {scans['sequential'] * 1e3:.1f} ms: chunked is {ratio:.1f}x faster "
          f"(target >= 3x)")  # fmt: skip


if __name__ == "__main__":
    main()
