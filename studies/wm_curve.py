"""The Mamba-2 world model's learning curve: the `world_model` stage's Mamba-2 recipe (same steps,
batch and seed) trained on the first 8, 64, 256, ... training games (md5 order: a content-blind
cut, each set inside the next), scored on the same validation games as the stage: teacher-forced
position MAE and player 0's change accuracy, and rollout coherence, each with a 95 % interval
over validation games. The point for all training games is the stage's own model.

    python studies/wm_curve.py [--root .] [--games 8 64 256]   # after `dvc repro world_model`

Writes `<root>/reports/world_model/curve.json` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mmlib.atomic import write_json
from mmlib.worldmodel import evaluate, figures, frame_store, train
from mmlib.worldmodel.params import recipe

ARCH = "mamba2"
COLUMNS = (("teacher_forced", "position_mae"), ("teacher_forced", "change_acc_p0"),
           ("rollout_coherence", "RC"))  # fmt: skip


def score(model, val) -> dict:
    pred = evaluate.teacher_forced(model, val)
    return {
        "teacher_forced": figures.teacher_forced(val.cfg, pred, len(val.md5s)),
        "rollout_coherence": figures.rollout_coherence(model, val),
    }


def point(label: str, n_games: int, n_frames: int, scored: dict) -> dict:
    tf, rc = scored["teacher_forced"], scored["rollout_coherence"]["all"]
    yard = {
        "teacher_forced": {k: tf[k] for k in figures.YARDSTICKS},
        "rollout_coherence": {k: rc[k] for k in figures.YARDSTICKS},
    }
    return {"label": label, "train_games": n_games, "train_frames": int(n_frames),
            "teacher_forced": tf["model"], "rollout_coherence": rc["model"],
            "yardsticks": yard}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("."), help="a pipeline run's folder")
    ap.add_argument("--games", type=int, nargs="+", default=[8, 64, 256])
    args = ap.parse_args()
    root = args.root
    model_cfg, train_cfg, settings = recipe(root / "params.yaml", ARCH)
    train_frames, val = frame_store.load(root / "artifacts/wm_frames", model_cfg.encoding,
                                         settings["val_frac"], settings["split_seed"])  # fmt: skip
    torch.set_num_threads(train_cfg.threads)
    points = []
    for n in sorted(g for g in args.games if g < len(train_frames.md5s)):
        subset = train_frames.games(0, n)
        model, _ = train.train(model_cfg, train_cfg, subset, val,
                               root / "runs/world_model_curve" / f"n{n}")  # fmt: skip
        points.append(point(f"{n} games", n, subset.n_frames, score(model, val)))
    metrics = json.loads((root / "reports/world_model" / ARCH / "metrics.json").read_text())
    published = metrics["published_definitions"]
    points.append(
        point(
            "all",
            len(train_frames.md5s),
            train_frames.n_frames,
            {k: published[k] for k in ("teacher_forced", "rollout_coherence")},
        )
    )
    write_json(root / "reports/world_model/curve.json",
               {"arch": ARCH, "steps": metrics["steps"], "val_games": len(val.md5s),
                "points": points})  # fmt: skip
    cell = figures.cell
    print(f"| training games (frames) | {' | '.join(c for _, c in COLUMNS)} |")
    print("|" + "---|" * (1 + len(COLUMNS)))
    for p in points:
        cells = [cell(p[kind][name]) for kind, name in COLUMNS]
        print(f"| {p['train_games']} ({p['train_frames']:,}) | {' | '.join(cells)} |")
    ys = points[-1]["yardsticks"]
    for who in figures.YARDSTICKS:
        cells = [cell(ys[kind][who][name]) for kind, name in COLUMNS]
        print(f"| {who.replace('_', ' ')} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
