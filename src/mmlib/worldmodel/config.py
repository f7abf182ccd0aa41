"""A world model's configuration: the architecture, its sizes and the encoding it reads.

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


def recipe(params_file, arch: str):
    """(ModelConfig, TrainConfig, settings) for `arch` from params.yaml's `world_model` section
    (the profile's sub-section applied; `settings` holds the split and evaluation keys)."""
    from mmlib.config import stage_params
    from mmlib.worldmodel.encoding import EncodingConfig
    from mmlib.worldmodel.train import TrainConfig

    section = stage_params("world_model", params_file)
    if arch not in section.get("archs", []) or arch not in section:
        raise UsageError(
            f"params.yaml world_model has no arch {arch!r} (archs: {section.get('archs')})"
        )
    run = dict(section[arch])
    encoding = EncodingConfig(**section["encoding"])
    model = section.get("model", {}) | run.pop("model", {})  # shared changes, then the arch's
    model_cfg = preset(run.pop("preset"), encoding=encoding.to_dict(), **model)
    if model_cfg.arch != arch:
        raise UsageError(f"world_model.{arch}.preset is a {model_cfg.arch} preset")
    shared = {k: section[k] for k in ("seed", "threads", "float_loss") if k in section}
    train_cfg = TrainConfig.from_params(shared | run)
    settings = {k: v for k, v in section.items() if k not in (*ARCHS, "encoding", "model")}
    return model_cfg, train_cfg, settings


def decompose_recipe(params_file):
    """({subsystem: ModelConfig}, TrainConfig, settings) from params.yaml's `decompose` section:
    one small model per subsystem on the world models' encoding and split (`settings` holds
    `world_model`'s split and rollout keys and `decompose`'s own)."""
    from mmlib.config import stage_params
    from mmlib.worldmodel.subsystems import SUBSYSTEMS
    from mmlib.worldmodel.train import TrainConfig

    world = stage_params("world_model", params_file)
    settings = {k: v for k, v in world.items() if k not in (*ARCHS, "encoding", "model")}
    section = stage_params("decompose", params_file)
    encoding = EncodingConfig(**world["encoding"])
    for s in SUBSYSTEMS:
        if not s.owns(encoding):  # empty `owns` would mean a whole world model
            raise UsageError(f"{s.name} owns no field of encoding {encoding.version}; use v2+")
    run = {k: v for k, v in section.items() if k in ("epochs", "batch", "clip", "lr")}
    shared = {k: world[k] for k in ("float_loss",) if k in world}  # the monoliths' loss
    train_cfg = TrainConfig.from_params(
        shared | run | {"seed": section["seed"], "threads": settings["threads"]}
    )
    model = world.get("model", {}) | section.get("model", {})  # the monoliths' priors, narrower
    models = {
        s.name: preset(section["preset"], encoding=encoding.to_dict(), owns=s.owns(encoding),
                       **model)
        for s in SUBSYSTEMS
    }  # fmt: skip
    keep = ("margin", "horizons", "monoliths")
    return models, train_cfg, settings | {k: section[k] for k in keep}
