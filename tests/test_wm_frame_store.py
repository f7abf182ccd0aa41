"""The world-model frame store (stage `wm_frames`): the same values as the in-memory encoding,
the same bytes for any worker count, clip starts numbered without a list of them, and no
half-written store after a failed build."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from mmlib.cli import main
from mmlib.data import store
from mmlib.errors import UsageError
from mmlib.worldmodel import data, frame_store, train
from mmlib.worldmodel.encoding import EncodingConfig

CFG = EncodingConfig()
VAL_FRAC, SEED = 0.25, 4


@pytest.fixture(scope="module")
def mini_ingest(ingested, tmp_path_factory) -> Path:
    """An ingest folder holding the five shortest usable games of the shared replays' ingest
    (not `artifacts/ingest`, which a fresh clone lacks: CI skipped these tests)."""
    games = store.read_games(ingested)
    usable = data.select_games(games)
    length = dict(zip(games["md5"].to_pylist(), games["playable_frames"].to_pylist(), strict=True))
    keep = sorted(usable, key=lambda m: length[m])[:5]
    out = tmp_path_factory.mktemp("mini") / "ingest"
    (out / "games").mkdir(parents=True)
    pq.write_table(games.filter(pc.is_in(games["md5"], pa.array(keep))), out / "games.parquet")
    for md5 in keep:
        (out / "games" / f"{md5}.parquet").symlink_to(ingested / "games" / f"{md5}.parquet")
    return out


@pytest.fixture(scope="module")
def stores(mini_ingest, tmp_path_factory) -> dict[int, Path]:
    """The store built inline (1 worker) and with a pool of 2."""
    root = tmp_path_factory.mktemp("stores")
    for workers in (1, 2):
        frame_store.build(mini_ingest, root / f"w{workers}", CFG, VAL_FRAC, SEED, workers)
    return {w: root / f"w{w}" for w in (1, 2)}


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _old_starts(offsets, span: int, step: int = 1) -> np.ndarray:
    """The list the old `Frames.starts` (and `validate`) built."""
    pairs = zip(offsets[:-1], offsets[1:], strict=True)
    return np.concatenate([np.arange(0, 0)] + [np.arange(a, b - span + 1, step) for a, b in pairs])


def test_the_store_holds_the_in_memory_encoding(mini_ingest, stores):
    memory = data.split(mini_ingest, CFG, VAL_FRAC, SEED)
    mapped = frame_store.load(stores[1], CFG, VAL_FRAC, SEED)
    for m, s in zip(memory, mapped, strict=True):
        assert s.md5s == m.md5s and np.array_equal(s.offsets, m.offsets)
        assert isinstance(s.floats, np.memmap) and s.floats.dtype == np.float32
        assert (s.ints.dtype, s.stage.dtype) == (np.int16, np.uint8)
        assert np.array_equal(s.floats, m.floats)
        assert np.array_equal(s.ints.astype(np.int64), m.ints.astype(np.int64))
        assert np.array_equal(s.stage.astype(np.int64), m.stage.astype(np.int64))
        starts = s.start_rows(CFG.context, np.arange(0, s.n_starts(CFG.context), 97))
        for a, b in zip(s.clip(starts, CFG.context), m.clip(starts, CFG.context), strict=True):
            assert a.dtype == b.dtype and torch.equal(a, b)
        assert s.clip(starts, CFG.context)[1].dtype == torch.int64
    manifest = frame_store.read_manifest(stores[1])
    assert manifest["split"] == {"val_frac": VAL_FRAC, "seed": SEED}
    assert [g["md5"] for g in manifest["val"]["games"]] == memory[1].md5s
    assert manifest["dtypes"]["ints"] == "int16"


def test_any_worker_count_writes_the_same_bytes(stores):
    one, two = _digests(stores[1]), _digests(stores[2])
    assert one == two
    assert set(one) >= {"manifest.json", "train/floats.npy", "val/offsets.npy"}


def test_start_numbers_map_to_the_rows_of_the_old_list(stores):
    train_frames, val_frames = frame_store.load(stores[1])
    gap = np.array([0, 30, 31, 31, 200, 205, 400])  # games too short for a clip, and an empty one
    synthetic = data.Frames(CFG, np.zeros(400), None, None, gap, [""] * 6)
    for frames in (train_frames, val_frames, synthetic):
        for width, step in ((10, 1), (60, 60), (30, 7), (209, 1)):
            old = _old_starts(frames.offsets, width + CFG.lead, step)
            n = frames.n_starts(width, step)
            assert n == len(old)
            assert np.array_equal(frames.start_rows(width, np.arange(n), step), old)
    with pytest.raises(IndexError):
        synthetic.start_rows(10, [synthetic.n_starts(10)])


def test_an_epoch_is_the_old_shuffle_of_every_window(stores):
    frames, _ = frame_store.load(stores[1])
    old = _old_starts(frames.offsets, CFG.context + CFG.lead)
    rng, again = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(2):
        expected = old[again.permutation(len(old))]
        assert np.array_equal(train.epoch_starts(frames, CFG.context, False, rng), expected)


def test_a_failed_build_leaves_the_previous_store(mini_ingest, stores, tmp_path, monkeypatch):
    out = tmp_path / "wm_frames"
    frame_store.build(mini_ingest, out, CFG, VAL_FRAC, SEED)
    before = _digests(out)
    tmp = tmp_path / ".wm_frames.tmp"
    calls = []

    def dies_on_game_3(job):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return frame_store_encode(job)

    frame_store_encode = frame_store._encode
    monkeypatch.setattr(frame_store, "_encode", dies_on_game_3)
    with pytest.raises(KeyboardInterrupt):
        frame_store.build(mini_ingest, out, EncodingConfig(version="v2.1"), VAL_FRAC, SEED)
    assert _digests(out) == before and not tmp.exists()
    monkeypatch.undo()
    (tmp / "train").mkdir(parents=True)  # what a SIGKILLed build leaves
    (tmp / "train" / "floats.npy").write_bytes(b"half")
    frame_store.build(mini_ingest, out, CFG, VAL_FRAC, SEED)
    assert _digests(out) == _digests(stores[1]) and not tmp.exists()


def test_a_store_of_another_encoding_or_split_is_refused(stores, tmp_path):
    with pytest.raises(UsageError, match="encoding"):
        frame_store.load(stores[1], EncodingConfig(version="v2.1"))
    with pytest.raises(UsageError, match="seed"):
        frame_store.load(stores[1], CFG, VAL_FRAC, SEED + 1)
    with pytest.raises(UsageError, match="mmlib wm-frames"):
        frame_store.load(tmp_path / "nothing")


def test_the_command_builds_the_store_from_params(mini_ingest, stores, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(
        "profile: smoke\nworld_model:\n  val_frac: 0.25\n  split_seed: 4\n"
        "  encoding: {version: v2, contract: input, state_age_embed: false, context: 10}\n"
        "  smoke: {workers: 1}\n"
    )
    out = tmp_path / "wm_frames"
    argv = ["wm-frames", "--ingest", str(mini_ingest), "-o", str(out), "--params", str(params)]
    assert main([*argv, "-q"]) == 0
    assert "train frames" in capsys.readouterr().out
    assert _digests(out) == _digests(stores[1])


def test_max_games_takes_a_seeded_sample_before_the_split(mini_ingest):
    """The cpu profile's `world_model.max_games`: a fixed sample of the usable games, split as
    before; 0 (or more than there are) keeps every game, so the smoke split is unchanged."""
    every = data.split_games(mini_ingest, VAL_FRAC, SEED)
    assert data.split_games(mini_ingest, VAL_FRAC, SEED, max_games=0) == every
    assert data.split_games(mini_ingest, VAL_FRAC, SEED, max_games=99) == every
    train, val = data.split_games(mini_ingest, VAL_FRAC, SEED, max_games=3)
    assert len(train) + len(val) == 3 and val and train
    assert set(train + val) < set(every[0] + every[1])
    assert data.split_games(mini_ingest, VAL_FRAC, SEED, max_games=3) == (train, val)
