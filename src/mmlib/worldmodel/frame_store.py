"""The world-model frames, encoded once into memory-mapped arrays per split (stage `wm_frames`).

Encoding every game in memory costs ~0.7 KB a frame (int64 categoricals), ~140 GB for 22K games;
the store holds the same values in ~0.4 KB a frame on disk, and a reader maps it, so a training
run touches only the rows of its batches.

Layout of `artifacts/wm_frames/`:
    manifest.json   format, encoding, column names, dtypes, the split and its games (md5, frames)
    train/ and val/:
        floats.npy   (N, 2, F) float32   per player: `encoding.floats`, stored already scaled
        ints.npy     (N, 2, I) int16     per player: `encoding.ints` (data.INT_DTYPE)
        stage.npy    (N,) uint8          the stage id, clipped into its vocabulary
        offsets.npy  (G + 1,) int64      game g is rows offsets[g]:offsets[g + 1]

Each game's length is known before it is encoded (the games table's `playable_frames`, checked
against the encoding), so every array is preallocated on disk and filled game by game: memory
is a few games per worker, whatever the dataset. Workers encode games, the parent writes each at
its own rows, so the bytes do not depend on the worker count. The store is built in a sibling
folder and renamed into place: a killed build leaves the previous store or none, never part of
one.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import closing
from pathlib import Path

import numpy as np

from mmlib import npy_files
from mmlib.atomic import write_json
from mmlib.data import store
from mmlib.errors import UsageError
from mmlib.worldmodel import data
from mmlib.worldmodel.data import Frames
from mmlib.worldmodel.encoding import EncodingConfig

FORMAT = "mmlib-wm-frames-1"
SPLITS = ("train", "val")
MANIFEST = "manifest.json"
ARRAYS = ("floats", "ints", "stage")


def _encode(job: tuple[str, str, int, dict]) -> tuple[np.ndarray, ...]:
    """One game's (floats, ints, stage) in the store's dtypes; runs in a worker process."""
    ingest_dir, md5, stage_id, cfg = job
    table = data.read_game(Path(ingest_dir), md5)
    return data.encode_game(table, stage_id, EncodingConfig(**cfg))


def _allocate(folder: Path, n: int, cfg: EncodingConfig) -> dict[str, Path]:
    """The split's arrays, allocated on disk at their final size (as .npy files)."""
    folder.mkdir(parents=True)
    shapes = {
        "floats": ((n, 2, len(cfg.floats)), np.float32),
        "ints": ((n, 2, len(cfg.ints)), data.INT_DTYPE),
        "stage": ((n,), data.STAGE_DTYPE),
    }
    for name, (shape, dtype) in shapes.items():
        npy_files.allocate(folder / f"{name}.npy", dtype, shape)
    return {name: folder / f"{name}.npy" for name in shapes}


def _replace(tmp: Path, final: Path) -> None:
    """Rename the finished build onto `final`; an old store is moved aside first, then removed."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def build(ingest_dir: Path, out_dir: Path, cfg: EncodingConfig, val_frac: float, seed: int,
          workers: int | None = 1, progress: bool = False, max_games: int = 0) -> dict:  # fmt: skip
    """Encode the usable games of an ingest into a store at `out_dir` (split by md5 as
    `data.split_games`, at most `max_games` of them); returns the manifest. `workers`: 0 or
    None = one per CPU core."""
    ingest_dir, out_dir = Path(ingest_dir), Path(out_dir)
    games = store.read_games(ingest_dir).to_pylist()
    length = {g["md5"]: int(g["playable_frames"]) for g in games}
    stage_of = {g["md5"]: int(g["stage_id"]) for g in games}
    chosen = data.split_games(ingest_dir, val_frac, seed, max_games)
    split = dict(zip(SPLITS, chosen, strict=True))
    offsets = {s: np.cumsum([0] + [length[m] for m in split[s]], dtype=np.int64) for s in SPLITS}
    manifest = _manifest(cfg, val_frac, seed, split, length)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # what a killed build left
    try:
        _fill(tmp, ingest_dir, cfg, split, stage_of, offsets, workers, progress)
        write_json(tmp / MANIFEST, manifest)
        _replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _manifest(cfg: EncodingConfig, val_frac: float, seed: int, split: dict, length: dict) -> dict:
    """What the store holds: its encoding and dtypes, the split, and each split's games."""
    dtypes = {"floats": np.float32, "ints": data.INT_DTYPE, "stage": data.STAGE_DTYPE}
    manifest = {
        "format": FORMAT,
        "encoding": cfg.to_dict(),
        "columns": {"floats": list(cfg.floats), "ints": list(cfg.ints)},
        "dtypes": {k: np.dtype(v).name for k, v in dtypes.items()} | {"offsets": "int64"},
        "split": {"val_frac": val_frac, "seed": seed},
    }
    for s in SPLITS:
        games = [{"md5": m, "frames": length[m]} for m in split[s]]
        manifest[s] = {"frames": sum(g["frames"] for g in games), "games": games}
    return manifest


