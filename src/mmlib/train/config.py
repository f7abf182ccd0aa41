"""The training recipe as one dataclass, filled from params.yaml's `bc` section (SPEC 4.6)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mmlib.errors import UsageError


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "mimic"  # model preset (mmlib.models.config.PRESETS)
    steps: int = 32768  # optimizer steps (the cosine schedule spans them)
    batch: int = 256  # windows per step per process
    lr: float = 3e-4  # peak learning rate
    min_lr: float = 1e-6  # cosine floor
    warmup_frac: float = 0.0  # share of steps of linear warm-up from 1% (published: none)
    weight_decay: float = 0.01  # AdamW, on the published decay group
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0  # global L2 norm
    eval_every: int = 327  # steps between validation passes
    eval_windows: int = 25600  # at most this many validation windows per pass
    patience: int = 12  # stop after this many passes without a new best (0: never)
    log_every: int = 32  # steps per training-loss record
    ckpt_every: int = 1638  # steps between resume checkpoints
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    compile: bool = False  # torch.compile the model
    seed: int = 0  # model init, dropout and window sampling
    threads: int = 0  # torch CPU threads (0: torch's default); fixed for reproducible CPU runs
    train_games: int = 0  # train on this many of the split's training games (0: all; the curve)

    def __post_init__(self):
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UsageError(f"precision {self.precision!r} is not one of auto, fp32, bf16")
        for name in ("steps", "batch", "eval_every", "log_every", "ckpt_every", "eval_windows"):
            if getattr(self, name) < 1:
                raise UsageError(f"bc.{name} must be at least 1, not {getattr(self, name)}")
        if self.train_games < 0:
            raise UsageError(f"bc.train_games must be 0 (all) or more, not {self.train_games}")

    @classmethod
    def from_params(cls, section: dict) -> TrainConfig:
        """From a params.yaml section; unknown keys are an error (a typo must not pass)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - names)
        if unknown:
            raise UsageError(f"params.yaml `bc` has unknown keys {unknown}; known: {sorted(names)}")
        section = dict(section)
        if "betas" in section:
            section["betas"] = tuple(section["betas"])
        return cls(**section)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
