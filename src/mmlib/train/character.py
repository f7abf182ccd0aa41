"""One character's behaviour-cloning run, as the `bc` stage does it: read the recipe from
params.yaml, train on the character's shards, and write the policy directory and the reports.

    artifacts/bc/<character>/   the policy directory (mmlib.checkpoint.directory)
    reports/bc/<character>/     metrics.json, train_curve.csv, val_curve.csv
    runs/bc/<character>/last.pt the resume checkpoint (outside DVC, so a killed stage resumes)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmlib.atomic import write_json, write_text
from mmlib.checkpoint.directory import model_checkpoint, save_policy
from mmlib.config import load_params, stage_params
from mmlib.engine import curve_csv
from mmlib.errors import UsageError
from mmlib.features.dataset import read_norm
from mmlib.features.schema import FeatureSchema
from mmlib.features.split import SLUGS, character_slug
from mmlib.models.bc import BCTransformer
from mmlib.models.config import ModelConfig, preset
from mmlib.train import evaluate, intervals
from mmlib.train.config import TrainConfig
from mmlib.train.loop import Result, train, training_md5s


@dataclass(frozen=True)
class Paths:
    shards: Path = Path("artifacts/shards")
    policies: Path = Path("artifacts/bc")
    reports: Path = Path("reports/bc")
    runs: Path = Path("runs/bc")


def recipe(
    params: Path, profile: str | None = None, **overrides
) -> tuple[TrainConfig, ModelConfig]:
    """The `bc` section of params.yaml (profile applied, then `overrides`) as configs;
    `characters` is dvc's foreach list, not part of the recipe."""
    section = stage_params("bc", params, profile) | overrides
    section.pop("characters", None)
    cfg = TrainConfig.from_params(section)
    return cfg, preset(cfg.preset)


def _how_to_build(character: str, params: Path, profile: str | None) -> str:
    """How to get a character's missing shards: `dvc repro shards` builds the characters listed
    in `features.<profile>.characters` of params.yaml (or `features.characters`), and no other."""
    listed = stage_params("features", params, profile).get("characters") or []
    if character in listed:
        return "run `dvc repro shards`"
    everything = load_params(params)
    profile = profile or everything.get("profile", "smoke")

    def where(section: str) -> str:  # the key that holds the list in this profile
        by_profile = "characters" in ((everything.get(section) or {}).get(profile) or {})
        return f"{section}.{profile}.characters" if by_profile else f"{section}.characters"

    in_bc = character in (stage_params("bc", params, profile).get("characters") or [])
    return (
        f"the shards stage builds {where('features')} in {params} ({', '.join(listed) or 'none'});"
        f" add {character} there{'' if in_bc else ' and to ' + where('bc')}, then run "
        "`dvc repro shards`"
    )


