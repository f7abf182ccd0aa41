"""Training throughput of a world model through the engine's step (the task's loss, backward,
clip, AdamW): clips per second and peak memory, with the Mamba-2's SSD scan in mmlib's chunked
torch form (the baseline) and in mamba_ssm's fused Triton kernel, in one run, with the ratio.

    python benchmarks/wm_train_throughput.py --preset mamba2-medium --batch 64 --steps 100  # GPU
    python benchmarks/wm_train_throughput.py --preset mamba2-small --batch 8 --steps 5        # CPU

Random frames of the real encoding's shapes (ids 0, which every vocabulary has); the data path
is timed by benchmarks/scale.py. bf16 autocast on CUDA as the engine runs it (precision auto);
the fused run needs mamba_ssm (`pip install ".[cuda]"`) and is skipped without it.
"""

from __future__ import annotations

import argparse

import torch
from step_timer import time_steps  # benchmarks/, beside this script

from mmlib import engine
from mmlib.worldmodel import mamba2, models, train
from mmlib.worldmodel.config import TrainConfig, preset
from mmlib.worldmodel.losses import losses


def run(scan: str, args, device: torch.device) -> float:
    torch.manual_seed(0)
    model_cfg = preset(args.preset)
    cfg = TrainConfig(batch=args.batch, clip=args.clip)
    model = models.build(model_cfg).to(device)
    model.scan = scan
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    enc = model_cfg.encoding
    width = train.clip_width(model_cfg, cfg)
    shape = (args.batch, width + enc.lead, 2)
    clip = (torch.randn(*shape, len(enc.floats), device=device),
            torch.zeros(*shape, len(enc.ints), dtype=torch.int64, device=device),
            torch.zeros(args.batch, dtype=torch.int64, device=device))  # fmt: skip
    amp = engine.autocast_dtype(engine.Schedule(1, 1, 1, 1), device)

    def step():
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out, tgt = train.step_outputs(model, clip, width, model_cfg)
            parts = losses(out, tgt, scales=model.heads.scales())
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

    seconds, peak = time_steps(step, args.steps, args.warmup, device)
    rate = args.steps * args.batch / seconds
    print(f"{scan:>8}: {rate:9.1f} clips/s ({rate * width:,.0f} frames/s)  "
          f"{args.steps / seconds:6.2f} step/s  peak {peak:.2f} GiB")  # fmt: skip
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="mamba2-medium")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--clip", type=int, default=60)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()
    device = engine.device_for()
    n = models.n_params(models.build(preset(args.preset)))
    print(f"{args.preset} ({n:,} parameters), batch {args.batch} x {args.clip} frames, {device}")
    base = run("chunked", args, device)
    if device.type == "cuda" and mamba2.mamba_chunk_scan_combined is not None:
        fused = run("fused", args, device)
        print(f"fused / chunked: {fused / base:.2f}x")
    else:
        print("fused: skipped (needs CUDA and mamba_ssm)")


if __name__ == "__main__":
    main()
