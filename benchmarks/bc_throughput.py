"""Training throughput of the BC transformer: windows per second and peak memory, for eager
float32 (the baseline), eager bf16 autocast and compiled bf16, in one run, with the ratios.

    python benchmarks/bc_throughput.py --preset mimic --batch 256 --steps 200   # a GPU
    python benchmarks/bc_throughput.py --preset small --batch 32 --steps 20      # CPU check

Random inputs of the real shapes (the data path is timed by benchmarks/window_sampler.py).
The published figure is about 2,800 windows/s per RTX 5090 (SPEC 4.6: 5.7k windows/s on two).
"""

from __future__ import annotations

import argparse

import torch
from step_timer import time_steps  # benchmarks/, beside this script

from mmlib.features import controller
from mmlib.models.bc import BCTransformer, losses
from mmlib.models.config import preset
from mmlib.train import optim
from mmlib.train.config import TrainConfig


def run(name: str, args, amp: bool, compile_: bool, device: torch.device) -> float:
    torch.manual_seed(0)
    cfg = preset(args.preset)
    model = BCTransformer(cfg).to(device)
    opt = optim.optimizer(model, TrainConfig())
    net = torch.compile(model) if compile_ else model
    B, T = args.batch, cfg.max_seq_len
    ints = torch.stack(
        [torch.randint(1, 7, (B, T))]
        + [torch.randint(0, cfg.n_characters, (B, T)) for _ in range(2)]
        + [torch.randint(0, cfg.n_actions, (B, T)) for _ in range(2)],
        dim=-1,
    ).to(device)
    floats = torch.randn(B, T, cfg.n_floats, device=device)
    sizes = (controller.N_SHOULDER, controller.N_C, controller.N_MAIN, controller.N_BUTTON)
    targets = torch.stack([torch.randint(0, n, (B, T)) for n in sizes], dim=-1).to(device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits, _ = net(ints, floats)
        losses(logits, targets)["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    seconds, peak = time_steps(step, args.steps, args.warmup, device)
    rate = args.steps * B / seconds
    print(
        f"{name:>16}: {rate:9.1f} windows/s  {args.steps / seconds:6.2f} step/s  "
        f"peak {peak:.1f} GiB"
    )
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="mimic")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--no-compile", action="store_true", help="skip the compiled run")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    print(f"{args.preset} preset, batch {args.batch}, {device} ({torch.__version__})")
    base = run("eager fp32", args, amp=False, compile_=False, device=device)
    bf16 = run("eager bf16", args, amp=True, compile_=False, device=device)
    print(f"bf16 / fp32: {bf16 / base:.2f}x")
    if not args.no_compile:
        comp = run("compiled bf16", args, amp=True, compile_=True, device=device)
        print(f"compiled bf16 / fp32: {comp / base:.2f}x; / eager bf16: {comp / bf16:.2f}x")


if __name__ == "__main__":
    main()
