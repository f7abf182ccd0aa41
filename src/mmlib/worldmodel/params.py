"""World-model recipes from params.yaml: the `world_model` section (one run per architecture,
the profile's sub-section applied) and the `decompose` section (one small model per subsystem),
as the dataclasses of `config.py`.
"""

from __future__ import annotations

from pathlib import Path

from mmlib.config import stage_params
from mmlib.errors import UsageError
from mmlib.worldmodel.config import ARCHS, ModelConfig, TrainConfig, preset
from mmlib.worldmodel.encoding import EncodingConfig
from mmlib.worldmodel.subsystems import SUBSYSTEMS


def archs(params_file: Path) -> list[str]:
    """The architectures the `world_model` stage trains (`world_model.archs`)."""
    return list(stage_params("world_model", params_file).get("archs", []))


def recipe(params_file: Path, arch: str) -> tuple[ModelConfig, TrainConfig, dict]:
    """(ModelConfig, TrainConfig, settings) for `arch` from params.yaml's `world_model` section
    (the profile's sub-section applied; `settings` holds the split and evaluation keys)."""
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
    shared = {k: section[k] for k in ("seed", "threads", "float_loss", "precision", "compile")
              if k in section}  # fmt: skip
    train_cfg = TrainConfig.from_params(shared | run)
    settings = {k: v for k, v in section.items() if k not in (*ARCHS, "encoding", "model")}
    return model_cfg, train_cfg, settings


def decompose_recipe(params_file):
    """({subsystem: ModelConfig}, TrainConfig, settings) from params.yaml's `decompose` section:
    one small model per subsystem on the world models' encoding and split (`settings` holds
    `world_model`'s split and rollout keys and `decompose`'s own)."""
    world = stage_params("world_model", params_file)
    settings = {k: v for k, v in world.items() if k not in (*ARCHS, "encoding", "model")}
    section = stage_params("decompose", params_file)
    encoding = EncodingConfig(**world["encoding"])
    for s in SUBSYSTEMS:
        if not s.owns(encoding):  # empty `owns` would mean a whole world model
            raise UsageError(f"{s.name} owns no field of encoding {encoding.version}; use v2+")
    run = {k: v for k, v in section.items() if k in ("epochs", "steps", "batch", "clip", "lr")}
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
    keep = ("seed", "horizons", "monoliths")  # seed: the bootstrap's too
    return models, train_cfg, settings | {k: section[k] for k in keep}
