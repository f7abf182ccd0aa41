"""Why the world models lose to their yardsticks, and what changes that (issue 19; the note
`research-notes/2026-12-06-yardsticks.md`).

Trains one world model per variant on the `wm_frames` store, with params.yaml's recipe for the
architecture (the active profile, its priors undone: the published recipe) changed as the
variant says, and scores it on the validation
games beside copy-last-frame and dead reckoning: teacher-forced one-frame figures and rollouts.
`--games N ...` trains on the first N training games only (a learning curve).

Each run keeps its resume file in `--runs`, so a killed study continues where it stopped, and
writes its figures to `--out/<arch>-<variant>-<games>g.json`; the table of every result in
`--out` is printed at the end (markdown).

    .venv/bin/python studies/world_model_priors.py --arch mlp --variants published standardize all
    .venv/bin/python studies/world_model_priors.py --arch mamba2 --variants all --games 1 2 4 8
    .venv/bin/python studies/world_model_priors.py --arch mlp --table
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pandas as pd
import torch

from mmlib.atomic import write_json
from mmlib.worldmodel import evaluate, frame_store, train
from mmlib.worldmodel.params import recipe

# params.yaml's own changes (world_model.model, float_loss) undone: every variant starts here
PUBLISHED = ({"scale": "none", "residual": False, "hold": False, "standard_inputs": False},
             {"float_loss": "mse"})  # fmt: skip
PRIORS = {"scale": "mad", "residual": True, "hold": True}
HUBER = {"float_loss": "huber"}
VARIANTS = {  # name -> (ModelConfig changes, TrainConfig changes)
    "published": ({}, {}),
    "standardize": ({"scale": "std"}, {}),
    "residual": ({"residual": True}, {}),
    "hold": ({"hold": True}, {}),
    "standardize+residual": ({"scale": "std", "residual": True}, {}),
    "mad+huber": ({"scale": "mad"}, HUBER),
    "mad+huber+residual": ({"scale": "mad", "residual": True}, HUBER),
    "mad+huber+hold": ({"scale": "mad", "hold": True}, HUBER),
    "all": (PRIORS, HUBER),
    "mad+huber+hold+inputs": ({"scale": "mad", "hold": True, "standard_inputs": True}, HUBER),
    "all+inputs": (PRIORS | {"standard_inputs": True}, HUBER),
    "all, dropout 0.3": (PRIORS | {"dropout": 0.3}, HUBER),
    "all, lr/3": (PRIORS, HUBER | {"lr": "/3"}),
    "all, lr*3": (PRIORS, HUBER | {"lr": "*3"}),
    "all, epochs*3": (PRIORS, HUBER | {"epochs": "*3"}),
    "all, change weight 5": (PRIORS, HUBER | {"change_weight": 5.0}),
}


def _apply(cfg, changes: dict):
    """A dataclass with `changes` applied; "*3" and "/3" scale the recipe's own value."""
    out = {}
    for key, value in changes.items():
        now = getattr(cfg, key)
        if isinstance(value, str) and value[:1] in ("*", "/") and not isinstance(now, str):
            value = now * float(value[1:]) if value[0] == "*" else now / float(value[1:])
            value = type(now)(value)
        out[key] = value
    return dataclasses.replace(cfg, **out)


def run(arch: str, variant: str, games: int | None, args) -> dict:
    model_cfg, train_cfg, settings = recipe(args.params, arch)
    model_changes, train_changes = VARIANTS[variant]  # on top of the published recipe
    model_cfg = _apply(model_cfg, PUBLISHED[0] | model_changes)
    train_cfg = _apply(train_cfg, PUBLISHED[1] | train_changes)
    train_frames, val_frames = frame_store.load(
        args.frames, model_cfg.encoding, settings["val_frac"], settings["split_seed"]
    )
    games = games or len(train_frames.md5s)
    train_frames = train_frames.games(0, games)
    name = f"{arch}-{variant.replace(' ', '').replace(',', '-').replace('/', 'div')}-{games}g"
    model, trained = train.train(
        model_cfg, train_cfg, train_frames, val_frames, args.runs / name, log=lambda _: None
    )
    torch.set_num_threads(train_cfg.threads)
    tf = evaluate.teacher_forced_metrics(evaluate.teacher_forced(model, val_frames))
    roll, _ = evaluate.rollout_metrics(
        model, val_frames, settings["rollout_starts"], settings["rollout_seed"]
    )
    result = {
        "arch": arch,
        "variant": variant,
        "train_games": games,
        "train_frames": train_frames.n_frames,
        "val_games": len(val_frames.md5s),
        "val_frames": val_frames.n_frames,
        "model": model_cfg.to_dict(),
        "recipe": train_cfg.to_dict(),
        "best_epoch": trained.history.best_step / trained.epoch_steps,
        "teacher_forced": tf,
        "rollout": roll,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{name}.json", result)
    return result


def table(results: list[dict]) -> pd.DataFrame:
    """One row per run, then the yardsticks (the same validation frames for every run)."""
    rows = {}
    for r in results:
        tf, roll = r["teacher_forced"], r["rollout"]
        rows[f"{r['arch']} {r['variant']} ({r['train_games']} games)"] = _row(tf, roll["model"])
    last = results[-1]
    for who in ("dead_reckoning", "copy_last_frame"):
        rows[who.replace("_", " ")] = _row(last["teacher_forced"][who], last["rollout"][who])
    return pd.DataFrame(rows).T


def _row(tf: dict, roll: dict) -> dict:
    return {
        "position MAE": tf["position_mae"],
        "action acc": tf["action_acc"],
        "change acc": tf["change_acc"],
        "damage MAE": tf["damage_mae"],
        "pos @10": roll["10"]["position"],
        "pos @50": roll["50"]["position"],
        "pos @200": roll["200"]["position"],
        "action @200": roll["200"]["action"],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--arch", default="mlp", help="one of params.yaml world_model.archs")
    ap.add_argument("--variants", nargs="+", default=["published", "all"], choices=VARIANTS)
    ap.add_argument("--games", nargs="+", type=int, default=[0], help="0: every training game")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--frames", type=Path, default=Path("artifacts/wm_frames"))
    ap.add_argument("--runs", type=Path, default=Path("runs/studies/world_model"))
    ap.add_argument("--out", type=Path, default=Path("studies/results/world_model"))
    ap.add_argument("--table", action="store_true", help="only print the table of every result")
    args = ap.parse_args(argv)
    if args.table:  # every result of this arch in --out, in the order of VARIANTS
        found = [json.loads(p.read_text()) for p in sorted(args.out.glob(f"{args.arch}-*.json"))]
        order = list(VARIANTS)
        found.sort(key=lambda r: (order.index(r["variant"]), r["train_games"]))
        print(table(found).to_markdown(floatfmt=".4g"))
        return
    results = []
    for variant in args.variants:
        for games in args.games:
            results.append(run(args.arch, variant, games or None, args))
            print(json.dumps({k: results[-1][k] for k in ("arch", "variant", "train_games")}))
    print(table(results).to_markdown(floatfmt=".4g"))


if __name__ == "__main__":
    main()
