"""The `mmlib` command. Each subcommand is a thin shell over a library function.

A mistake the user can make (a missing path, a bad params file) ends with one line on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from mmlib.config import stage_params
from mmlib.errors import UsageError


def _ingest(args: argparse.Namespace) -> int:
    from mmlib.data.ingest import IngestConfig, ingest

    settings = stage_params("ingest", args.params) if args.params else {}
    flags = {"workers": args.workers, "timeout_s": args.timeout, "min_frames": args.min_frames}
    settings |= {k: v for k, v in flags.items() if v is not None}
    known = {f.name for f in dataclasses.fields(IngestConfig)}
    config = IngestConfig(**{k: v for k, v in settings.items() if k in known})
    report = ingest(args.paths, args.output, config, progress=not args.quiet)
    print(report.line(args.output))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from mmlib.data.fetch import fetch

    report = fetch(args.sources, args.dest, progress=not args.quiet)
    print(report.line(args.dest))
    return 0


def _notebook(args: argparse.Namespace) -> int:
    import logging

    from mmlib.notebooks import run_notebook

    logging.basicConfig(level=logging.INFO, format="%(message)s")  # papermill's --log-output
    run_notebook(args.notebook, args.output, dict(args.parameter), args.kernel, args.cwd)
    return 0


def _shards(args: argparse.Namespace) -> int:
    from mmlib.features.shards import build_all

    settings = stage_params("features", args.params)
    characters = args.character or settings["characters"]
    metrics = build_all(
        args.ingest, args.norm, args.audit, args.output, characters, settings, args.metrics
    )
    for name, m in metrics["characters"].items():
        leak = m["jump_onset_leak"]
        print(
            f"{name}: {m['train_rows']:,} train rows ({m['train_games']} games), "
            f"{m['val_rows']:,} val rows ({m['val_games']} games), "
            f"JUMP-onset leak {leak['rate']:.1%} of {leak['onsets']} onsets"
        )
    return 0


def _train(args: argparse.Namespace) -> int:
    import yaml
    from tqdm.auto import tqdm

    from mmlib.train.character import Paths, run_character

    overrides = {key: yaml.safe_load(value) for key, value in args.set or []}
    paths = Paths(args.shards, args.policies, args.reports, args.runs)
    metrics = run_character(
        args.character,
        args.params,
        paths,
        log=tqdm.write,  # log lines above the progress bar, not through it
        progress=not args.quiet,
        profile=args.profile,
        **overrides,
    )
    if metrics:
        base = metrics["frequency_baseline"]["total"]
        print(
            f"{args.character}: val loss {metrics['val_loss']['total']:.4f} "
            f"(class-frequency baseline {base:.4f}) -> {args.policies / args.character}"
        )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmlib", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="replays (files, folders, .zip/.7z) -> per-game parquet")
    s.add_argument("paths", nargs="+", type=Path, help="replay files, folders or archives")
    s.add_argument("--output", "-o", type=Path, required=True, help="output folder")
    s.add_argument("--workers", "-j", type=int, help="worker processes (default: all cores)")
    s.add_argument("--timeout", type=float, help="seconds per replay before it counts as a hang")
    s.add_argument("--min-frames", type=int, help="playable frames a usable 1v1 needs")
    s.add_argument("--params", type=Path, help="take defaults from this params.yaml (`ingest`)")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    s.set_defaults(run=_ingest)

    s = sub.add_parser(
        "fetch", help="bring .slp files into data/replays from folders, archives, URLs"
    )
    s.add_argument("sources", nargs="+", help="folders (e.g. ~/Slippi), .zip/.7z archives, or URLs")
    s.add_argument("--dest", type=Path, default=Path("data/replays"), help="default: data/replays")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    s.set_defaults(run=_fetch)

    s = sub.add_parser("shards", help="per-character training shards from the ingest")
    s.add_argument("--ingest", type=Path, default=Path("artifacts/ingest"), help="ingest folder")
    s.add_argument("--norm", type=Path, default=Path("artifacts/norm"), help="norm stage folder")
    s.add_argument("--audit", type=Path, default=Path("reports/audit/audit.json"))
    s.add_argument("--output", "-o", type=Path, default=Path("artifacts/shards"))
    s.add_argument("--metrics", type=Path, default=Path("reports/shards/metrics.json"))
    s.add_argument("--params", type=Path, default=Path("params.yaml"), help="`features` section")
    s.add_argument("--character", "-c", action="append", help="only these (default: params)")
    s.set_defaults(run=_shards)

    s = sub.add_parser(
        "train", help="train one character's BC policy (works under torchrun for several GPUs)"
    )
    s.add_argument("--character", "-c", required=True, help="e.g. fox")
    s.add_argument("--params", type=Path, default=Path("params.yaml"), help="`bc` section")
    s.add_argument("--profile", choices=("smoke", "full"), help="default: params.yaml's profile")
    s.add_argument(
        "--set", nargs=2, action="append", metavar=("KEY", "VALUE"), help="override a bc key"
    )
    s.add_argument("--shards", type=Path, default=Path("artifacts/shards"))
    s.add_argument("--policies", type=Path, default=Path("artifacts/bc"), help="output folder")
    s.add_argument("--reports", type=Path, default=Path("reports/bc"))
    s.add_argument("--runs", type=Path, default=Path("runs/bc"), help="resume checkpoints")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.set_defaults(run=_train)

    s = sub.add_parser("notebook", help="run a percent-format notebook headless with papermill")
    s.add_argument("notebook", type=Path, help="notebooks/NN_name.py")
    s.add_argument("output", type=Path, help="the executed .ipynb to write")
    s.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter (YAML value)",
    )
    s.add_argument("-k", "--kernel", default="mmlib", help="Jupyter kernel (default: mmlib)")
    s.add_argument("--cwd", type=Path, default=Path("."), help="working directory of the kernel")
    s.set_defaults(run=_notebook)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as e:
        print(f"mmlib {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mmlib {args.command}: interrupted; run it again to finish", file=sys.stderr)
        return 130
