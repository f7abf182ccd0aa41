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
from mmlib.features.moments import Moments, merge_all
from mmlib.features.schema import FeatureSchema
from mmlib.features.split import POOLED, Perspective, character_slug, perspectives, split_md5s
from mmlib.parallel import ordered_map

NORM_FILES = (
    "mimic_norm.json",
    "norm_stats.json",
    "cat_maps.json",
    "stick_clusters.json",
    "controller_combos.json",
)
N_CLASSES = {
    "main": controller.N_MAIN,
    "c": controller.N_C,
    "button": controller.N_BUTTON,
    "shoulder": controller.N_SHOULDER,
}


class NoGames(UsageError):
    """A listed character has no usable game in this ingest."""


SKIPPED = "skipped.json"  # in the norm folder: {character: why}, the listed ones it fitted none for


def with_games(
    ingest_dir: Path, characters: list[str], settings: dict
) -> tuple[dict[str, CharacterData], dict[str, str]]:
    """Each listed character's data, and the ones without a usable game (name -> why), which
    the stages skip: a profile lists the characters a large set has, a small one may lack some.
    When none of them has a game, that is the user's mistake: NoGames."""
    found, skipped = {}, {}
    for character in characters:
        character_slug(character)  # a misspelt name is an error, not a character without games
        try:
            found[character] = character_data(ingest_dir, character, settings)
        except NoGames as e:
            skipped[character] = str(e)
    if not found and skipped:
        raise NoGames(next(iter(skipped.values())))
    return found, skipped


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
    views = perspectives(
        games, character, settings.get("include_cpu", False), settings.get("include_quits", False)
    )
    if len(views) == 0:
        raise NoGames(f"no usable 1v1 game in {ingest_dir} has {character} as a player")
    if character == POOLED:
        in_val = pooled_validation(ingest_dir, settings)
        in_train = {p.md5 for p in views} - in_val
    else:  # validation games are complete ones; quit-ended games only add training data
        complete = set(games.filter(games["usable_1v1"])["md5"].to_pylist())
        md5s = [p.md5 for p in views if p.md5 in complete]
        n_val = settings.get("min_val_games", 1)
        in_train = set(split_md5s(md5s, settings["val_frac"], settings["seed"], n_val)[0])
        in_train |= {p.md5 for p in views if p.md5 not in complete}
    train = [p for p in views if p.md5 in in_train]
    val = [p for p in views if p.md5 not in in_train]
    return CharacterData(character, train, val, settings["seed"], settings["val_frac"])


def pooled_validation(ingest_dir: Path, settings: dict) -> set[str]:
    """The pooled model's validation games: every listed character's own, so the pooled and the
    per-character models are scored on the same games and neither trained on them."""
    held = set()
    for character in settings.get("characters") or []:
        if character != POOLED:
            try:
                held |= {p.md5 for p in character_data(ingest_dir, character, settings).val}
            except NoGames:
                continue
    if not held:
        raise UsageError(f"the pooled data set ({POOLED}) needs a listed character's split")
    return held


def perspective_raw(ingest_dir: Path, view: Perspective) -> dict[str, np.ndarray]:
    """Raw columns of one perspective, playable frames only."""
    frames = read_frames(ingest_dir, view.md5)
    return raw.from_table(frames, view.version, view.stage_id, view.self_port, view.opp_port)


class Summary(NamedTuple):
    """What the norm stage needs of one perspective, so that no stage holds a character's frames."""

    moments: dict[str, Moments]  # per numeric column, both players' values
    classes: dict[str, np.ndarray]  # the self player's frames per class, per head
    frames: int
    before: np.ndarray | None  # both players' numeric values (2T, C), if in the plotted sample


def summarise(job: tuple[Path, Perspective, FeatureSchema, bool]) -> Summary:
    """One perspective's `Summary` (a process-pool job: ingest_dir, view, schema, keep values)."""
    ingest_dir, view, schema, keep = job
    raw = perspective_raw(ingest_dir, view)
    before = np.concatenate([build.numeric_values(raw, p, schema) for p in ("self_", "opp_")])
    moments = {name: Moments.of(name, before[:, i]) for i, name in enumerate(schema.numeric)}
    classes = {
        head: np.bincount(values, minlength=N_CLASSES[head])
        for head, values in build.controller_classes(raw).items()
    }
    return Summary(moments, classes, len(raw["frame"]), before if keep else None)


