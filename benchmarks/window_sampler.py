"""Benchmark: `WindowSampler.sample` against a plain in-memory numpy baseline, on one core.

Windows of `--window` rows (default 180), batches of `--batch` (default 256), from one shard
split (default `artifacts/shards/marth/train`, written by `dvc repro shards`). Each figure is the
median of `--repeat` rounds; a round times every path in turn for `--batches` batches:

- ours:      `WindowSampler(split, window, seed).sample(batch)` on the memory-mapped `.npy` files
             (page cache warm: every file is read once first); one gather of whole windows per array
- baseline:  the four arrays loaded fully into memory (`np.load`, no mmap), each window cut with
             a Python loop of slices, `np.stack([a[s:s + window] for s in starts])` per array,
             on the same random starts as ours (the same seeded draws from the same valid starts)
- ours, in memory (for information): `WindowSampler(..., mmap=False)`

The machine is pinned to one core before numpy is imported (`OMP_NUM_THREADS=1` and friends,
`os.sched_setaffinity`), so the figures are per core. Target: ours >= 10,000 windows/s.
Absolute figures move between runs on a shared machine; compare the ratios.

Run from the repository root:

    .venv/bin/python benchmarks/window_sampler.py [--repeat 5] [--shards DIR] [--json PATH]
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402  (the thread settings above must come before numpy)
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mmlib.features.sampler import ARRAYS, WindowSampler  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARDS = Path("artifacts/shards/marth/train")
TARGET = 10_000  # windows/s, one core


def pin_one_core() -> str:
    """Run on one core (the lowest this process may use); a note of what was done."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def draws(valid_starts: np.ndarray, seed: int, batch: int, n: int) -> list[np.ndarray]:
    """The starts of `n` batches, drawn as WindowSampler draws them from the same seed."""
    rng = np.random.default_rng(seed)
    return [rng.choice(valid_starts, batch) for _ in range(n)]


def baseline_batch(arrays: dict[str, np.ndarray], starts: np.ndarray, window: int) -> dict:
    return {k: np.stack([a[s : s + window] for s in starts]) for k, a in arrays.items()}


def check_same(ours: dict, theirs: dict, name: str) -> None:
    """Every path gives the same windows from the same starts (else its timing means nothing)."""
    for k in ARRAYS:
        if not np.array_equal(ours[k], theirs[k]):
            raise SystemExit(f"window_sampler: {name} gives other windows than ours for {k}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shards", type=Path, default=DEFAULT_SHARDS, help="a shard split folder")
    ap.add_argument("--window", type=int, default=180, help="rows per window")
    ap.add_argument("--batch", type=int, default=256, help="windows per batch")
    ap.add_argument("--batches", type=int, default=40, help="batches per path per round")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds per path (median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.batches < 1:
        ap.error("--repeat and --batches must be at least 1")
    split = args.shards if args.shards.is_absolute() else ROOT / args.shards
    missing = [f"{n}.npy" for n in (*ARRAYS, "offsets") if not (split / f"{n}.npy").is_file()]
    if missing:
        print(
            f"window_sampler: no shard split at {split} (missing {', '.join(missing)}); "
            "run `dvc repro shards` first",
            file=sys.stderr,
        )
        raise SystemExit(2)
    pinned = pin_one_core()

    for name in (*ARRAYS, "offsets"):  # warm the page cache
        (split / f"{name}.npy").read_bytes()
    W, B, n = args.window, args.batch, args.batches
    ours = WindowSampler(split, W, args.seed)
    in_memory = WindowSampler(split, W, args.seed, mmap=False)
    loaded = {name: np.load(split / f"{name}.npy") for name in ARRAYS}
    rows = len(loaded["ints"])
    games = len(np.load(split / "offsets.npy")) - 1
    row_bytes = sum(a.itemsize * int(np.prod(a.shape[1:])) for a in loaded.values())
    # Every batch's starts: ours and in_memory draw them from their own seeded generators, the
    # baseline is handed the same draws. The first batch is the check
    # (and the warm-up) below; round r then uses batches 1 + r * n .. (r + 1) * n.
    starts = draws(ours.starts_of(np.arange(len(ours))), args.seed, B, 1 + n * args.repeat)

    check_same(ours.sample(B), baseline_batch(loaded, starts[0], W), "the baseline")
    check_same(in_memory.sample(B), baseline_batch(loaded, starts[0], W), "mmap=False")

    def run_ours(sampler: WindowSampler, batches: list[np.ndarray]) -> None:
        for _ in batches:
            sampler.sample(B)

    def run_baseline(batches: list[np.ndarray]) -> None:
        for s in batches:
            baseline_batch(loaded, s, W)

    paths = {
        "ours (mmap)": lambda b: run_ours(ours, b),
        "baseline (in memory)": run_baseline,
        "ours (mmap=False)": lambda b: run_ours(in_memory, b),
    }
    runs: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(args.repeat):
        batches = starts[1 + r * n : 1 + (r + 1) * n]
        for name, fn in paths.items():
            start = time.perf_counter()
            fn(batches)
            runs[name].append(n * B / (time.perf_counter() - start))

    results = {name: {"windows_per_s": statistics.median(v), "runs": v} for name, v in runs.items()}
    wps = {name: r["windows_per_s"] for name, r in results.items()}
    ratios = {
        "ours / baseline": wps["ours (mmap)"] / wps["baseline (in memory)"],
        "ours (mmap=False) / baseline": wps["ours (mmap=False)"] / wps["baseline (in memory)"],
    }
    met = wps["ours (mmap)"] >= TARGET
    machine = {
        "cpu_count": os.cpu_count(),
        "cpu": pinned,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }

    print(" ".join(f"{k}={v}" for k, v in machine.items()))
    print(f"split: {split} ({rows:,} rows, {games} games, {row_bytes} bytes a row)")
    print(
        f"window {W}, batch {B} ({B * W * row_bytes / 2**20:.1f} MiB a batch), {n} batches a "
        f"round, median of {args.repeat} rounds\n"
    )
    print(f"{'path':<22} {'windows/s':>11} {'MiB/s':>8}   runs (windows/s)")
    for name, r in results.items():
        spread = " ".join(f"{x:,.0f}" for x in r["runs"])
        mib = r["windows_per_s"] * W * row_bytes / 2**20
        print(f"{name:<22} {r['windows_per_s']:>11,.0f} {mib:>8,.0f}   {spread}")
    print()
    for name, x in ratios.items():
        print(f"{name:<30} {x:6.2f}x")
    verdict = "met" if met else "NOT met"
    print(f"\ntarget >= {TARGET:,} windows/s (ours, one core): {verdict}")

    if args.json:
        doc = {
            "machine": machine,
            "split": str(split),
            "rows": rows,
            "games": games,
            "row_bytes": row_bytes,
            "window": W,
            "batch": B,
            "batches": n,
            "repeat": args.repeat,
            "results": results,
            "ratios": ratios,
            "target_windows_per_s": TARGET,
            "target_met": met,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
