"""Benchmark: `mmlib ingest` against its baselines, timed in the same run.

Measured over every `.slp` under `--replays` (one untimed warm-up pass first, then `--repeat`
rounds that run the paths in turn; each figure is the median round):

- bare_parse:    `peppi_py.read_slippi(path)` per file (public API, parse only)
- parse_numpy:   the same, plus `to_numpy(zero_copy_only=False)` of every leaf column reachable
                 from the dataclasses (frames.id and every pre/post field of every port's leader
                 and follower, nested dataclasses and tuples included); SPEC 1.5 "Throughput"
- ingest:        `mmlib.data.ingest.ingest(files, <fresh empty temp folder>, workers=1)`, the whole
                 call (md5 hashing, worker start-up, parsing, decoding, zstd parquet writes)
- libmelee:      `melee.Console(is_dolphin=False, path=..., allow_old_version=True)`, `connect()`,
                 `step()` until None, on two files only (default: the two largest Slippi >= 3.0
                 files that libmelee reads); `ingest` is timed on the same two files as well

Frames are unique frame ids per file (rollback re-sends counted once), the same count for every
path. Absolute figures move between runs on a shared machine; compare the ratios.

Run from the repository root:

    .venv/bin/python benchmarks/ingest.py [--repeat 3] [--replays DIR] [--json PATH]

Data version 2 (the 739 games of data/archives/*.7z): the baselines need plain .slp files, so
extract the archives once into a folder outside the repository and point `--replays` at it
(`mmlib ingest` itself reads the archives directly; the benchmark times it on the .slp files):

    for a in data/archives/*.7z; do 7z x -o/tmp/v2slp/$(basename $a .7z) $a; done  # or py7zr
    .venv/bin/python benchmarks/ingest.py --replays /tmp/v2slp --repeat 1 \
        --melee-files ../shared/replays/games/peppi-ics2.slp \
                      ../shared/replays/games/slippijs-rollbackFrameTest.slp

(naming two small `--melee-files` spares minutes of libmelee on the largest v2 games.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import peppi_py
import pyarrow as pa

from mmlib.data.ingest import IngestConfig, IngestReport, ingest

DEFAULT_REPLAYS = Path(__file__).resolve().parents[1] / ".." / "shared" / "replays" / "games"


def leaf_columns(obj) -> list[pa.Array]:
    """Every Arrow array reachable from a peppi dataclass (nested dataclasses and tuples)."""
    if isinstance(obj, pa.Array):
        return [obj]
    if isinstance(obj, tuple):
        return [a for item in obj for a in leaf_columns(item)]
    if dataclasses.is_dataclass(obj):
        return [a for f in dataclasses.fields(obj) for a in leaf_columns(getattr(obj, f.name))]
    return []  # None: a field this Slippi version does not record


def bare_parse(files: list[Path]) -> None:
    for p in files:
        peppi_py.read_slippi(str(p))


def parse_numpy(files: list[Path]) -> None:
    for p in files:
        for column in leaf_columns(peppi_py.read_slippi(str(p)).frames):
            column.to_numpy(zero_copy_only=False)


def run_ingest(files: list[Path]) -> IngestReport:
    with tempfile.TemporaryDirectory(prefix="mmlib-bench-") as tmp:
        return ingest(files, Path(tmp) / "out", IngestConfig(workers=1), progress=False)


def libmelee_frames(path: Path) -> int:
    import melee

    console = melee.Console(is_dolphin=False, path=str(path), allow_old_version=True)
    console.connect()
    n = 0
    while console.step() is not None:
        n += 1
    return n


def libmelee(files: list[Path]) -> None:
    for p in files:
        libmelee_frames(p)


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the ingest's worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn, files: list[Path]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    start, cpu = time.perf_counter(), cpu_seconds()
    fn(files)
    return time.perf_counter() - start, cpu_seconds() - cpu


def survey(files: list[Path]) -> dict[Path, tuple[int, tuple]]:
    """Unique frame ids and Slippi version per file peppi reads (also warms the page cache)."""
    out = {}
    for p in files:
        try:
            game = peppi_py.read_slippi(str(p))
        except OSError as e:
            print(f"note: skipping {p.name}, peppi cannot read it: {e}")
            continue
        out[p] = (len(np.unique(game.frames.id.to_numpy())), tuple(game.start.slippi.version))
    return out


def pick_melee_files(info: dict[Path, tuple[int, tuple]], named: list[Path] | None) -> list[Path]:
    """The named files, or the two largest Slippi >= 3.0 files libmelee reads in full."""
    if named:
        return named
    picked = []
    modern = [p for p, (_, v) in info.items() if v >= (3, 0, 0)]
    for p in sorted(modern, key=lambda p: p.stat().st_size, reverse=True):
        try:
            n = libmelee_frames(p)  # doubles as libmelee's warm-up
        except Exception as e:  # any failure: libmelee cannot read it
            print(f"note: libmelee cannot read {p.name}: {type(e).__name__}: {e}")
            continue
        if n != info[p][0]:
            print(f"note: libmelee yields {n} frames for {p.name}, peppi {info[p][0]} unique ids")
        picked.append(p)
        if len(picked) == 2:
            break
    return picked


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--replays", type=Path, default=DEFAULT_REPLAYS, help="folder of .slp files")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds per path (median)")
    ap.add_argument(
        "--melee-files",
        type=Path,
        nargs=2,
        metavar="SLP",
        help="the two files for libmelee (default: the two largest modern ones)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    files = sorted(
        p.resolve() for p in args.replays.rglob("*") if p.suffix.lower() == ".slp" and p.is_file()
    )
    info = survey(files)
    files = [p for p in files if p in info]
    if not files:
        ap.error(f"no readable .slp files under {args.replays}")
    melee_files = pick_melee_files(info, [p.resolve() for p in args.melee_files or []])
    if len(melee_files) < 2:
        ap.error("fewer than two files libmelee can read; name them with --melee-files")
    if args.melee_files:
        info |= survey(melee_files)
        libmelee(melee_files)  # warm-up
    frames = sum(info[p][0] for p in files)
    melee_frames = sum(info[p][0] for p in melee_files)

    paths = {  # name: (function, files, frames)
        "bare_parse": (bare_parse, files, frames),
        "parse_numpy": (parse_numpy, files, frames),
        "ingest": (run_ingest, files, frames),
        "libmelee (2 files)": (libmelee, melee_files, melee_frames),
        "ingest (2 files)": (run_ingest, melee_files, melee_frames),
    }
    for name, (fn, fs, n) in paths.items():  # warm-up: imports, page cache, first-call costs
        if fn is libmelee:
            continue  # already warmed up while its files were picked
        r = fn(fs)
        if isinstance(r, IngestReport) and r.frames != n:
            print(
                f"note: {name} wrote {r.frames:,} of {n:,} frames ({r.rejected} rejected, "
                f"{r.duplicates} duplicates); its frames/s still use {n:,}"
            )
    runs: dict[str, list[float]] = {name: [] for name in paths}
    cpus: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeat):
        for name, (fn, fs, _) in paths.items():
            wall, cpu = timed(fn, fs)
            runs[name].append(wall)
            cpus[name].append(cpu)

    results = {}
    for name, (_, fs, n) in paths.items():
        s = statistics.median(runs[name])
        results[name] = {
            "seconds": s,
            "cpu_seconds": statistics.median(cpus[name]),
            "runs": runs[name],
            "files": len(fs),
            "frames": n,
            "frames_per_s": n / s,
        }
    sec = {name: r["seconds"] for name, r in results.items()}
    cpu = {name: r["cpu_seconds"] for name, r in results.items()}
    ratios = {
        "ingest / bare_parse": sec["ingest"] / sec["bare_parse"],
        "ingest / bare_parse (CPU time)": cpu["ingest"] / cpu["bare_parse"],
        "ingest / parse_numpy": sec["ingest"] / sec["parse_numpy"],
        "ingest speed-up over libmelee": sec["libmelee (2 files)"] / sec["ingest (2 files)"],
    }
    machine = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "peppi-py": version("peppi-py"),
        "pyarrow": pa.__version__,
        "melee": version("melee"),
        "platform": platform.platform(),
    }

    print(" ".join(f"{k}={v}" for k, v in machine.items()))
    print(f"replays: {len(files)} files, {frames:,} unique frames ({args.replays.resolve()})")
    print(f"libmelee files: {', '.join(p.name for p in melee_files)} ({melee_frames:,} frames)")
    print(f"median of {args.repeat} rounds\n")
    print(f"{'path':<20} {'seconds':>9} {'cpu s':>7} {'frames':>9} {'frames/s':>11}   runs (s)")
    for name, r in results.items():
        spread = " ".join(f"{t:.3f}" for t in r["runs"])
        print(
            f"{name:<20} {r['seconds']:>9.3f} {r['cpu_seconds']:>7.3f} {r['frames']:>9,} "
            f"{r['frames_per_s']:>11,.0f}   {spread}"
        )
    print()
    for name, x in ratios.items():
        target = "  (target <= 2x)" if name == "ingest / bare_parse" else ""
        print(f"{name:<32} {x:6.2f}x{target}")

    if args.json:
        doc = {
            "machine": machine,
            "files": len(files),
            "frames": frames,
            "melee_files": [p.name for p in melee_files],
            "repeat": args.repeat,
            "results": results,
            "ratios": ratios,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
