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

Each split's files are allocated at their final size (rows are known from the games table) and
filled one perspective at a time, over `workers` processes, each at its game's offset: memory
is one perspective per worker, and the bytes are the same for any worker count.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mmlib import npy_files
from mmlib.atomic import write_json
from mmlib.features import build, controller, dataset
from mmlib.features.schema import FeatureSchema
from mmlib.features.split import Perspective
from mmlib.parallel import ordered_map

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


def row_layout(schema: FeatureSchema) -> dict[str, tuple[int, np.dtype]]:
    """Each shard array's width and dtype (every array has one row per aligned frame)."""
    return {
        "ints": (len(build.INT_COLUMNS), np.dtype(np.int16)),
        "floats": (len(build.float_columns(schema)), np.dtype(np.float32)),
        "targets": (len(TARGET_COLUMNS), np.dtype(np.int16)),
        "targets_raw": (len(TARGET_RAW_COLUMNS), np.dtype(np.float32)),
    }


def _empty_rows(schema: FeatureSchema) -> dict[str, np.ndarray]:
    return {name: np.zeros((0, w), dt) for name, (w, dt) in row_layout(schema).items()}


def _jump_onsets(targets: np.ndarray, ints: np.ndarray) -> tuple[int, int]:
    """One game's target JUMP onsets, and those whose input already shows the jump squat."""
    b = targets[:, TARGET_COLUMNS.index("button")]
    a = ints[:, build.INT_COLUMNS.index("self_action")]
    onset = (b[1:] == controller.BTN_JUMP) & (b[:-1] != controller.BTN_JUMP)
    return int(onset.sum()), int((onset & (a[1:] == KNEE_BEND)).sum())


def _leak(counts: list[tuple[int, int]]) -> dict:
    onsets, leaked = sum(c[0] for c in counts), sum(c[1] for c in counts)
    return {"onsets": onsets, "leaked": leaked, "rate": leaked / onsets if onsets else 0.0}


def jump_onset_leak(targets: np.ndarray, ints: np.ndarray, offsets: np.ndarray) -> dict:
    """SPEC 3.9, per game: target JUMP onsets (JUMP now, not JUMP on the row before) whose
    input already shows the jump squat (KNEE_BEND). A correct alignment leaves a few percent
    (double jumps pressed while a new squat starts); the leaked one, most onsets."""
    games = zip(offsets[:-1], offsets[1:], strict=True)
    return _leak([_jump_onsets(targets[a:b], ints[a:b]) for a, b in games])


def allocate(split_dir: Path, schema: FeatureSchema, rows: int) -> None:
    """The split's shard files at their final size, in `.npy` format."""
    split_dir.mkdir(parents=True)
    for name, (width, dtype) in row_layout(schema).items():
        npy_files.allocate(split_dir / f"{name}.npy", dtype, (rows, width))


class _Job(NamedTuple):
    ingest_dir: Path
    view: Perspective
    schema: FeatureSchema
    norm: build.Norm
    target_shift: int
    split_dir: Path
    first_row: int
    rows: int
    label: str  # "<character> <split>", for errors


def write_perspective(job: _Job) -> tuple[int, int]:
    """One perspective's rows into the split's files at its offset (a process-pool job);
    returns its JUMP-onset counts."""
    raw_cols = dataset.perspective_raw(job.ingest_dir, job.view)
    rows = perspective_rows(raw_cols, job.schema, job.norm, job.target_shift)
    if len(rows["ints"]) != job.rows:
        raise ValueError(
            f"{job.label} {job.view.md5}: {len(rows['ints'])} rows, the games table says "
            f"{job.rows}; re-run the ingest"
        )
    for name, values in rows.items():
        if not np.isfinite(values).all():
            raise ValueError(f"{job.label}: non-finite values in {name} ({job.view.md5})")
        npy_files.write_rows(job.split_dir / f"{name}.npy", job.first_row, values)
    return _jump_onsets(rows["targets"], rows["ints"])


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
        lengths = [n - target_shift for n in dataset.playable_frames(ingest_dir, views)]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        allocate(tmp / split, schema, int(offsets[-1]))
        jobs = [
            _Job(Path(ingest_dir), v, schema, norm, target_shift, tmp / split, int(first), n,
                 f"{character} {split}")
            for v, first, n in zip(views, offsets[:-1], lengths, strict=True)
        ]  # fmt: skip
        onsets = list(ordered_map(write_perspective, jobs, settings.get("workers", 1)))
        np.save(tmp / split / "offsets.npy", offsets)
        manifest[split] = {
            "games": [
                {"md5": v.md5, "self_port": v.self_port, "opp_port": v.opp_port, "rows": n}
                for v, n in zip(views, lengths, strict=True)
            ],
            "rows": int(offsets[-1]),
        }
        if split == "train":
            manifest["jump_onset_leak"] = _leak(onsets)
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
    from tqdm import tqdm  # not tqdm.auto: its warning writes a path into a notebook

    from mmlib.features.schema import load_schema
    from mmlib.features.split import character_slug

    for name in characters:  # every user mistake is reported before any work starts
        character_slug(name)
    data, skipped = dataset.with_games(ingest_dir, characters, settings)
    for name, why in dataset.norm_skipped(norm_dir).items():
        if data.pop(name, None) is not None:
            skipped[name] = why
    if not data:
        raise dataset.NoGames(next(iter(skipped.values())))
    for name in data:
        dataset.read_norm(norm_dir / name)
    schema = load_schema(audit_json)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_character = {
        name: build_character(ingest_dir, norm_dir, out_dir, name, schema, settings, data=d)
        for name, d in tqdm(data.items(), desc="shards", unit="character")
    }
    metrics = {"characters": per_character, "window": settings["window"]}
    if skipped:  # characters the profile lists that have no usable game here, or norm skipped
        metrics["skipped"] = skipped
    if metrics_path is not None:
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(metrics_path, metrics)
    return metrics