def fit_norm(summaries: list[Summary], schema: FeatureSchema) -> build.Norm:
    """Fit the transforms on un-normalised features, both players of every frame pooled, so
    `self_` and `opp_` statistics are the same (as published). Missing values are left out."""
    pooled = {name: merge_all([s.moments[name] for s in summaries]) for name in schema.numeric}
    mimic_norm = transforms.fit_mimic_norm(pooled)
    stats = transforms.fit_norm_stats(pooled)
    norm_stats = {f"{p}{name}": stats[name] for p in ("self_", "opp_") for name in stats}
    return build.Norm(mimic_norm, norm_stats)


def plotted_sample(views: list[Perspective], frames: list[int], cap: int, seed: int) -> set[int]:
    """Indices of the perspectives whose values the norm report plots: all of them when they
    hold at most `cap` frames, else a seeded draw that stays under it (at least one)."""
    if sum(frames) <= cap:
        return set(range(len(views)))
    chosen, total = set(), 0
    for i in np.random.default_rng(seed).permutation(len(views)):
        if chosen and total + frames[i] > cap:
            continue
        chosen.add(int(i))
        total += frames[i]
    return chosen


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
    classes: dict[str, np.ndarray]  # the training frames per controller class, per head
    frames: int  # training frames (perspectives' playable frames)
    before: np.ndarray  # a bounded sample's numeric values (N, C), NaN where not recorded


def fit_characters(
    ingest_dir: Path, characters: list[str], schema: FeatureSchema, settings: dict, out_dir: Path
) -> dict[str, Fitted]:
    """The norm stage: per character, fit on its training perspectives only and write the five
    metadata files to `<out_dir>/<character>/`. Perspectives are read one at a time, over
    `settings["workers"]` processes; the files are the same for any worker count."""
    from tqdm import tqdm  # not tqdm.auto: its warning writes a path into a notebook

    found, skipped = with_games(ingest_dir, characters, settings)
    for why in skipped.values():
        print(f"norm: skipped: {why}")
    fitted: dict[str, Fitted] = {}
    for character, data in found.items():
        lengths = playable_frames(ingest_dir, data.train)
        keep = plotted_sample(data.train, lengths, settings["sample_frames"], settings["seed"])
        jobs = [(Path(ingest_dir), v, schema, i in keep) for i, v in enumerate(data.train)]
        summaries = list(
            tqdm(
                ordered_map(summarise, jobs, settings.get("workers", 1)),
                total=len(jobs),
                desc=f"norm {character}",
                unit="perspective",
            )
        )
        missing = unrecorded(summaries, schema)
        if missing:  # a column the model would see at play time but never in training
            versions = ", ".join(sorted({".".join(map(str, v.version)) for v in data.train}))
            skipped[character] = (
                f"no training frame of {character} records {', '.join(missing)} "
                f"(its training games are from Slippi {versions}); add newer replays"
            )
            print(f"norm: skipped: {skipped[character]}")
            continue
        norm = fit_norm(summaries, schema)
        write_metadata(out_dir / character, metadata_files(norm, data.train))
        classes = {h: sum(s.classes[h] for s in summaries) for h in N_CLASSES}
        before = [s.before for s in summaries if s.before is not None]
        frames = sum(s.frames for s in summaries)
        fitted[character] = Fitted(data, norm, classes, frames, np.concatenate(before))
    if not fitted:
        raise NoGames(next(iter(skipped.values())))
    write_json(out_dir / SKIPPED, skipped)  # shards skips the same characters
    return fitted


def unrecorded(summaries: list[Summary], schema: FeatureSchema) -> list[str]:
    """The numeric columns no frame of these perspectives records (old replays leave some out)."""
    return [n for n in schema.numeric if not any(s.moments[n].count for s in summaries)]


def norm_skipped(norm_dir: Path) -> dict[str, str]:
    """The characters the norm stage skipped, and why (none for a folder made before it said)."""
    path = norm_dir / SKIPPED
    return json.loads(path.read_text()) if path.is_file() else {}


def playable_frames(ingest_dir: Path, views: list[Perspective]) -> list[int]:
    """Each perspective's playable frames (its rows before alignment), from the games table."""
    games = read_games(ingest_dir)
    count = dict(zip(games["md5"].to_pylist(), games["playable_frames"].to_pylist(), strict=True))
    return [count[v.md5] for v in views]