def _fill(tmp: Path, ingest_dir: Path, cfg: EncodingConfig, split: dict, stage_of: dict,
          offsets: dict, workers: int | None, progress: bool) -> None:  # fmt: skip
    """Every split's arrays in `tmp`, each game encoded by a worker and written at its rows."""
    from tqdm import tqdm  # not tqdm.auto: its warning writes a path into a notebook

    from mmlib.parallel import ordered_map

    arrays = {s: _allocate(tmp / s, int(offsets[s][-1]), cfg) for s in SPLITS}
    for s in SPLITS:
        np.save(tmp / s / "offsets.npy", offsets[s])
    where = [(s, g) for s in SPLITS for g in range(len(split[s]))]
    jobs = [(str(ingest_dir), split[s][g], stage_of[split[s][g]], cfg.to_dict()) for s, g in where]
    with closing(ordered_map(_encode, jobs, workers)) as results:
        bar = tqdm(zip(where, results, strict=True), total=len(jobs), desc="wm frames",
                   unit="game", disable=not progress)  # fmt: skip
        for (s, g), encoded in bar:
            _write(arrays[s], encoded, offsets[s][g], offsets[s][g + 1], split[s][g])


def _write(arrays: dict[str, Path], encoded, a: int, b: int, md5: str) -> None:
    """One encoded game into rows a:b, once its length and values are checked."""
    if len(encoded[0]) != b - a:
        raise ValueError(f"{md5}: {len(encoded[0])} encoded frames, the games table says {b - a}")
    if not np.isfinite(encoded[0]).all():
        raise ValueError(f"{md5}: non-finite encoded floats")
    for name, values in zip(ARRAYS, encoded, strict=True):
        npy_files.write_rows(arrays[name], a, values)


def read_manifest(store_dir: Path) -> dict:
    """A store's manifest, or a one-line UsageError saying how to build one."""
    path = Path(store_dir) / MANIFEST
    if not path.is_file():
        raise UsageError(f"no world-model frame store at {store_dir}; run `mmlib wm-frames`")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise UsageError(f"{path}: not a {FORMAT} store")
    return manifest


def load(store_dir: Path, cfg: EncodingConfig | None = None, val_frac: float | None = None,
         seed: int | None = None) -> tuple[Frames, Frames]:  # fmt: skip
    """(train, val) Frames memory-mapped from a store. A UsageError if it was built with another
    encoding or split than the caller's (`cfg`, `val_frac`, `seed`; None: take the store's)."""
    store_dir = Path(store_dir)
    manifest = read_manifest(store_dir)
    built = EncodingConfig(**manifest["encoding"])
    asked = {"encoding": cfg, "val_frac": val_frac, "seed": seed}
    found = {"encoding": built, **manifest["split"]}
    for key, want in asked.items():
        if want is not None and want != found[key]:
            raise UsageError(
                f"{store_dir} holds {key} {found[key]}, not {want}; rebuild it (`mmlib wm-frames`)"
            )
    return tuple(_split(store_dir / s, built, manifest[s]) for s in SPLITS)


def _split(folder: Path, cfg: EncodingConfig, entry: dict) -> Frames:
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    offsets = np.load(folder / "offsets.npy")
    md5s = [g["md5"] for g in entry["games"]]
    if len(offsets) != len(md5s) + 1 or offsets[-1] != len(arrays["floats"]):
        raise UsageError(f"{folder}: its offsets do not match its manifest; rebuild it")
    return Frames(cfg, arrays["floats"], arrays["ints"], arrays["stage"], offsets, md5s)
