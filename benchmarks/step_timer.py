"""Timing a training step for the throughput benchmarks: warm-up, then `steps` timed runs
(synchronised on CUDA), and the peak GPU memory of the timed runs."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def time_steps(step: Callable[[], None], steps: int, warmup: int, device: torch.device):
    """(seconds for `steps` calls of `step` after `warmup` untimed ones, peak GiB or NaN)."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return seconds, peak
