"""One pooled policy against the per-character ones, on each character's validation games.

The pooled data set (`features.split.POOLED`) holds every character's human perspectives, with
one set of normalisation statistics, and its validation games are the union of the listed
characters' own. So for each character both policies are scored on the same perspectives,
windows and targets; each reads the features of the shards it was trained on (the two
normalisations differ), and both sit beside the same yardsticks: copying the current input and
the class-frequency loss of the character's own training split. `held_out` scores every window
of the same games with 95 % intervals over games, the calibrated copy-last loss, and the paired
difference pooled - per character (`intervals`); `table` says beats, tie or loses from those.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmlib.checkpoint.directory import load_policy
from mmlib.features.split import POOLED
from mmlib.train import evaluate, intervals


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
        held = _held_out(own, pooled, shards_dir, character, rows, width, batch)
        out[character] = {
            "held_out": held,
            "windows": len(windows["targets"]),
            "per_character": scores(own, windows, batch),
            "pooled": scores(pooled, theirs, batch),
            "copy_last_acc": evaluate.copy_last_accuracy(windows),
            "frequency_baseline": evaluate.frequency_baseline(
                train_targets, evaluate.targets_by_head(windows)
            ),
        }
    return out


def _held_out(own, pooled, shards_dir: Path, character: str, rows: list[int], width: int,
              batch: int) -> dict:  # fmt: skip
    """Both policies on every window of the character's validation perspectives (the pooled one
    reading them from its own shards, `rows`), against the character's training yardsticks."""
    md5s = [md5 for md5, _ in perspectives(shards_dir / character)]
    pooled_val = shards_dir / POOLED / "val"
    theirs = (
        (md5, evaluate.val_windows(pooled_val, width, intervals.NO_THINNING, [row]))
        for md5, row in zip(md5s, rows, strict=True)
    )
    a = intervals.score(own.model, intervals.split_perspectives(shards_dir / character, width),
                        batch, own.device)  # fmt: skip
    b = intervals.score(pooled.model, theirs, batch, pooled.device)
    yard = intervals.train_yardsticks(shards_dir / character / "train")
    return {
        "per_character": intervals.summary(a, yard),
        "pooled": intervals.summary(b, yard),
        "pooled_vs_per_character": intervals.paired(b, a, yard),
    }


def table(result: dict) -> str:
    """Markdown: per character, each policy's summed loss and per-head accuracy with 95 %
    intervals and its verdict against copy-last, the yardsticks, and the pooled policy's paired
    difference from the per-character one. A verdict is `beats` or `loses` only where the
    interval of the paired difference excludes zero; otherwise `tie`."""
    heads = evaluate.HEAD_NAMES
    columns = ["character", "model", "loss (nats)", *(f"{h} acc %" for h in heads)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for character, r in result.items():
        held = r["held_out"]
        games = f"{character} ({held['pooled']['n_games']} games)"
        for who in ("per_character", "pooled"):
            s = held[who]
            loss = s["total"]["loss"]
            cells = [f"{intervals.cell(loss, 1, 3)} {s['total']['loss_vs_copy_last']['verdict']}"]
            cells += [f"{intervals.cell(s['heads'][h]['acc'], 100, 1)} "
                      f"{s['heads'][h]['acc_vs_copy_last']['verdict']}" for h in heads]  # fmt: skip
            lines.append(f"| {games} | {who.replace('_', ' ')} | " + " | ".join(cells) + " |")
        s = held["per_character"]
        copy = [intervals.cell(s["total"]["copy_last_loss"], 1, 3)]
        copy += [intervals.cell(s["heads"][h]["copy_last_acc"], 100, 1) for h in heads]
        lines.append(f"| {games} | copy-last (calibrated) | " + " | ".join(copy) + " |")
        freq = [intervals.cell(s["total"]["frequency_loss"], 1, 3)] + [""] * len(heads)
        lines.append(f"| {games} | class frequency | " + " | ".join(freq) + " |")
        d = held["pooled_vs_per_character"]
        diff = [f"{intervals.cell(d['loss'], 1, 3)} {d['loss']['verdict']}"]
        diff += [f"{intervals.cell(d['heads'][h]['acc'], 100, 1)} {d['heads'][h]['acc']['verdict']}"
                 for h in heads]  # fmt: skip
        lines.append(f"| {games} | pooled - per character | " + " | ".join(diff) + " |")
    lines.append(
        "\nValue [95 % interval over validation games]; the word is the verdict against "
        "calibrated copy-last (policy rows) or for the pooled policy (difference row)."
    )
    return "\n".join(lines)
