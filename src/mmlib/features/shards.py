"""Training shards: per character, every perspective's features and targets as memory-mapped
arrays, split by replay md5 (SPEC 3.8-3.11, in mmlib's layout).

Alignment (v2, SPEC 3.9): row i holds the input of frame i (the state after frame i and the
controller that produced it) and, as target, the controller of frame i + 1. One frame per game
is lost. `target_shift=0` builds the leaked alignment, only to show that the leak check sees it.

Layout of `<out>/<character>/`:
    manifest.json                 columns, split, games and frame counts, leak rate
    train/ and val/:
        ints.npy     (N, 5) int16    stage, self/opp character, self/opp action (dense indices)
        floats.npy   (N, F) float32  self numeric | self flags | opp numeric | opp flags |
                                     self controller one-hot (56)
        targets.npy  (N, 4) int16    next controller: shoulder, c-stick, main stick, button
        targets_raw.npy (N, 5) float32  next controller: main x, y, c x, y, shoulder
        offsets.npy  (G + 1,) int64  the first row of each game; the last is N
    the five metadata JSONs of the norm stage (the published per-character data layout)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from mmlib.atomic import write_json
from mmlib.features import build, controller, dataset
from mmlib.features.schema import FeatureSchema

TARGET_COLUMNS = ("shoulder", "c", "main", "button")  # the order the model's heads predict in
TARGET_RAW_COLUMNS = ("main_x", "main_y", "c_x", "c_y", "shoulder")
KNEE_BEND = 24  # action JUMPSQUAT (dense index = raw id)
SPLITS = ("train", "val")


def perspective_rows(
    raw_cols: dict[str, np.ndarray], schema: FeatureSchema, norm: build.Norm, target_shift: int
) -> dict[str, np.ndarray]:
    """One perspective's shard rows: inputs of frames [0, n - shift), targets of [shift, n)."""
    ints, floats = build.pack(build.features(raw_cols, schema, norm))
    classes = build.controller_classes(raw_cols)
    targets = np.stack([classes[k] for k in TARGET_COLUMNS], axis=-1).astype(np.int16)
    targets_raw = np.stack([raw_cols[f"self_{k}"] for k in TARGET_RAW_COLUMNS], axis=-1).astype(
        np.float32
    )
    n = len(ints) - target_shift
    return {
        "ints": ints[:n],
        "floats": floats[:n],
        "targets": targets[target_shift:],
        "targets_raw": targets_raw[target_shift:],
    }


def _empty_rows(schema: FeatureSchema) -> dict[str, np.ndarray]:
    width = len(build.float_columns(schema))
    return {
        "ints": np.zeros((0, len(build.INT_COLUMNS)), np.int16),
        "floats": np.zeros((0, width), np.float32),
        "targets": np.zeros((0, len(TARGET_COLUMNS)), np.int16),
        "targets_raw": np.zeros((0, len(TARGET_RAW_COLUMNS)), np.float32),
    }


def jump_onset_leak(targets: np.ndarray, ints: np.ndarray, offsets: np.ndarray) -> dict:
    """SPEC 3.9, per game: target JUMP onsets (JUMP now, not JUMP on the row before) whose
    input already shows the jump squat (KNEE_BEND). A correct alignment leaves a few percent
    (double jumps pressed while a new squat starts); the leaked one, most onsets."""
    button = targets[:, TARGET_COLUMNS.index("button")]
    action = ints[:, build.INT_COLUMNS.index("self_action")]
    onsets = leaked = 0
    for start, end in zip(offsets[:-1], offsets[1:], strict=True):
        b, a = button[start:end], action[start:end]
        onset = (b[1:] == controller.BTN_JUMP) & (b[:-1] != controller.BTN_JUMP)
        onsets += int(onset.sum())
        leaked += int((onset & (a[1:] == KNEE_BEND)).sum())
    return {"onsets": onsets, "leaked": leaked, "rate": leaked / onsets if onsets else 0.0}


def build_character(
    ingest_dir: Path,
    norm_dir: Path,
    out_dir: Path,
    character: str,
    schema: FeatureSchema,
    settings: dict,
    target_shift: int = 1,
    data: dataset.CharacterData | None = None,
) -> dict:
    """Write `<out_dir>/<character>/` (built beside it, then renamed into place) and return its
    figures for the metrics file. `data`: the character's split, if already read."""
    data = data or dataset.character_data(ingest_dir, character, settings)
    norm = dataset.read_norm(norm_dir / character)
    final = out_dir / character
    tmp = out_dir / f".{character}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    manifest: dict = {
        "character": character,
        "schema": {"numeric": list(schema.numeric), "flags": list(schema.flags)},
        "int_columns": list(build.INT_COLUMNS),
        "float_columns": build.float_columns(schema),
        "target_columns": list(TARGET_COLUMNS),
        "target_raw_columns": list(TARGET_RAW_COLUMNS),
        "target_shift": target_shift,
        "window": settings["window"],
        "split": data.split,
    }
    for split in SPLITS:
        views = getattr(data, split)
        parts = [
            perspective_rows(dataset.perspective_raw(ingest_dir, v), schema, norm, target_shift)
            for v in views
        ]
        lengths = [len(p["ints"]) for p in parts]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
        if not parts:  # a character with one game has no validation rows: empty arrays
            arrays = _empty_rows(schema)
        for name, values in arrays.items():
            if not np.isfinite(values).all():
                raise ValueError(f"{character} {split}: non-finite values in {name}")
        (tmp / split).mkdir(parents=True)
        for name, values in arrays.items():
            np.save(tmp / split / f"{name}.npy", values)
        np.save(tmp / split / "offsets.npy", offsets)
        manifest[split] = {
            "games": [
                {"md5": v.md5, "self_port": v.self_port, "opp_port": v.opp_port, "rows": n}
                for v, n in zip(views, lengths, strict=True)
            ],
            "rows": int(offsets[-1]),
        }
        if split == "train":
            manifest["jump_onset_leak"] = jump_onset_leak(
                arrays["targets"], arrays["ints"], offsets
            )
    for name in dataset.NORM_FILES:
        shutil.copyfile(norm_dir / character / name, tmp / name)
    write_json(tmp / "manifest.json", manifest)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return {
        "train_games": len(manifest["split"]["train_md5s"]),
        "val_games": len(manifest["split"]["val_md5s"]),
        "train_perspectives": len(data.train),
        "val_perspectives": len(data.val),
        "train_rows": manifest["train"]["rows"],
        "val_rows": manifest["val"]["rows"],
        "jump_onset_leak": manifest["jump_onset_leak"],
    }


def build_all(
    ingest_dir: Path,
    norm_dir: Path,
    audit_json: Path,
    out_dir: Path,
    characters: list[str],
    settings: dict,
    metrics_path: Path | None = None,
) -> dict:
    """Shards for every character, then the metrics file (leak rate, rows, games)."""
    from tqdm.auto import tqdm

    from mmlib.features.schema import load_schema
    from mmlib.features.split import character_slug

    data = {}
    for name in characters:  # every user mistake is reported before any work starts
        character_slug(name)
        dataset.read_norm(norm_dir / name)
        data[name] = dataset.character_data(ingest_dir, name, settings)
    schema = load_schema(audit_json)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_character = {
        name: build_character(
            ingest_dir, norm_dir, out_dir, name, schema, settings, data=data[name]
        )
        for name in tqdm(characters, desc="shards", unit="character")
    }
    metrics = {"characters": per_character, "window": settings["window"]}
    if metrics_path is not None:
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(metrics_path, metrics)
    return metrics
