"""Where the ingest's time goes: each stage of `ingest_one` timed alone, in this process.

Stages, over every `.slp` under `--replays` (best of `--repeat` passes; bare parse in the same
run as the yardstick):

- bare_parse: `peppi_py.read_slippi` (the public API; the benchmark's baseline)
- md5:        hashing the files (runs in the parent, overlapped with the workers' parsing)
- read_raw:   peppi's raw Arrow read (`replay.read_raw`)
- build:      rollback handling, flattening, decoding (`replay.frames_table`)
- summarize:  the games-table row (`summary.summarize`)
- write:      the zstd parquet file (`ingest.write_atomic`)

Run from the repository root: `.venv/bin/python benchmarks/ingest_stages.py`
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import peppi_py

from mmlib.data.ingest import write_atomic
from mmlib.data.replay import frames_table, read_raw
from mmlib.data.sources import md5_of
from mmlib.data.summary import summarize

DEFAULT_REPLAYS = Path(__file__).resolve().parents[2] / "shared" / "replays" / "games"


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--replays", type=Path, default=DEFAULT_REPLAYS, help="folder of .slp files")
    ap.add_argument("--repeat", type=int, default=5, help="passes per stage (best is kept)")
    args = ap.parse_args(argv)
    files = sorted(str(p) for p in args.replays.glob("*.slp"))

    raws = [read_raw(f) for f in files]
    versions = [tuple(r.start["slippi"]["version"]) for r in raws]
    ports = [sorted(int(p["port"][1:]) for p in r.start["players"]) for r in raws]
    built = [frames_table(r.frames, v, p) for r, v, p in zip(raws, versions, ports, strict=True)]
    out = Path(tempfile.mkdtemp(prefix="mmlib-stages-"))

    stages = {
        "bare_parse": lambda: [peppi_py.read_slippi(f) for f in files],
        "md5": lambda: [md5_of(Path(f)) for f in files],
        "read_raw": lambda: [read_raw(f) for f in files],
        "build": lambda: [
            frames_table(r.frames, v, p) for r, v, p in zip(raws, versions, ports, strict=True)
        ],
        "summarize": lambda: [
            summarize(r, t, d, v, 300) for r, (t, d), v in zip(raws, built, versions, strict=True)
        ],
        "write": lambda: [write_atomic(t, out / f"{i}.parquet") for i, (t, _) in enumerate(built)],
    }
    seconds = {name: best_of(args.repeat, fn) for name, fn in stages.items()}
    rows = sum(t.num_rows for t, _ in built)
    print(f"{len(files)} files, {rows:,} stream rows x {built[0][0].num_columns} columns")
    print(f"{'stage':<12} {'ms':>8} {'x bare_parse':>13}")
    for name, s in seconds.items():
        print(f"{name:<12} {1000 * s:>8.1f} {s / seconds['bare_parse']:>13.2f}")
    in_worker = sum(seconds[k] for k in ("read_raw", "build", "summarize", "write"))
    print(f"{'worker sum':<12} {1000 * in_worker:>8.1f} {in_worker / seconds['bare_parse']:>13.2f}")


if __name__ == "__main__":
    main()
