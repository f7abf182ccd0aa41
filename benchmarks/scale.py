"""Scale harness: the data stages and a few training steps on an N-game corpus, with peak memory.

Builds an N-game ingest corpus from the real ingested games (`artifacts/ingest`, the 42 shared
games): game i is a copy of real game i mod 42 under a new md5, its frame file a symbolic link
to the real one, so the corpus costs no disk and every split, sample and offset is computed as
for N distinct games. Then runs each stage as the pipeline runs it, one process tree at a time:

- norm:       `mmlib notebook notebooks/02_norm_transforms.py` (the norm stage, pictures included)
- shards:     `mmlib shards`
- wm_frames:  `mmlib wm-frames` (the world model's memory-mapped frame store)
- bc:         `mmlib train -c fox` for a few steps (smoke preset)
- world_model: a few training steps of the smoke MLP on the frame store

and prints per stage: wall time, the frames it processed, frames/s, and peak resident memory of
the whole process tree (parent and pool workers, sampled every 20 ms), of its largest process, and
of the tree less file-backed pages. Resident memory counts the pages of memory-mapped files a
process has touched (the kernel can drop those at will); the last figure leaves them out.

Run from the repository root, after `dvc repro ingest` (or `dvc pull`):

    .venv/bin/python benchmarks/scale.py --games 200 [--workers 2] [--json PATH] [--keep]

The corpus and outputs go to `--work` (default: a temporary folder, removed unless --keep).
Timings move between runs on a shared machine; memory is the figure to compare across N.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from mmlib.config import PROFILES

ROOT = Path(__file__).resolve().parents[1]
MMLIB = [sys.executable, "-m", "mmlib"]
BC_STEPS, WM_STEPS = 8, 8
OUTPUTS = {  # what each stage writes under the working folder
    "norm": ["norm", "reports/norm"],
    "shards": ["shards"],
    "wm_frames": ["wm_frames"],
    "bc": ["bc", "runs", "reports/bc"],
    "world_model": [],
}


def build_corpus(real: Path, out: Path, n: int) -> pa.Table:
    """`out/games.parquet` with n games (copies of the real ones under new md5s) and
    `out/games/<md5>.parquet` linked to the real frame files."""
    games = pq.read_table(real / "games.parquet")
    (out / "games").mkdir(parents=True)
    rows = [i % games.num_rows for i in range(n)]
    table = games.take(rows)
    md5s, sources = [], []
    for i, (md5, source) in enumerate(
        zip(table["md5"].to_pylist(), table["source"].to_pylist(), strict=True)
    ):
        new = hashlib.md5(f"{md5}:{i}".encode()).hexdigest()
        os.symlink((real / "games" / f"{md5}.parquet").resolve(), out / "games" / f"{new}.parquet")
        md5s.append(new)
        sources.append(f"{source}#{i}")
    table = table.set_column(table.schema.get_field_index("md5"), "md5", pa.array(md5s))
    table = table.set_column(table.schema.get_field_index("source"), "source", pa.array(sources))
    pq.write_table(table, out / "games.parquet")
    shutil.copyfile(real / "rejects.parquet", out / "rejects.parquet")
    return table


def harness_params(work: Path, workers: int) -> Path:
    """params.yaml with the smoke profile and `workers` for every pooled stage."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["profile"] = "smoke"
    for section in ("features", "world_model"):
        params[section].setdefault("smoke", {})["workers"] = workers
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_measured(cmd: list[str], log: Path) -> dict:
    """Run `cmd` from the repository root; its wall time and peak resident memory."""
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = psutil.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        tree_peak = largest = anon = 0
        while proc.poll() is None:
            try:
                info = [p.memory_info() for p in [proc, *proc.children(recursive=True)]]
            except psutil.Error:  # a worker ended between the listing and the read
                continue
            rss = [m.rss for m in info]
            tree_peak, largest = max(tree_peak, sum(rss)), max(largest, *rss)
            anon = max(anon, sum(m.rss - m.shared for m in info))  # less file-backed pages
            time.sleep(0.02)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        raise SystemExit(
            f"scale: {' '.join(cmd[2:5])} failed ({proc.returncode}):\n" + "\n".join(tail)
        )
    return {
        "wall_s": wall,
        "peak_rss_tree_mb": tree_peak / 2**20,
        "peak_rss_max_mb": largest / 2**20,
        "peak_anon_tree_mb": anon / 2**20,
    }


