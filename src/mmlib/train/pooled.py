"""One pooled policy against the per-character ones, on each character's validation games.

The pooled data set (`features.split.POOLED`) holds every character's human perspectives, with
one set of normalisation statistics, and its validation games are the union of the listed
characters' own. So for each character both policies are scored on the same perspectives,
windows and targets; each reads the features of the shards it was trained on (the two
normalisations differ), and both sit beside the same yardsticks: copying the current input and
the class-frequency loss of the character's own training split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmlib.checkpoint.directory import load_policy
from mmlib.features.split import POOLED
from mmlib.train import evaluate


def perspectives(shards: Path, split: str = "val") -> list[tuple[str, int]]:
    """(md5, self port) of each game of a shard split, in row order."""
    manifest = json.loads((Path(shards) / "manifest.json").read_text())
    return [(g["md5"], g["self_port"]) for g in manifest[split]["games"]]


def scores(policy, windows: dict[str, np.ndarray], batch: int) -> dict:
    """Loss per head, and accuracy, accuracy on change frames and macro-F1 per head."""
    loss, preds = evaluate.predict(policy.model, windows, batch, policy.device)
    heads = evaluate.head_metrics(
        preds, evaluate.targets_by_head(windows), evaluate.previous_classes(windows)
    )
    return {"loss": loss} | {h: heads[h] for h in evaluate.HEAD_NAMES}


def compare(shards_dir: Path, policies_dir: Path, characters: list[str], window_limit: int,
            batch: int, device) -> dict:  # fmt: skip
    """Per character: the per-character policy and the pooled one on the character's validation
    windows, the copy-last accuracy and the frequency baseline there, and the window count."""
    shards_dir, policies_dir = Path(shards_dir), Path(policies_dir)
    pooled = load_policy(policies_dir / POOLED, device)
    pooled_games = perspectives(shards_dir / POOLED)
    out = {}
    for character in characters:
        own = load_policy(policies_dir / character, device)
        width = own.config.max_seq_len
        windows = evaluate.val_windows(shards_dir / character / "val", width, window_limit)
        wanted = set(perspectives(shards_dir / character))
        rows = [i for i, p in enumerate(pooled_games) if p in wanted]
        if len(rows) != len(wanted):
            raise ValueError(f"the pooled validation set lacks some of {character}'s games")
        theirs = evaluate.val_windows(shards_dir / POOLED / "val", width, window_limit, rows)
        if not np.array_equal(theirs["targets"], windows["targets"]):
            raise ValueError(f"{character}: pooled and per-character windows differ in targets")
        train_targets = np.load(shards_dir / character / "train" / "targets.npy", mmap_mode="r")
        out[character] = {
            "windows": len(windows["targets"]),
            "per_character": scores(own, windows, batch),
            "pooled": scores(pooled, theirs, batch),
            "copy_last_acc": evaluate.copy_last_accuracy(windows),
            "frequency_baseline": evaluate.frequency_baseline(
                train_targets, evaluate.targets_by_head(windows)
            ),
        }
    return out
