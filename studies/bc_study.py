"""Behaviour cloning against copying the current input, with longer training (issue 19; the note
`research-notes/2026-12-06-yardsticks.md`).

Trains every `bc.characters` policy (the pooled `all` included) with the `study` profile
(params.yaml: smoke's recipe, 960 steps instead of 240; about 4.5 min each on 2 cores) into
`--root`, then scores the pooled policy against each per-character one on that character's
validation games, as stage `bc_pooled` does for the smoke policies. Writes the figures to
`--out` (JSON) and prints, per character and head, top-1 accuracy and change-frame accuracy
beside copy-last. A killed study resumes: finished runs are not trained again.

    .venv/bin/python studies/bc_study.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from mmlib.atomic import write_json
from mmlib.config import stage_params
from mmlib.features.split import POOLED
from mmlib.train import pooled
from mmlib.train.character import Paths, round_floats, run_character
from mmlib.train.evaluate import HEAD_NAMES


def table(results: dict) -> pd.DataFrame:
    """(character, policy) rows: validation loss (nats per frame, four heads), and per head
    top-1 accuracy and change-frame accuracy, beside copy-last and the class-frequency loss."""
    rows = {}
    for character, r in results.items():
        for name, key in (("per character", "per_character"), ("pooled", "pooled")):
            rows[(character, name)] = (
                {"val loss": r[key]["loss"]["total"]}
                | {f"{h} acc": r[key][h]["acc"] for h in HEAD_NAMES}
                | {f"{h} change acc": r[key][h]["change_acc"] for h in HEAD_NAMES}
            )
        copy = r["copy_last_acc"]
        rows[(character, "copy last input")] = {f"{h} acc": copy[h] for h in HEAD_NAMES}
        rows[(character, "class frequency")] = {"val loss": r["frequency_baseline"]["total"]}
    return pd.DataFrame(rows).T


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--profile", default="study")
    ap.add_argument("--shards", type=Path, default=Path("artifacts/shards"))
    ap.add_argument("--root", type=Path, default=Path("runs/studies/bc"))
    ap.add_argument("--out", type=Path, default=Path("studies/results/bc/study.json"))
    ap.add_argument(
        "--score-only", action="store_true", help="score the policies in --root as they are"
    )
    args = ap.parse_args(argv)
    characters = stage_params("bc", args.params)["characters"]
    paths = Paths(args.shards, args.root / "policies", args.root / "reports", args.root / "runs")
    for character in [] if args.score_only else characters:
        run_character(character, args.params, paths, log=lambda *_: None, profile=args.profile)
    settings = stage_params("bc", args.params, args.profile)
    torch.set_num_threads(settings["threads"])
    own = [c for c in characters if c != POOLED]
    results = pooled.compare(
        args.shards, paths.policies, own, settings["eval_windows"], 64, torch.device("cpu")
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, round_floats(results))
    print(table(results).to_markdown(floatfmt=".4f"))


if __name__ == "__main__":
    main()
