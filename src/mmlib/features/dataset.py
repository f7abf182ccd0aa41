"""A character's BC data: its perspectives, their split, their raw columns, and the fitted
normalisation with the five metadata files of the published layout (SPEC 3.6).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mmlib.atomic import write_json
from mmlib.data.store import read_frames, read_games
from mmlib.errors import UsageError
from mmlib.features import build, controller, raw, transforms
from mmlib.features.schema import FeatureSchema
from mmlib.features.split import Perspective, perspectives, split_md5s

NORM_FILES = (
    "mimic_norm.json",
    "norm_stats.json",
    "cat_maps.json",
    "stick_clusters.json",
    "controller_combos.json",
)


@dataclass(frozen=True)
class CharacterData:
    character: str
    train: list[Perspective]
    val: list[Perspective]
    seed: int
    val_frac: float

    @property
    def split(self) -> dict:
        """The split as recorded in metadata: seed, fraction and the md5s on each side."""
        return {
            "seed": self.seed,
            "val_frac": self.val_frac,
            "train_md5s": sorted({p.md5 for p in self.train}),
            "val_md5s": sorted({p.md5 for p in self.val}),
        }


def character_data(ingest_dir: Path, character: str, settings: dict) -> CharacterData:
    """The character's perspectives of usable games, split by md5 (`features` params)."""
    if not (Path(ingest_dir) / "games.parquet").exists():
        raise UsageError(f"no ingest at {ingest_dir} (games.parquet); run `dvc repro ingest`")
    games = read_games(ingest_dir)
    views = perspectives(games, character, settings.get("include_cpu", False))
    if len(views) == 0:
        raise UsageError(f"no usable 1v1 game in {ingest_dir} has {character} as a player")
    train_md5, _ = split_md5s([p.md5 for p in views], settings["val_frac"], settings["seed"])
    in_train = set(train_md5)
    train = [p for p in views if p.md5 in in_train]
    val = [p for p in views if p.md5 not in in_train]
    return CharacterData(character, train, val, settings["seed"], settings["val_frac"])


def perspective_raw(ingest_dir: Path, view: Perspective) -> dict[str, np.ndarray]:
    """Raw columns of one perspective, playable frames only."""
    frames = read_frames(ingest_dir, view.md5)
    return raw.from_table(frames, view.version, view.stage_id, view.self_port, view.opp_port)


def fit_norm(raws: list[dict[str, np.ndarray]], schema: FeatureSchema) -> build.Norm:
    """Fit the transforms on un-normalised features, both players of every frame pooled, so
    `self_` and `opp_` statistics are the same (as published). Missing values are left out."""
    values: dict[str, list[np.ndarray]] = {name: [] for name in schema.numeric}
    for r in raws:
        for p in ("self_", "opp_"):
            numeric = build.numeric_values(r, p, schema)
            for i, name in enumerate(schema.numeric):
                values[name].append(numeric[~np.isnan(numeric[:, i]), i])
    pooled = {name: np.concatenate(v) if v else np.zeros(0) for name, v in values.items()}
    mimic_norm = transforms.fit_mimic_norm(pooled)
    stats = transforms.fit_norm_stats(pooled)
    norm_stats = {f"{p}{name}": stats[name] for p in ("self_", "opp_") for name in stats}
    return build.Norm(mimic_norm, norm_stats)


def metadata_files(norm: build.Norm, train: list[Perspective]) -> dict[str, dict]:
    """The five metadata JSONs of the published per-character layout (SPEC 3.6)."""
    ports = sorted({0} | {p.self_port for p in train} | {p.opp_port for p in train})
    port_map = {str(v): i for i, v in enumerate(ports)}
    return {
        "mimic_norm.json": norm.mimic_norm,
        "norm_stats.json": norm.norm_stats,
        "cat_maps.json": {"self_port": port_map, "opp_port": port_map},
        "stick_clusters.json": controller.stick_clusters_json(),
        "controller_combos.json": controller.controller_combos_json(),
    }


def write_metadata(directory: Path, files: dict[str, dict]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        write_json(directory / name, content)


def read_norm(directory: Path) -> build.Norm:
    """The Norm of a metadata directory (mimic_norm.json + norm_stats.json)."""
    try:
        return build.Norm(
            json.loads((directory / "mimic_norm.json").read_text()),
            json.loads((directory / "norm_stats.json").read_text()),
        )
    except FileNotFoundError as e:
        missing = Path(e.filename).name
        raise UsageError(f"no {missing} in {directory}; run `dvc repro norm`") from None


class Fitted(NamedTuple):
    data: CharacterData
    norm: build.Norm
    raws: list[dict[str, np.ndarray]]  # the training perspectives' raw columns, read once


def fit_characters(
    ingest_dir: Path, characters: list[str], schema: FeatureSchema, settings: dict, out_dir: Path
) -> dict[str, Fitted]:
    """The norm stage: per character, fit on its training perspectives only and write the five
    metadata files to `<out_dir>/<character>/`."""
    fitted = {}
    for character in characters:
        data = character_data(ingest_dir, character, settings)
        raws = [perspective_raw(ingest_dir, v) for v in data.train]
        norm = fit_norm(raws, schema)
        write_metadata(out_dir / character, metadata_files(norm, data.train))
        fitted[character] = Fitted(data, norm, raws)
    return fitted
