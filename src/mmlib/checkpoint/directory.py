"""A policy directory: one trained character in the published layout (SPEC 4.7), loadable alone.

    model.pt               torch.save dict: global_step, model_state_dict (published key names),
                           optimizer_state_dict, scheduler_state_dict, loss_weights, norm_stats,
                           config, stick_centers, shoulder_centers
    config.json            the model config in the published field names (+ `mmlib`)
    metadata.json          character, step, parameter count, validation figures, feature schema,
                           the md5s of the training games (`train_md5s`; older ones lack it)
    mimic_norm.json, norm_stats.json, cat_maps.json, stick_clusters.json, controller_combos.json

`load_policy` also reads directories written by the published MIMIC tools.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from mmlib.atomic import write_json
from mmlib.checkpoint import published
from mmlib.errors import UsageError
from mmlib.features import build, controller, dataset
from mmlib.features.online import OnlineFeatures
from mmlib.features.schema import FeatureSchema
from mmlib.models.bc import BCTransformer
from mmlib.models.config import ModelConfig

FILES = ("model.pt", "config.json", "metadata.json", *dataset.NORM_FILES)
# The columns of the published 13-column checkpoints (SPEC 3.2-3.3), for directories whose
# metadata.json does not name its own.
PUBLISHED_SCHEMA = FeatureSchema(
    numeric=(
        "pos_x",
        "pos_y",
        "percent",
        "stock",
        "jumps_left",
        "speed_air_x_self",
        "speed_ground_x_self",
        "speed_x_attack",
        "speed_y_attack",
        "speed_y_self",
        "hitlag_left",
        "hitstun_left",
        "shield_strength",
    ),  # fmt: skip
    flags=("on_ground", "off_stage", "facing", "invulnerable", "moonwalkwarning"),
)


@dataclass
class Policy:
    """A trained model and everything needed to feed it, rebuilt from one directory."""

    model: BCTransformer  # in eval mode
    config: ModelConfig
    norm: build.Norm
    schema: FeatureSchema
    metadata: dict
    directory: Path

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def features(self, self_port: int, opp_port: int, version=(3, 18, 0)) -> OnlineFeatures:
        """The live feature path for one perspective, with this policy's normalisation."""
        return OnlineFeatures(self_port, opp_port, self.schema, self.norm, version)


def model_checkpoint(
    model: BCTransformer, step: int, norm: build.Norm, preset: str, **state
) -> dict:
    """The published `model.pt` dict for `model` (extra `state` keys, e.g. optimizer, kept)."""
    stick = controller.stick_clusters_json()
    return {
        "global_step": step,
        "model_state_dict": published.to_published(_unwrap(model).state_dict()),
        "loss_weights": torch.ones(5),
        "norm_stats": norm.norm_stats,
        "config": published.config_to_published(_unwrap(model).cfg, preset),
        "stick_centers": stick["stick_centers"],
        "shoulder_centers": stick["shoulder_centers"],
        **state,
    }


def _unwrap(model: torch.nn.Module) -> BCTransformer:
    model = getattr(model, "module", model)  # DDP
    return getattr(model, "_orig_mod", model)  # torch.compile


def save_policy(
    directory: Path, checkpoint: dict, metadata: dict, norm_dir: Path, schema: FeatureSchema
) -> None:
    """Write a policy directory whole: built beside `directory`, then renamed into place."""
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        torch.save(checkpoint, tmp / "model.pt")
        write_json(tmp / "config.json", checkpoint["config"])
        schema_dict = {"numeric": list(schema.numeric), "flags": list(schema.flags)}
        write_json(tmp / "metadata.json", metadata | {"feature_schema": schema_dict})
        for name in dataset.NORM_FILES:
            shutil.copyfile(Path(norm_dir) / name, tmp / name)
        old = directory.with_name(f".{directory.name}.{os.getpid()}.old")
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no {path.name} in {path.parent}: not a policy directory") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not valid JSON ({e})") from None


def read_model_file(path: Path) -> dict:
    """The dict in a `model.pt`, or a one-line UsageError."""
    if not path.is_file():
        raise UsageError(f"no model.pt in {path.parent}: not a policy directory")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (torch raises many types for a bad file)
        raise UsageError(f"{path}: not a readable torch checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt:
        raise UsageError(f"{path}: no `model_state_dict` (not a MIMIC-layout checkpoint)")
    return ckpt


def load_state(model: BCTransformer, state: dict, source: str) -> None:
    """Load a published-named state dict into `model`, naming any missing or misshapen key."""
    ours = published.from_published(state, source)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(ours))
    if missing:
        raise UsageError(f"{source}: missing key {published.published_name(missing[0])!r}")
    for key, value in ours.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise UsageError(
                f"{source}: {published.published_name(key)!r} has shape {tuple(value.shape)}, "
                f"the config gives {tuple(expected[key].shape)}"
            )
    model.load_state_dict(ours)


def load_policy(directory: Path, device: str | torch.device = "cpu") -> Policy:
    """Rebuild a policy from its directory alone (ours or one written by the MIMIC tools)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"no policy directory at {directory}")
    config_path = directory / "config.json"
    config_dict = _read_json(config_path)
    ckpt = read_model_file(directory / "model.pt")
    config = published.config_from_published(
        config_dict, str(config_path), ckpt["model_state_dict"]
    )
    metadata = _read_json(directory / "metadata.json")
    norm = dataset.read_norm(directory)
    schema = metadata.get("feature_schema")
    schema = FeatureSchema(tuple(schema["numeric"]), tuple(schema["flags"])) if schema else None
    schema = schema or PUBLISHED_SCHEMA
    if (len(schema.numeric), len(schema.flags)) != (config.n_numeric, config.n_flags):
        raise UsageError(
            f"{directory / 'metadata.json'}: feature_schema has {len(schema.numeric)} numeric and "
            f"{len(schema.flags)} flag columns, config.json expects {config.n_numeric} and "
            f"{config.n_flags}"
        )
    model = BCTransformer(config)
    load_state(model, ckpt["model_state_dict"], str(directory / "model.pt"))
    model.to(device).eval()
    return Policy(model, config, norm, schema, metadata, directory)
