"""The learning curve's neighbours compared on the same games: each curve policy and the policy
trained on all of the character's games are scored on every window of its validation games, and
each point is paired with the next larger one (difference larger - smaller, an interval from one
set of resampled games, a verdict). The curve's own bars are unpaired and overlap; this says
which steps of the curve are real.

    python studies/bc_curve_paired.py [--root .] [--character fox]   # after `dvc repro bc_curve`
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from mmlib.checkpoint.directory import load_policy
from mmlib.train import intervals
from mmlib.train.evaluate import HEAD_NAMES
from mmlib.train.intervals import cell


def curve_policies(root: Path, character: str) -> list[tuple[str, Path]]:
    """(label, policy dir), smallest training set first; the bc stage's policy last."""
    subsets = sorted(
        (int(p.parent.name[1:]), p) for p in (root / "artifacts/bc_curve").glob(f"n*/{character}")
    )
    return [(f"{n} games", p) for n, p in subsets] + [("all", root / "artifacts/bc" / character)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("."), help="a pipeline run's folder")
    ap.add_argument("--character", default="fox")
    args = ap.parse_args()
    shards = args.root / "artifacts/shards" / args.character
    yard = intervals.train_yardsticks(shards / "train")
    scored, views = [], {}  # views: the validation windows, read once per window width
    for label, path in curve_policies(args.root, args.character):
        policy = load_policy(path)
        width = policy.config.max_seq_len
        if width not in views:
            views[width] = list(intervals.split_perspectives(shards, width))
        scored.append((label, intervals.score(policy.model, views[width], 64, policy.device)))
    print(f"| step | loss difference | {' | '.join(f'{h} change acc (pp)' for h in HEAD_NAMES)} |")
    print("|" + "---|" * (2 + len(HEAD_NAMES)))
    for (small, a), (large, b) in itertools.pairwise(scored):
        p = intervals.paired(b, a, yard)
        heads = [
            f"{cell(p['heads'][h]['change_acc'], 100, 1)} {p['heads'][h]['change_acc']['verdict']}"
            for h in HEAD_NAMES
        ]
        loss = f"{cell(p['loss'], 1, 3)} {p['loss']['verdict']}"
        print(f"| {small} -> {large} | {loss} | {' | '.join(heads)} |")
    n = len(set(scored[0][1].games))
    print(f"\n{args.character}: {n} validation games; the verdict is the larger set's, against the"
          " smaller (lower loss is better).")  # fmt: skip


if __name__ == "__main__":
    main()
