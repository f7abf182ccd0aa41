"""Behaviour cloning as a task of the training engine (`mmlib.engine`): the BC transformer,
AdamW with the published decay groups and the cosine schedule (`optim`), random windows from a
character's shards (`WindowSampler`, each rank its own draws), the four heads' loss, and a
validation pass over fixed windows that also records each head's accuracy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmlib import engine
from mmlib.engine import RESUME_FILE, History, Result  # noqa: F401  (the names callers use)
from mmlib.features.sampler import WindowSampler
from mmlib.models.bc import BCTransformer, losses
from mmlib.models.config import ModelConfig
from mmlib.train import evaluate, optim
from mmlib.train.config import TrainConfig


class _Windows:
    """A rank's stream of training windows (ints, floats, targets), resumable."""

    def __init__(self, sampler: WindowSampler, batch: int):
        self.sampler, self.batch = sampler, batch

    def next(self) -> tuple[np.ndarray, ...]:
        arrays = self.sampler.sample(self.batch)
        return arrays["ints"], arrays["floats"], arrays["targets"]

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


@dataclass
class BCTask:
    cfg: TrainConfig
    model_cfg: ModelConfig
    data: Path  # a character's shard folder, with train/ and val/

    def __post_init__(self):
        self.windows = evaluate.val_windows(
            Path(self.data) / "val", self.model_cfg.max_seq_len, self.cfg.eval_windows
        )
        self.val_targets = evaluate.targets_by_head(self.windows)

    def build(self) -> BCTransformer:
        return BCTransformer(self.model_cfg)

    def optimizer(self, model):
        opt = optim.optimizer(model, self.cfg)
        return opt, optim.scheduler(opt, self.cfg)

    def batches(self, rank: int) -> _Windows:
        subset = training_games(self.data, self.cfg.train_games)
        sampler = WindowSampler(Path(self.data) / "train", self.model_cfg.max_seq_len, games=subset)
        sampler.rng = np.random.default_rng([self.cfg.seed, rank])  # each rank its own windows
        return _Windows(sampler, self.cfg.batch)

    def loss(self, model, batch) -> dict:
        ints, floats, targets = batch
        logits, _ = model(ints, floats)
        return losses(logits, targets)

    def evaluate(self, model, device, amp) -> dict[str, float]:
        val, preds = evaluate.predict(model, self.windows, self.cfg.batch, device, amp)
        t = self.val_targets
        return val | {f"acc_{h}": float((preds[h] == t[h]).mean()) for h in preds}

    def describe(self, val: dict) -> str:
        return "; " + " ".join(f"{h} {val[h]:.3f}" for h in evaluate.HEAD_NAMES)

    def identity(self) -> dict:
        return {"bc": self.cfg.to_dict(), "model": self.model_cfg.to_dict()}

    def data_identity(self) -> bytes:
        return (Path(self.data) / "manifest.json").read_bytes()


def training_md5s(manifest: dict, n: int) -> list[str]:
    """The first `n` training games (md5s) of one fixed shuffle, so the learning curve's sets are
    nested (8 of 32 of 128); every training game when `n` is 0 or covers them all. The shuffle's
    seed is fixed: a curve compares data sizes, not draws."""
    md5s = sorted(manifest["split"]["train_md5s"])
    if n == 0 or n >= len(md5s):
        return md5s
    return sorted(md5s[i] for i in np.random.default_rng(0).permutation(len(md5s))[:n])


def training_games(data: Path, n: int) -> np.ndarray | None:
    """The training perspectives (indices) of `training_md5s`; None for all of them."""
    manifest = json.loads((Path(data) / "manifest.json").read_text())
    if n == 0 or n >= len(manifest["split"]["train_md5s"]):
        return None
    chosen = set(training_md5s(manifest, n))
    games = [g["md5"] for g in manifest["train"]["games"]]
    return np.array([i for i, md5 in enumerate(games) if md5 in chosen], np.int64)


def schedule(cfg: TrainConfig) -> engine.Schedule:
    keys = ("steps", "eval_every", "log_every", "ckpt_every", "patience", "grad_clip",
            "precision", "compile", "seed", "threads")  # fmt: skip
    return engine.Schedule(**{k: getattr(cfg, k) for k in keys})


def fingerprint(cfg: TrainConfig, model_cfg: ModelConfig, data: Path) -> str:
    return engine.fingerprint(BCTask(cfg, model_cfg, data), schedule(cfg))


def train(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    data: Path,
    run_dir: Path,
    log=print,
    progress: bool = False,
) -> Result:
    """Train on `data` (a character's shard folder with train/ and val/) and keep the resume
    state in `run_dir/last.pt`; continue from it when it is there and matches this run."""
    task = BCTask(cfg, model_cfg, Path(data))
    return engine.train(task, schedule(cfg), run_dir, log=log, progress=progress)


__all__ = ["RESUME_FILE", "BCTask", "History", "Result", "fingerprint", "schedule", "train"]
