"""The `mmlib` command. Each subcommand is a thin shell over a library function.

A mistake the user can make (a missing path, a bad params file) ends with one line on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from mmlib.config import PROFILES, stage_params
from mmlib.cpu_kernels import pin_cpu_kernels
from mmlib.errors import UsageError


def _ingest(args: argparse.Namespace) -> int:
    from mmlib.data.ingest import IngestConfig, ingest

    settings = stage_params("ingest", args.params) if args.params else {}
    flags = {"workers": args.workers, "timeout_s": args.timeout, "min_frames": args.min_frames}
    settings |= {k: v for k, v in flags.items() if v is not None}
    known = {f.name for f in dataclasses.fields(IngestConfig)}
    config = IngestConfig(**{k: v for k, v in settings.items() if k in known})
    paths = args.paths or [Path(p) for p in settings.get("source") or []]
    if not paths:
        raise UsageError("mmlib ingest: give replay paths, or --params with `ingest.source`")
    report = ingest(paths, args.output, config, progress=not args.quiet)
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
    if args.each is None:
        run_notebook(args.notebook, args.output, dict(args.parameter), args.kernel, args.cwd)
        return 0
    for item in each(args.each, args.params):  # `{}` in the output and values: the item
        output = Path(str(args.output).replace("{}", item))
        parameters = {name: value.replace("{}", item) for name, value in args.parameter}
        print(f"{args.notebook} -> {output}", flush=True)
        run_notebook(args.notebook, output, parameters, args.kernel, args.cwd)
    return 0


def each(key: str, params: Path) -> list[str]:
    """The profile's list at `section.key` of params.yaml (e.g. `bc.characters`): a stage that
    runs a notebook once per item, where the items depend on the profile (dvc's `foreach` reads
    one fixed list)."""
    section, _, name = key.partition(".")
    items = stage_params(section, params).get(name)
    if not isinstance(items, list) or not items:
        raise UsageError(f"{params}: `{key}` is not a non-empty list in this profile")
    return [str(item) for item in items]


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
    for why in metrics.get("skipped", {}).values():
        print(f"skipped: {why}")
    return 0


def _wm_frames(args: argparse.Namespace) -> int:
    from mmlib.worldmodel.encoding import EncodingConfig
    from mmlib.worldmodel.frame_store import SPLITS, build

    settings = stage_params("world_model", args.params)
    workers = args.workers if args.workers is not None else settings.get("workers", 0)
    cfg = EncodingConfig(**settings["encoding"])
    manifest = build(args.ingest, args.output, cfg, settings["val_frac"], settings["split_seed"],
                     workers, not args.quiet, settings.get("max_games", 0))  # fmt: skip
    counts = [f"{manifest[s]['frames']:,} {s} frames ({len(manifest[s]['games'])} games)"
              for s in SPLITS]  # fmt: skip
    print(f"{', '.join(counts)}, encoding {cfg.version} -> {args.output}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import yaml
    from tqdm import tqdm

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


def _evaluate_bc(args: argparse.Namespace) -> int:
    from mmlib.atomic import write_json
    from mmlib.train import held_out, intervals

    report = held_out.evaluate_policy(
        args.policy,
        args.ingest,
        args.shards,
        batch=args.batch,
        n_boot=args.boot,
        include_quits=args.include_quits,
        progress=not args.quiet,
    )
    print(held_out.headline(report))
    print(intervals.markdown(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, report)
        print(f"-> {args.out}")
    return 0


def _world_model(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mmlib.worldmodel import stage

    paths = stage.Paths(args.frames, args.models, args.reports, args.runs)
    for arch in args.arch:
        m = stage.run_arch(arch, args.params, paths, log=tqdm.write, progress=not args.quiet)
        tf, copy = m["teacher_forced"], m["teacher_forced"]["copy_last_frame"]
        print(
            f"{arch}: val loss {m['val_loss']:.4g}; position MAE {tf['position_mae']:.3g} "
            f"(copy-last-frame {copy['position_mae']:.3g}, dead reckoning "
            f"{tf['dead_reckoning']['position_mae']:.3g}) -> {args.models / arch}"
        )
    return 0


def _decompose(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mmlib.worldmodel import stage

    paths = stage.DecomposePaths(args.frames, args.monoliths, args.models, args.reports, args.runs)
    m = stage.run_decompose(args.params, paths, log=tqdm.write, progress=not args.quiet)
    verdicts = ", ".join(f"{k} {v['decomposes']}" for k, v in m["subsystems"].items())
    print(f"decomposes: {verdicts} -> {args.reports}")
    return 0


def _session_status(args: argparse.Namespace, session) -> int:
    if session.ok:
        print(f"mmlib {args.command}: {session.ended}")
        return 0
    print(f"mmlib {args.command}: {session.ended}", file=sys.stderr)
    return 1


def _play_vs_cpu(args: argparse.Namespace) -> int:
    from mmlib.play.runner import run_vs_cpu
    from mmlib.play.settings import vs_cpu_settings

    settings = vs_cpu_settings(
        checkpoint=args.checkpoint,
        dolphin_path=args.dolphin_path,
        iso_path=args.iso_path,
        character=args.character,
        cpu_character=args.cpu_character,
        cpu_level=args.cpu_level,
        stage=args.stage,
        temperature=args.temperature,
        button_temperature=args.button_temperature,
        seed=args.seed,
        port=args.port,
        cpu_port=args.cpu_port,
        device=args.device,
        replay_dir=args.replay_dir,
        connect_timeout=args.connect_timeout,
    )
    return _session_status(args, run_vs_cpu(settings))


def _play_netplay(args: argparse.Namespace) -> int:
    from mmlib.play.runner import run_netplay
    from mmlib.play.settings import netplay_settings

    settings = netplay_settings(
        checkpoint=args.checkpoint,
        dolphin_path=args.dolphin_path,
        iso_path=args.iso_path,
        character=args.character,
        stage=args.stage,
        connect_code=args.connect_code,
        dolphin_home=args.dolphin_home,
        temperature=args.temperature,
        button_temperature=args.button_temperature,
        seed=args.seed,
        max_matches=args.max_matches,
        join_timeout=args.join_timeout,
        device=args.device,
        replay_dir=args.replay_dir,
        connect_timeout=args.connect_timeout,
    )
    return _session_status(args, run_netplay(settings))


def _play_replay(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from mmlib.atomic import atomic_path
    from mmlib.checkpoint.directory import load_policy
    from mmlib.play import drive
    from mmlib.play.policy import head_temperatures

    policy = load_policy(args.checkpoint)
    button = {} if args.button_temperature is None else {"button": args.button_temperature}
    table = drive.drive(
        policy,
        args.replay,
        args.port,
        mode=args.mode_,
        prefill=args.prefill,
        temperature=head_temperatures(args.temperature) | button,
        seed=args.seed,
        max_frames=args.max_frames,
        progress=not args.quiet,
    )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.output) as tmp:
            pq.write_table(table, tmp)
    bot, human = drive.health(table, "bot"), drive.health(table, "human")
    agree = drive.agreement(table)
    print(f"{args.replay} port {args.port}, {args.mode_}: {table.num_rows:,} frames")
    print("agreement with the human's next input (argmax): " + ", ".join(
        f"{h} {a['argmax']:.1%}" for h, a in agree.items()))  # fmt: skip
    for who, h in (("bot", bot), ("human", human)):
        print(
            f"{who:>5}: non-NONE {h['non_none_share']:.1%}, stick neutral "
            f"{h['stick_neutral_share']:.1%}, {h['presses_per_s']:.2f} presses/s, "
            f"{h['trig_presses']} TRIG presses, {h['wavedash_shaped']} wavedash-shaped"
        )
    return 0


def _button_temperature(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--button-temperature", type=float,
        help="the button head's temperature (default: --temperature's)",
    )  # fmt: skip


def _bot_arguments(s: argparse.ArgumentParser) -> None:
    """The arguments every `play` mode that runs a bot in Dolphin takes."""
    s.add_argument("--checkpoint", type=Path, required=True, help="a policy directory")
    s.add_argument(
        "--dolphin-path", type=Path, required=True, help="Slippi Dolphin's folder or executable"
    )
    s.add_argument("--iso-path", type=Path, required=True, help="the Melee 1.02 NTSC ISO")
    s.add_argument("--character", required=True, help="the checkpoint's character, e.g. fox")
    s.add_argument("--stage", required=True, help="a legal stage, e.g. battlefield")
    s.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (> 0)")
    _button_temperature(s)
    s.add_argument("--seed", type=int, default=0, help="sampling seed (match i: seed + i)")
    s.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    s.add_argument(
        "--replay-dir", type=Path, default=Path("runs/play"), help="where the .slp files go"
    )
    s.add_argument(
        "--connect-timeout", type=float, metavar="SECONDS",
        help="keep trying to connect to Dolphin this long (default 60)",
    )  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmlib", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="replays (files, folders, .zip/.7z) -> per-game parquet")
    s.add_argument(
        "paths", nargs="*", type=Path,
        help="replay files, folders or archives (default: the profile's `ingest.source`)",
    )  # fmt: skip
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

    s = sub.add_parser("wm-frames", help="world-model frames encoded once, memory-mapped")
    s.add_argument("--ingest", type=Path, default=Path("artifacts/ingest"), help="ingest folder")
    s.add_argument("--output", "-o", type=Path, default=Path("artifacts/wm_frames"))
    s.add_argument("--params", type=Path, default=Path("params.yaml"), help="`world_model`")
    s.add_argument("--workers", "-j", type=int, help="worker processes (default: params; 0: all)")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.set_defaults(run=_wm_frames)

    s = sub.add_parser(
        "train", help="train one character's BC policy (works under torchrun for several GPUs)"
    )
    s.add_argument("--character", "-c", required=True, help="e.g. fox")
    s.add_argument("--params", type=Path, default=Path("params.yaml"), help="`bc` section")
    s.add_argument("--profile", choices=PROFILES, help="default: params.yaml's profile")
    s.add_argument(
        "--set", nargs=2, action="append", metavar=("KEY", "VALUE"), help="override a bc key"
    )
    s.add_argument("--shards", type=Path, default=Path("artifacts/shards"))
    s.add_argument("--policies", type=Path, default=Path("artifacts/bc"), help="output folder")
    s.add_argument("--reports", type=Path, default=Path("reports/bc"))
    s.add_argument("--runs", type=Path, default=Path("runs/bc"), help="resume checkpoints")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.set_defaults(run=_train)

    s = sub.add_parser("evaluate", help="score trained models on games they did not train on")
    evaluate = s.add_subparsers(dest="what", required=True)
    s = evaluate.add_parser(
        "bc", help="a BC policy on an ingest's held-out games, with intervals over games"
    )
    s.add_argument("--policy", type=Path, required=True, help="a policy directory")
    s.add_argument("--ingest", type=Path, required=True, help="an `mmlib ingest` folder")
    s.add_argument("--out", "-o", type=Path, help="write the figures here (.json)")
    s.add_argument(
        "--shards", type=Path,
        help="the policy's shards, to fit the yardsticks on its training split "
        "(default: on the scored games)",
    )  # fmt: skip
    s.add_argument("--batch", type=int, default=128, help="windows per forward pass")
    s.add_argument("--boot", type=int, default=2000, help="resamples of the games (default 2000)")
    s.add_argument(
        "--include-quits", action="store_true",
        help="also the 1v1s that end in a quit or no contest (default: usable_1v1 only)",
    )  # fmt: skip
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.set_defaults(run=_evaluate_bc, command="evaluate bc")

    s = sub.add_parser("world-model", help="train and score world models (stage world_model)")
    s.add_argument("arch", nargs="+", help="architectures of params.yaml world_model.archs")
    s.add_argument("--params", type=Path, default=Path("params.yaml"), help="`world_model`")
    s.add_argument("--frames", type=Path, default=Path("artifacts/wm_frames"))
    s.add_argument("--models", type=Path, default=Path("artifacts/world_model"))
    s.add_argument("--reports", type=Path, default=Path("reports/world_model"))
    s.add_argument("--runs", type=Path, default=Path("runs/world_model"), help="resume files")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.set_defaults(run=_world_model)

    s = sub.add_parser("decompose", help="one model per subsystem of the dynamics (stage)")
    s.add_argument("--params", type=Path, default=Path("params.yaml"), help="`decompose`")
    s.add_argument("--frames", type=Path, default=Path("artifacts/wm_frames"))
    s.add_argument("--monoliths", type=Path, default=Path("artifacts/world_model"))
    s.add_argument("--models", type=Path, default=Path("artifacts/decomposition"))
    s.add_argument("--reports", type=Path, default=Path("reports/decomposition"))
    s.add_argument("--runs", type=Path, default=Path("runs/decomposition"), help="resume files")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.set_defaults(run=_decompose)

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
    s.add_argument(
        "--each", metavar="SECTION.KEY",
        help="run once per item of this list in params.yaml's profile; `{}` in OUTPUT and -p "
        "values is the item",
    )  # fmt: skip
    s.add_argument("--params", type=Path, default=Path("params.yaml"), help="for --each")
    s.set_defaults(run=_notebook)

    s = sub.add_parser("play", help="a trained policy in Slippi Dolphin: vs the CPU, netplay")
    play = s.add_subparsers(dest="mode", required=True)
    s = play.add_parser("vs-cpu", help="one game against the game's CPU")
    _bot_arguments(s)
    s.add_argument("--cpu-character", required=True, help="e.g. falco")
    s.add_argument("--cpu-level", type=int, required=True, help="1-9")
    s.add_argument("--port", type=int, default=1, help="the bot's controller port (default 1)")
    s.add_argument("--cpu-port", type=int, default=2, help="the CPU's port (default 2)")
    s.set_defaults(run=_play_vs_cpu, command="play vs-cpu")
    s = play.add_parser("netplay", help="direct-connect matches over Slippi online")
    _bot_arguments(s)
    s.add_argument("--connect-code", required=True, help="the opponent's code, e.g. ABCD#123")
    s.add_argument(
        "--dolphin-home",
        type=Path,
        help="the Dolphin user folder holding Slippi/user.json (default: libmelee's)",
    )
    s.add_argument("--max-matches", type=int, default=1, help="-1: no limit (default 1)")
    s.add_argument(
        "--join-timeout", type=float, metavar="SECONDS",
        help="leave when no game starts this long in the menus (default: wait for ever)",
    )  # fmt: skip
    s.set_defaults(run=_play_netplay, command="play netplay")
    s = play.add_parser("replay", help="drive a policy with a replay, no emulator (evaluation)")
    s.add_argument("--checkpoint", type=Path, required=True, help="a policy directory")
    s.add_argument("--replay", type=Path, required=True, help="a .slp file")
    s.add_argument("--port", type=int, required=True, help="the player the bot stands in for")
    s.add_argument(
        "--mode", dest="mode_", choices=("teacher", "free"), default="teacher",
        help="controller history: the human's (teacher) or the bot's own (free)",
    )  # fmt: skip
    s.add_argument("--prefill", choices=("neutral", "none"), default="neutral")
    s.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    _button_temperature(s)
    s.add_argument("--seed", type=int, default=0, help="sampling seed")
    s.add_argument("--max-frames", type=int, help="stop after this many fed frames")
    s.add_argument("--output", "-o", type=Path, help="write the per-frame inputs (.parquet)")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.set_defaults(run=_play_replay, command="play replay")
    return p


def main(argv: list[str] | None = None) -> int:
    pin_cpu_kernels()  # before any subcommand imports torch: same bits on any x86 machine
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as e:
        print(f"mmlib {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mmlib {args.command}: interrupted; run it again to finish", file=sys.stderr)
        return 130
