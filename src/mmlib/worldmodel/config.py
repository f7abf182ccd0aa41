"""A world model's configuration as dataclasses: the architecture, its sizes and the encoding it
reads (`ModelConfig`), and the training recipe (`TrainConfig`). Reading them from params.yaml is
`params.py`'s job (this module imports nothing of mmlib's but the encoding and the errors).

Presets follow SPEC 6.3: `mlp` is the published frame-stacking MLP (hidden 512, trunk 256, never
changed); `mamba2-small` is `mamba2-1a` (d_model 256, 2 layers, ~1.15M parameters) and
`mamba2-medium` the "4.3M" GPU model (d_model 384, 4 layers).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mmlib.errors import UsageError
from mmlib.worldmodel.encoding import EncodingConfig

ARCHS = ("mlp", "mamba2")
HEADS = ("all", "original")  # every head (from 76f7c03) | the four heads of v1-v2.2
ORIGINAL_HEADS = ("continuous", "binary", "action", "jumps")
SCALES = (
    "none",
    "std",
    "mad",
)  # float-target units: as stored | standard | mean absolute deviation


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "mlp"
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    heads: str = "all"
    dropout: float = 0.1
    hidden: int = 512  # MLP
    trunk: int = 256  # MLP
    d_model: int = 256  # Mamba-2
    n_layers: int = 2
    d_state: int = 64
    headdim: int = 64
    chunk: int = 30  # SSD chunk for training and seeding (0: the sequential scan)
    owns: tuple[str, ...] = ()  # the fields it predicts (a subsystem model); empty: all of them
    # Priors (issue 19; `readout.py`), all off in the published models:
    scale: str = "none"  # float heads predict targets in units of their spread: none|std|mad
    standard_inputs: bool = False  # float inputs standardised by their training mean and std
    residual: bool = False  # x and y predicted on top of dead reckoning (`yardsticks.py`)
    hold: bool = False  # categorical heads start from "the class does not change"

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise UsageError(f"world-model arch {self.arch!r} is not one of {', '.join(ARCHS)}")
        if self.scale not in SCALES:
            raise UsageError(f"scale {self.scale!r} is not one of {', '.join(SCALES)}")
        if self.heads not in HEADS:
            raise UsageError(f"heads {self.heads!r} is not one of {', '.join(HEADS)}")
        if self.arch == "mamba2" and (2 * self.d_model) % self.headdim:
            raise UsageError(f"2 * d_model ({2 * self.d_model}) must divide by headdim")
        object.__setattr__(self, "owns", tuple(self.owns))  # a list from JSON or YAML
        self.encoding.head_columns(self.owns)  # raises on a field the encoding lacks

    def head_sizes(self) -> dict[str, int]:
        sizes = self.encoding.head_sizes(self.owns)
        if self.heads == "original":
            sizes = {k: v for k, v in sizes.items() if k in ORIGINAL_HEADS}
        return sizes

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["encoding"] = EncodingConfig(**d.get("encoding", {}))
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UsageError(f"unknown world-model config keys {unknown}; known: {sorted(names)}")
        return cls(**d)


PRESETS = {
    "mlp": {"arch": "mlp"},
    "mamba2-small": {"arch": "mamba2", "d_model": 256, "n_layers": 2},
    "mamba2-medium": {"arch": "mamba2", "d_model": 384, "n_layers": 4},
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise UsageError(f"unknown world-model preset {name!r}; expected one of {list(PRESETS)}")
    return ModelConfig.from_dict(PRESETS[name] | overrides)


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe (SPEC 6.4). An epoch is every training clip once, in a seeded order;
    the engine runs `epochs` times an epoch's nominal count of batches (`train.steps_per_epoch`)."""

    epochs: int = 2
    steps: int = 0  # a fixed budget of optimizer steps in `epochs` rounds (0: whole epochs)
    batch: int = 256  # clips per step
    lr: float = 1e-3
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    clip: int = 60  # Mamba-2 training clip (frames); the MLP's clip is its context K
    change_weight: float = 1.0  # E010b transition weighting (1 = off)
    float_loss: str = "mse"  # float heads: mse (published) | huber (delta 1, in scale units)
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    compile: bool = False  # torch.compile the model
    seed: int = 0
    threads: int = 2  # fixed, so a CPU run gives the same weights on any machine

    def __post_init__(self):
        if self.steps < 0 or self.steps % max(self.epochs, 1):
            raise UsageError(
                f"world_model.steps ({self.steps}) must be 0 (whole epochs) or a multiple of "
                f"epochs ({self.epochs}): the budget is split into that many rounds"
            )
        for name in ("epochs", "batch", "clip"):
            if getattr(self, name) < 1:
                raise UsageError(
                    f"world_model.{name} must be at least 1, not {getattr(self, name)}"
                )
        if self.float_loss not in ("mse", "huber"):
            raise UsageError(f"world_model.float_loss {self.float_loss!r} is not mse or huber")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UsageError(f"precision {self.precision!r} is not one of auto, fp32, bf16")

    @classmethod
    def from_params(cls, section: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - names)
        if unknown:
            raise UsageError(f"unknown world_model training keys {unknown}; known: {sorted(names)}")
        return cls(**section)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
