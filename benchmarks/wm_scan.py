"""CPU time of the world model's Mamba-2 layer (SPEC 6.3.2): the chunked SSD scan against the
sequential loop over frames, and the recurrent step of a rollout, in one run.

    python benchmarks/wm_scan.py                    # 1 thread, batch 64, ~15 s
    python benchmarks/wm_scan.py --threads 4 --repeats 11

A 2-layer d_model 256 stack of `Mamba2Layer` (d_state 64, headdim 64, random weights) runs
forward over K = 60 frames with chunks of 30 and over K = 10 with one chunk of 10, each scan on
the same weights and inputs; times are medians of --repeats after warm-up runs, under
torch.inference_mode. Both scans share the projections, the conv and the norms, so the layer's
ratio is bounded by those; the SSM scan alone (one layer's shapes) is timed too. Last, the step:
the stack seeded with 60 frames in one chunked call, then one frame at a time (the rollout hot
path). Target from the world-model issue: chunked >= 3x faster than sequential at K = 60.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mmlib.worldmodel.mamba2 import Mamba2Cache, Mamba2Layer, scan_chunked, scan_sequential

D_MODEL, N_LAYERS = 256, 2


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of fn in milliseconds, after warm-up calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def stack(chunk: int) -> list[Mamba2Layer]:
    """The benchmark's stack; the same weights whatever the chunk."""
    torch.manual_seed(0)
    return [Mamba2Layer(D_MODEL, chunk_size=chunk).eval() for _ in range(N_LAYERS)]


def run(layers: list[Mamba2Layer], u: torch.Tensor, scan: str) -> torch.Tensor:
    for layer in layers:
        u = layer(u, scan=scan)
    return u


def compare_forward(batch: int, K: int, chunk: int, repeats: int) -> None:
    """Both scans of the stack over K frames: times, ratio, agreement."""
    layers = stack(chunk)
    u = torch.randn(batch, K, D_MODEL, generator=torch.Generator().manual_seed(1))
    ms = {
        scan: median_ms(lambda s=scan: run(layers, u, s), repeats)
        for scan in ("chunked", "sequential")
    }
    diff = (run(layers, u, "chunked") - run(layers, u, "sequential")).abs().max().item()
    print(f"\nK={K}, chunk {chunk}: layer stack forward (batch {batch})")
    for scan, t in ms.items():
        print(f"  {scan:<10} {t:8.1f} ms")
    ratio = ms["sequential"] / ms["chunked"]
    print(f"  chunked is {ratio:.1f}x faster than sequential (target >= 3x)")
    print(f"  max |chunked - sequential| = {diff:.1e}")

    # The SSM scan alone, on one layer's shapes and realistic step sizes.
    g = torch.Generator().manual_seed(2)
    block = layers[0].block
    h, p, n = block.nheads, block.headdim, block.d_state
    x = torch.randn(batch, K, h, p, generator=g)
    B, C = torch.randn(batch, K, n, generator=g), torch.randn(batch, K, n, generator=g)
    dt = F.softplus(torch.randn(batch, K, h, generator=g) + block.dt_bias)
    A = -torch.exp(block.A_log)
    seq = median_ms(lambda: scan_sequential(x, dt, A, B, C), repeats)
    chk = median_ms(lambda: scan_chunked(x, dt, A, B, C, chunk, final_state=False), repeats)
    print(f"  SSM scan alone, one layer: chunked {chk:.1f} ms, sequential {seq:.1f} ms", end="")
    print(f" ({seq / chk:.1f}x)")
    shared = ms["chunked"] - N_LAYERS * chk  # projections, conv, norms: the same in both
    print(f"  rest of the stack (both scans): ~{shared:.0f} ms, so the ratio is at most", end="")
    print(f" ~{ms['sequential'] / shared:.1f}x however fast the scan")


def time_steps(batch: int, K: int, chunk: int, n_steps: int) -> None:
    """One rollout frame through the stack, from caches seeded by a chunked call over K frames."""
    layers = stack(chunk)
    g = torch.Generator().manual_seed(3)
    h = torch.randn(batch, K, D_MODEL, generator=g)
    caches: list[Mamba2Cache] = []
    for layer in layers:
        h, cache = layer(h, scan="chunked", return_cache=True)
        caches.append(cache)
    frames = torch.randn(n_steps + 20, batch, D_MODEL, generator=g)
    times = []
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        for j, layer in enumerate(layers):
            frame, caches[j] = layer.step(frame, caches[j])
        if i >= 20:  # warm-up frames
            times.append(time.perf_counter() - start)
    times_ms = sorted(1e3 * t for t in times)
    p90 = times_ms[int(0.9 * len(times_ms))]
    print(f"\nstep of the stack (batch {batch}, seeded with {K} frames), {n_steps} frames:")
    print(f"  median {statistics.median(times_ms):.2f} ms, p90 {p90:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (median)")
    parser.add_argument("--steps", type=int, default=200, help="timed rollout steps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"Mamba-2 scan benchmark: torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{N_LAYERS} x Mamba2Layer(d_model={D_MODEL}, d_state=64, headdim=64), float32 CPU"
    )
    with torch.inference_mode():
        compare_forward(args.batch, K=60, chunk=30, repeats=args.repeats)
        compare_forward(args.batch, K=10, chunk=10, repeats=args.repeats)
        time_steps(args.batch, K=60, chunk=30, n_steps=args.steps)


if __name__ == "__main__":
    main()
