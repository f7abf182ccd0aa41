"""The world-model frame store (stage `wm_frames`): the in-memory encoding, on disk, mapped."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch

from mmlib.errors import UsageError
from mmlib.worldmodel import data, frame_store, train
from mmlib.worldmodel.encoding import EncodingConfig

CFG = EncodingConfig(version="v2", contract="input", context=10)
VAL_FRAC, SEED = 0.25, 4  # params.yaml world_model


@pytest.fixture(scope="module")
def stores(ingested, tmp_path_factory) -> dict[int, Path]:
    """The session ingest's store, built with one worker and with two."""
    tmp = tmp_path_factory.mktemp("wm_frames")
    for workers in (1, 2):
        frame_store.build(ingested, tmp / str(workers), CFG, VAL_FRAC, SEED, workers)
    return {w: tmp / str(w) for w in (1, 2)}


def test_the_store_holds_the_in_memory_encoding(stores, ingested):
    mapped = frame_store.load(stores[2], CFG, VAL_FRAC, SEED)
    in_memory = data.split(ingested, CFG, VAL_FRAC, SEED)
    for ours, theirs in zip(mapped, in_memory, strict=True):
        assert ours.md5s == theirs.md5s and len(ours.md5s) >= 2
        assert np.array_equal(ours.offsets, theirs.offsets)
        for name in ("floats", "ints", "stage"):
            assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name
        assert isinstance(ours.floats, np.memmap)
        assert ours.ints.dtype == data.INT_DTYPE and ours.stage.dtype == np.uint8
        _, ints, stage = ours.clip(np.array([0, 5]), 8)
        assert ints.dtype == stage.dtype == torch.int64  # what the models were trained on


def test_the_bytes_do_not_depend_on_the_worker_count(stores):
    files = sorted(p.relative_to(stores[1]) for p in stores[1].rglob("*") if p.is_file())
    assert len(files) == 9  # manifest + 4 arrays in each split
    for f in files:
        assert (stores[1] / f).read_bytes() == (stores[2] / f).read_bytes(), f


def listed(frames, width: int, step: int = 1) -> np.ndarray:
    """Every clip start, as the world model listed them before the store (one int64 each)."""
    span = width + CFG.lead
    return np.concatenate([np.arange(a, b - span + 1, step) for a, b in pairwise(frames.offsets)])


def test_starts_from_counts_equal_the_list_of_every_start(stores):
    train_frames, _ = frame_store.load(stores[1])
    for width, step in ((10, 1), (60, 1), (60, 60)):
        k = np.arange(train_frames.n_starts(width, step))
        assert np.array_equal(
            train_frames.start_rows(width, k, step), listed(train_frames, width, step)
        )
    order = np.random.default_rng(0).permutation(train_frames.n_starts(10))
    epoch = train.epoch_starts(train_frames, 10, False, np.random.default_rng(0))
    assert np.array_equal(epoch, listed(train_frames, 10)[order])  # the draws of before


def test_a_killed_build_leaves_the_old_store_and_a_rebuild_completes(stores, ingested, tmp_path,
                                                                    monkeypatch):  # fmt: skip
    out = tmp_path / "wm_frames"
    frame_store.build(ingested, out, CFG, VAL_FRAC, SEED, 1)
    before = (out / "train" / "floats.npy").read_bytes()

    def dies(*args):
        raise KeyboardInterrupt  # as a kill would, half way through the games

    monkeypatch.setattr(frame_store, "_write", dies)
    with pytest.raises(KeyboardInterrupt):
        frame_store.build(ingested, out, CFG, VAL_FRAC, SEED, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wm_frames"]  # no half-built folder
    assert (out / "train" / "floats.npy").read_bytes() == before
    monkeypatch.undo()
    frame_store.build(ingested, out, CFG, VAL_FRAC, SEED, 1)
    assert (out / "train" / "floats.npy").read_bytes() == before


def test_a_store_of_another_encoding_or_split_is_refused(stores, tmp_path):
    with pytest.raises(UsageError, match="rebuild"):
        frame_store.load(stores[1], EncodingConfig(version="v2", contract="input", context=5))
    with pytest.raises(UsageError, match="rebuild"):
        frame_store.load(stores[1], None, 0.5)
    with pytest.raises(UsageError, match="mmlib wm-frames"):
        frame_store.load(tmp_path / "none")