def round_floats(obj, digits: int = 4):
    """Floats rounded for the committed metrics (so tiny numeric noise shows as no change)."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    return obj


def run_character(
    character: str,
    params: Path = Path("params.yaml"),
    paths: Paths = Paths(),
    log=print,
    progress: bool = False,
    profile: str | None = None,
    **overrides,
) -> dict:
    """Train one character and write its policy directory and reports; returns the metrics.
    `overrides` replace recipe fields (e.g. steps=10)."""
    character = character_slug(character)
    data = paths.shards / character
    if not (data / "manifest.json").is_file():
        raise UsageError(
            f"no shards for {character} at {data}: {_how_to_build(character, params, profile)}"
        )
    cfg, model_cfg = recipe(params, profile, **overrides)
    manifest = json.loads((data / "manifest.json").read_text())
    schema = FeatureSchema(tuple(manifest["schema"]["numeric"]), tuple(manifest["schema"]["flags"]))
    if len(schema.numeric) != model_cfg.n_numeric or len(schema.flags) != model_cfg.n_flags:
        raise UsageError(
            f"{data}: the shards hold {len(schema.numeric)} numeric and {len(schema.flags)} flag "
            f"columns per player; preset {cfg.preset!r} reads {model_cfg.n_numeric} and "
            f"{model_cfg.n_flags}"
        )
    result = train(cfg, model_cfg, data, paths.runs / character, log=log, progress=progress)
    if result.rank != 0:  # under torchrun, rank 0 writes
        return {}
    trained = training_md5s(manifest, cfg.train_games)
    metrics = summarize(result, cfg, model_cfg, data, character, trained)
    policy_metadata = {
        "character": character,
        "melee_enum": SLUGS[character].name.upper().replace(" ", "_")
        if character in SLUGS
        else None,
        "run_name": f"{character}-{cfg.preset}-seed{cfg.seed}",
        "global_step": result.history.best_step,
        "n_params": sum(v.numel() for v in result.best_state.values()),
        "n_controller_combos": 7,
        "model_preset": cfg.preset,
        "pos_enc": "relpos",
        "val_loss": f"{result.history.best_loss:.4f}",
        "best_step": result.history.best_step,
        "games_trained": len(trained),
        "train_md5s": trained,  # `mmlib evaluate bc` skips them
    } | {f"val_{h}_f1": f"{metrics['val'][h]['macro_f1']:.1%}" for h in evaluate.HEAD_NAMES}
    model = BCTransformer(model_cfg)
    model.load_state_dict(result.best_state)
    ckpt = model_checkpoint(
        model,
        result.history.best_step,
        read_norm(data),
        cfg.preset,
        optimizer_state_dict=result.checkpoint["optimizer"],
        scheduler_state_dict=result.checkpoint["scheduler"],
    )
    save_policy(paths.policies / character, ckpt, policy_metadata, data, schema)
    report = paths.reports / character
    report.mkdir(parents=True, exist_ok=True)
    write_text(report / "train_curve.csv", curve_csv(result.history.train))
    write_text(report / "val_curve.csv", curve_csv(result.history.val))
    write_json(report / "metrics.json", round_floats(metrics))
    write_text(report / "held_out.md", intervals.markdown(metrics["held_out"]) + "\n")
    return metrics


def summarize(
    result: Result,
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    data: Path,
    character: str,
    trained: list[str],
) -> dict:
    """The run's figures on the validation windows (thinned to `eval_windows`, as in the curve's
    passes) beside the two yardsticks, and `held_out`: every window of every validation game,
    with 95 % intervals over games and the calibrated copy-last loss (`intervals`)."""
    windows = evaluate.val_windows(data / "val", model_cfg.max_seq_len, cfg.eval_windows)
    model = BCTransformer(model_cfg)
    model.load_state_dict(result.best_state)
    device = evaluate.default_device()
    val, preds = evaluate.predict(model.to(device), windows, cfg.batch, device)
    targets = evaluate.targets_by_head(windows)
    train_targets = np.load(data / "train" / "targets.npy", mmap_mode="r")
    manifest = json.loads((data / "manifest.json").read_text())
    trained = set(trained)
    perspectives = intervals.split_perspectives(data, model_cfg.max_seq_len)
    counts = intervals.score(model, perspectives, cfg.batch, device)
    yardsticks = intervals.train_yardsticks(data / "train")  # every training game's frames
    h = result.history
    return {
        "character": character,
        "steps": result.step,
        "best_step": h.best_step,
        "stopped_early": h.stopped_early,
        "val_windows": len(windows["ints"]),
        "val_loss": val,
        "frequency_baseline": evaluate.frequency_baseline(train_targets, targets),
        "copy_last_acc": evaluate.copy_last_accuracy(windows),
        "val": evaluate.head_metrics(preds, targets, evaluate.previous_classes(windows)),
        "n_params": sum(v.numel() for v in result.best_state.values()),
        "train_rows": sum(g["rows"] for g in manifest["train"]["games"] if g["md5"] in trained),
        "train_games": len(trained),
        # every window of every validation game, 95 % intervals over games (`intervals`)
        "held_out": intervals.summary(counts, yardsticks),
    }