def stages(work: Path, params: Path) -> dict[str, list[str]]:
    w = str(work)
    return {
        "norm": [
            *MMLIB, "notebook", "notebooks/02_norm_transforms.py", f"{w}/reports/norm/02.ipynb",
            "-k", "mmlib", "--cwd", ".", "-p", "ingest_dir", f"{w}/ingest",
            "-p", "out_dir", f"{w}/norm", "-p", "report_dir", f"{w}/reports/norm",
            "-p", "params_file", str(params), "-p", "audit_json", f"{w}/audit.json",
        ],
        "shards": [
            *MMLIB, "shards", "--ingest", f"{w}/ingest", "--norm", f"{w}/norm",
            "--output", f"{w}/shards", "--metrics", f"{w}/reports/shards.json",
            "--audit", f"{w}/audit.json",
            "--params", str(params),
        ],
        "wm_frames": [
            *MMLIB, "wm-frames", "--ingest", f"{w}/ingest", "--output", f"{w}/wm_frames",
            "--params", str(params), "--quiet",
        ],
        "bc": [
            *MMLIB, "train", "-c", "fox", "--params", str(params), "--shards", f"{w}/shards",
            "--policies", f"{w}/bc", "--reports", f"{w}/reports/bc", "--runs", f"{w}/runs",
            "--set", "steps", str(BC_STEPS), "--set", "eval_every", str(BC_STEPS),
            "--set", "ckpt_every", str(BC_STEPS), "--set", "log_every", str(BC_STEPS), "--quiet",
        ],
        "world_model": [
            sys.executable, str(Path(__file__).with_name("scale_wm_steps.py")),
            "--frames", f"{w}/wm_frames", "--params", str(params), "--steps", str(WM_STEPS),
        ],
    }  # fmt: skip


def frames_done(work: Path, stage: str) -> int:
    """The frames (rows) a stage processed, read from its outputs."""
    if stage == "norm":
        metrics = json.loads((work / "reports/norm/metrics.json").read_text())
        return sum(m["train_frames"] for m in metrics.values())
    if stage == "shards":
        metrics = json.loads((work / "reports/shards.json").read_text())["characters"]
        return sum(m["train_rows"] + m["val_rows"] for m in metrics.values())
    if stage == "wm_frames":
        manifest = json.loads((work / "wm_frames" / "manifest.json").read_text())
        return manifest["train"]["frames"] + manifest["val"]["frames"]
    if stage == "bc":
        bc = stage_section(work, "bc")
        return BC_STEPS * bc["batch"] * yaml_window(work)
    return json.loads((work / "wm_frames" / "steps.json").read_text())["frames"]


def stage_section(work: Path, name: str) -> dict:
    params = yaml.safe_load((work / "params.yaml").read_text())
    return {k: v for k, v in params[name].items() if k not in PROFILES} | params[name]["smoke"]


def yaml_window(work: Path) -> int:
    return int(stage_section(work, "features")["window"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--games", type=int, required=True, help="games in the corpus")
    ap.add_argument("--workers", type=int, default=2, help="pool size of norm, shards, wm_frames")
    ap.add_argument("--ingest", type=Path, default=ROOT / "artifacts/ingest", help="real games")
    ap.add_argument("--audit", type=Path, default=ROOT / "reports/audit/audit.json")
    ap.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    ap.add_argument("--only", nargs="+", help="run only these stages (the earlier must exist)")
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    if not (args.ingest / "games.parquet").is_file():
        raise SystemExit(f"scale: no ingest at {args.ingest}; run `dvc repro ingest` first")
    work = args.work or Path(tempfile.mkdtemp(prefix=f"mmlib-scale-{args.games}-"))
    try:
        if not (work / "ingest" / "games.parquet").is_file():
            build_corpus(args.ingest, work / "ingest", args.games)
        params = harness_params(work, args.workers)
        shutil.copyfile(args.audit, work / "audit.json")  # a copy: `dvc repro` may be rewriting it
        (work / "logs").mkdir(exist_ok=True)
        results = {}
        for name, cmd in stages(work, params).items():
            if args.only and name not in args.only:
                continue
            for stale in OUTPUTS[name]:  # a fresh run each time (bc would resume its steps)
                shutil.rmtree(work / stale, ignore_errors=True)
            figures = run_measured(cmd, work / "logs" / f"{name}.log")
            figures["frames"] = frames_done(work, name)
            figures["frames_per_s"] = figures["frames"] / figures["wall_s"]
            results[name] = figures
            print(
                f"{args.games:>6} games  {name:<11} {figures['wall_s']:8.1f} s  "
                f"{figures['frames']:>12,} frames  {figures['frames_per_s']:>10,.0f} frames/s  "
                f"peak RSS {figures['peak_rss_tree_mb']:7.0f} MB (tree), "
                f"{figures['peak_rss_max_mb']:6.0f} MB (largest process), "
                f"{figures['peak_anon_tree_mb']:6.0f} MB (tree, not file-backed)",
                flush=True,
            )
        if args.json:
            report = {
                "games": args.games,
                "workers": args.workers,
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                "stages": results,
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
