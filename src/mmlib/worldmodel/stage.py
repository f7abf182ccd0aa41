"""The world-model stages as library functions, each `run(...) -> metrics`: `run_arch` trains and
scores one architecture (stage `world_model`), `compare_table` puts the architectures side by side
(stage `world_model_compare`), `run_decompose` trains and scores one small model per subsystem
(stage `decompose`). They write every cached output but the pictures; the notebooks read those
outputs and draw.

    artifacts/world_model/<arch>/model.pt       the best model (a checkpoint with its config)
    reports/world_model/<arch>/                 metrics.json, train_curve.csv, val_curve.csv,
                                                rollout_curve.csv
    runs/world_model/<arch>/last.pt             the resume file (outside DVC)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mmlib.atomic import write_json, write_text
from mmlib.engine import curve_csv
from mmlib.worldmodel import (
    decomposition,
    evaluate,
    figures,
    frame_store,
    intervals,
    models,
    rollout,
    train,
)
from mmlib.worldmodel import subsystems as sub
from mmlib.worldmodel.losses import per_player
from mmlib.worldmodel.params import decompose_recipe, recipe

YARDSTICKS = ("copy_last_frame", "dead_reckoning")


@dataclass(frozen=True)
class Paths:
    frames: Path = Path("artifacts/wm_frames")
    models: Path = Path("artifacts/world_model")
    reports: Path = Path("reports/world_model")
    runs: Path = Path("runs/world_model")


@dataclass(frozen=True)
class DecomposePaths:
    frames: Path = Path("artifacts/wm_frames")
    monoliths: Path = Path("artifacts/world_model")
    models: Path = Path("artifacts/decomposition")
    reports: Path = Path("reports/decomposition")
    runs: Path = Path("runs/decomposition")


def rollout_curve(curves: dict[str, dict[str, np.ndarray]]) -> str:
    """Per-step means of rollout errors as CSV: a `step` column, then `<who>_<metric>` for each
    {who: {metric: (starts, horizon)}} (spaces in names become underscores)."""
    horizon = len(next(iter(next(iter(curves.values())).values()))[0])
    steps = {"step": np.arange(1, horizon + 1)}
    for who, e in curves.items():
        for metric, v in e.items():
            name = f"{who}_{metric}".replace(" ", "_")
            steps[name] = [evaluate.sig(x) for x in np.asarray(v, float).mean(0)]
    return pd.DataFrame(steps).to_csv(index=False)


def _data(train_frames, val_frames) -> dict:
    return {
        "train_games": len(train_frames.md5s),
        "train_frames": train_frames.n_frames,
        "val_games": len(val_frames.md5s),
        "val_frames": val_frames.n_frames,
    }


def _curves(out: Path, result) -> None:
    """The training curves with an `epoch` column (steps / an epoch's steps)."""
    for name, rows in (("train_curve.csv", result.history.train),
                       ("val_curve.csv", result.history.val)):  # fmt: skip
        rows = [{"epoch": r["step"] / result.epoch_steps} | r for r in rows]
        write_text(out / name, curve_csv(rows))


def run_arch(arch: str, params: Path = Path("params.yaml"), paths: Paths = Paths(), log=print,
             progress: bool = False) -> dict:  # fmt: skip
    """Train one architecture (resuming when its resume file matches), score it teacher-forced
    and in rollouts beside copy-last-frame and dead reckoning, and write its outputs."""
    model_cfg, train_cfg, settings = recipe(Path(params), arch)
    enc = model_cfg.encoding
    train_frames, val_frames = frame_store.load(
        paths.frames, enc, settings["val_frac"], settings["split_seed"]
    )
    model, result = train.train(model_cfg, train_cfg, train_frames, val_frames,
                                paths.runs / arch, log=log, progress=progress)  # fmt: skip
    (paths.models / arch).mkdir(parents=True, exist_ok=True)
    train.save(paths.models / arch / train.MODEL_FILE, model, result, train_cfg)
    out = paths.reports / arch
    out.mkdir(parents=True, exist_ok=True)
    _curves(out, result)

    torch.set_num_threads(train_cfg.threads)
    pred = evaluate.teacher_forced(model, val_frames)
    tf = evaluate.teacher_forced_metrics(pred)
    published = {  # the published definitions, with intervals over the validation games
        "teacher_forced": figures.teacher_forced(enc, pred, len(val_frames.md5s)),
        "rollout_coherence": figures.rollout_coherence(model, val_frames),
    }
    roll, (starts, _, _, errors) = evaluate.rollout_metrics(
        model, val_frames, settings["rollout_starts"], settings["rollout_seed"]
    )
    write_text(out / "rollout_curve.csv", rollout_curve(errors))
    final = errors["model"]["position"][:, -1]
    median = int(np.argsort(final)[len(final) // 2])  # the start the notebook draws
    metrics = {
        "arch": arch,
        "parameters": models.n_params(model),
        "encoding": enc.to_dict(),
        "data": _data(train_frames, val_frames) | {"val_md5s": val_frames.md5s},
        "steps": result.step,
        "epoch_steps": result.epoch_steps,
        "best_step": result.history.best_step,
        "best_epoch": evaluate.sig(result.history.best_step / result.epoch_steps),
        "val_loss": evaluate.sig(result.history.best_loss),
        "teacher_forced": tf,
        "published_definitions": published,
        "rollout": roll,
        "trajectory_start": int(starts[median]),
    }
    write_json(out / "metrics.json", metrics)
    return metrics


def compare_table(archs: list[str], reports: Path = Paths().reports) -> pd.DataFrame:
    """The architectures and the yardsticks in one table (teacher-forced, then rollouts at 10 to
    200 frames), from each architecture's metrics.json; written to `compare/table.md`."""
    metrics = {a: json.loads((Path(reports) / a / "metrics.json").read_text()) for a in archs}

    def row(parameters: str, tf: dict, roll: dict) -> dict:
        return (
            {"parameters": parameters, "action acc": tf["action_acc"],
             "change acc": tf["change_acc"], "position MAE": tf["position_mae"],
             "damage MAE": tf["damage_mae"]}
            | {f"pos err @{h}": roll[h]["position"] for h in ("10", "50", "100", "200")}
            | {f"action @{h}": roll[h]["action"] for h in ("10", "200")}
        )  # fmt: skip

    rows = {a: row(f"{m['parameters']:,}", m["teacher_forced"], m["rollout"]["model"])
            for a, m in metrics.items()}  # fmt: skip
    first = metrics[archs[0]]  # the yardsticks are the same for every architecture
    for who in YARDSTICKS:
        rows[who.replace("_", " ")] = row("0", first["teacher_forced"][who], first["rollout"][who])
    table = pd.DataFrame(rows).T
    (Path(reports) / "compare").mkdir(parents=True, exist_ok=True)
    write_text(
        Path(reports) / "compare" / "table.md",
        table.to_markdown() + "\n\n" + figures.published_tables(metrics),
    )
    return table


# --- the subsystem decomposition (notebook 05) ---------------------------------------------

CATEGORY_LABELS = sorted(set(evaluate.CATEGORY))


def transition_counts(pred: dict) -> np.ndarray:
    """On frames where the action changes, true x predicted action category (libmelee groups,
    `evaluate.CATEGORY`), as counts."""
    true, prev = pred["tgt"]["action"], pred["tgt"]["prev_action"]
    guess = per_player(torch.as_tensor(pred["out"]["action"])).argmax(-1).numpy()
    changed = true != prev
    index = {c: k for k, c in enumerate(CATEGORY_LABELS)}
    t = np.vectorize(index.get)(evaluate.CATEGORY[true[changed]])
    g = np.vectorize(index.get)(evaluate.CATEGORY[guess[changed]])
    n = len(CATEGORY_LABELS)
    return np.bincount(t * n + g, minlength=n * n).reshape(n, n)


PAIRED = "mamba2"  # the standalone models' architecture: it predicts the same rows, so its
# headline, theirs and the yardsticks' are paired on each resample of games
VERDICTS = ("decomposes", f"standalone_vs_{PAIRED}_monolith", f"{PAIRED}_monolith_vs_yardstick")


def _row_games(pred: dict, frames) -> np.ndarray:
    """Each teacher-forced row's validation game, 0 .. G - 1 (`evaluate.teacher_forced`)."""
    game = np.asarray(pred["game"])
    if len(game) != len(pred["tgt"]["action"]) or game.max(initial=0) >= len(frames.md5s):
        raise ValueError(f"{len(game)} row games for {len(pred['tgt']['action'])} rows")
    return game


def _headline_draws(enc, predictions: dict, owns: dict, monoliths: list, frames,
                    w: np.ndarray) -> dict:  # fmt: skip
    """{subsystem: {who: (headline, (n_boot,))}} over the resamples w: each monolith on its own
    rows, the standalone models and the yardsticks on the Mamba-2's (the same rows: paired)."""
    games = {who: _row_games(p, frames) for who, p in predictions.items()}
    for name in owns:
        if not np.array_equal(games[name], games[PAIRED]):
            raise AssertionError(f"the {name} model scored other rows than the {PAIRED}")
    d = {who: sub.decoded(enc, p, owns.get(who, ())) for who, p in predictions.items()}
    out = {}
    for s in sub.SUBSYSTEMS:
        who = {f"{a}_monolith": (d[a]["model"], a) for a in monoliths}
        who["standalone"] = (d[s.name]["model"], s.name)
        who |= {y: (d[PAIRED][y], PAIRED) for y in sub.YARDSTICKS if y in d[PAIRED]}
        out[s.name] = {
            k: decomposition.headline_draws(s, guess, d[rows]["true"],
                                            d[rows]["copy_last_frame"], games[rows], w)
            for k, (guess, rows) in who.items()
        }  # fmt: skip
    return out


def in_order(who) -> list[str]:
    """Predictors in reading order: the models as given, then the yardsticks (metrics.json sorts
    its keys)."""
    yard = [w for w in who if w.replace(" ", "_") in sub.YARDSTICKS]
    return [w for w in who if w not in yard] + sorted(yard)


def with_interval(f: dict) -> str:
    """A figure and its interval: `0.2689 [0.251, 0.288]`."""
    return "n/a" if f["value"] is None else f"{f['value']:.4g} [{f['lo']:.3g}, {f['hi']:.3g}]"


def headline_table(metrics: dict) -> pd.DataFrame:
    """Per subsystem, each predictor's teacher-forced headline with its interval."""
    return pd.DataFrame({
        s.name: {"headline": s.headline + (" (higher is better)" if s.higher_is_better else "")}
        | {who.replace("_", " "): with_interval(cells[who]) for who in in_order(cells)}
        for s, cells in ((s, metrics["subsystems"][s.name]["intervals"]) for s in sub.SUBSYSTEMS)
    }).T  # fmt: skip


def verdict_table(metrics: dict) -> pd.DataFrame:
    """Per subsystem: the better yardstick, and each paired difference with its verdict."""
    mono, rows = f"{PAIRED}_monolith", {}
    for s in sub.SUBSYSTEMS:
        m = metrics["subsystems"][s.name]
        diff = m["differences"]
        rows[s.name] = {
            "better yardstick": m["yardstick"].replace("_", " "),
            "standalone - yardstick": with_interval(diff["standalone_vs_yardstick"]),
            "decomposes": m["decomposes"],
            f"standalone - {PAIRED}": with_interval(diff[f"standalone_vs_{mono}"]),
            f"standalone vs {PAIRED}": m[f"standalone_vs_{mono}"],
            f"{PAIRED} - yardstick": with_interval(diff[f"{mono}_vs_yardstick"]),
            f"{PAIRED} vs yardstick": m[f"{mono}_vs_yardstick"],
        }
    return pd.DataFrame(rows).T


def rollout_table(metrics: dict, mode: str) -> pd.DataFrame:
    """One mode's ("free_running", "oracle") rollout metric per subsystem and predictor, at each
    horizon (`a / b / c`)."""
    horizons = metrics["horizons"]
    return pd.DataFrame({
        s.name: {"metric": s.rollout_label} | {
            who: " / ".join(f"{rolls[who][str(h)]:.3g}" for h in horizons)
            for who in in_order(rolls)
        } for s, rolls in ((s, metrics["subsystems"][s.name]["rollout"][mode])
                           for s in sub.SUBSYSTEMS)
    }).T  # fmt: skip


def decompose_tables(metrics: dict) -> str:
    """The markdown of `table.md` from the decomposition's metrics."""
    boot = metrics["bootstrap"]
    costs = pd.DataFrame({
        k: {"parameters": f"{c['parameters']:,}",
            "MFLOP/frame": f"{c['flops_per_frame'] / 1e6:.2f}"}
        for k, c in metrics["cost"].items()
    }).T  # fmt: skip
    horizons = " / ".join(map(str, metrics["horizons"]))
    at = f"at {horizons} frames ({metrics['rollout_starts']} starts)"
    return (
        f"## Teacher-forced headline per subsystem ({boot['level']:.0%} intervals over "
        f"{boot['n_boot']} resamples of the {metrics['data']['val_games']} validation games)\n\n"
        + headline_table(metrics).to_markdown()
        + "\n\n## Verdicts (paired differences on the same resamples; `decomposes`: the "
        + "standalone model beats the better yardstick)\n\n" + verdict_table(metrics).to_markdown()
        + f"\n\n## Free-running rollouts {at}: every field predicted\n\n"
        + rollout_table(metrics, "free_running").to_markdown()
        + f"\n\n## Oracle mode {at}: each subsystem alone, every other field from the replay\n\n"
        + rollout_table(metrics, "oracle").to_markdown()
        + "\n\n## Cost per simulated frame\n\n" + costs.to_markdown()
    )  # fmt: skip


def run_decompose(params: Path = Path("params.yaml"), paths: DecomposePaths = DecomposePaths(),
                  log=print, progress: bool = False) -> dict:  # fmt: skip
    """Score the monoliths per subsystem, train one small model per subsystem (resuming), roll
    out monoliths, each subsystem alone (the rest from the replay) and the five recomposed, and
    write the verdicts, tables, curves and checkpoints."""
    configs, train_cfg, settings = decompose_recipe(Path(params))
    enc = next(iter(configs.values())).encoding
    sub.check_partition(enc)
    torch.set_num_threads(train_cfg.threads)
    train_frames, val_frames = frame_store.load(
        paths.frames, enc, settings["val_frac"], settings["split_seed"]
    )
    horizons = settings["horizons"]
    paths.models.mkdir(parents=True, exist_ok=True)
    paths.reports.mkdir(parents=True, exist_ok=True)

    # Step 1: inside the monoliths; the yardsticks are the Mamba-2's rows' (the standalone's)
    monoliths = {a: train.load(paths.monoliths / a / train.MODEL_FILE)
                 for a in settings["monoliths"]}  # fmt: skip
    teacher, predictions = {}, {}
    for arch, model in monoliths.items():
        predictions[arch] = evaluate.teacher_forced(model, val_frames)
        teacher[arch] = sub.teacher_forced_metrics(enc, predictions[arch])
    yard_tf = {y: teacher[PAIRED][y] for y in sub.YARDSTICKS}
    for arch in monoliths:  # the yardsticks are not a monolith's figures
        for y in sub.YARDSTICKS:
            del teacher[arch][y]

    # Step 2: standalone models, each on its own fields
    standalone = {}
    for name, cfg in configs.items():
        log(f"training the {name} model")
        model, result = train.train(cfg, train_cfg, train_frames, val_frames, paths.runs / name,
                                    log=log, progress=progress)  # fmt: skip
        train.save(paths.models / f"{name}.pt", model, result, train_cfg)
        standalone[name] = model
        predictions[name] = evaluate.teacher_forced(model, val_frames)
        teacher[name] = sub.teacher_forced_metrics(enc, predictions[name], cfg.owns)[name]

    # Headlines over resampled validation games, and the verdicts
    n_games = len(val_frames.md5s)
    w = intervals.weights(n_games, seed=settings["seed"])
    owns = {name: cfg.owns for name, cfg in configs.items()}
    draws = _headline_draws(enc, predictions, owns, list(monoliths), val_frames, w)

    # Rollouts: free-running (monoliths, the five recomposed), and oracle (each subsystem alone,
    # every other field from the replay); the yardsticks beside both
    starts = evaluate.rollout_starts(val_frames, max(horizons), settings["rollout_starts"],
                                     settings["rollout_seed"])  # fmt: skip

    def roll(model, oracle=False):
        pred = rollout.rollout(model, val_frames, starts, max(horizons), oracle=oracle, guard=True)
        return sub.rollout_errors(val_frames, starts, *pred)

    free = {a: roll(m)["model"] for a, m in monoliths.items()}
    alone = {name: roll(m, oracle=True)["model"] for name, m in standalone.items()}
    recomposed = roll(list(standalone.values()))
    yard = {"copy last frame": recomposed["copy_last_frame"],
            "dead reckoning": recomposed["dead_reckoning"]}  # fmt: skip
    free |= {"recomposed": recomposed["model"]} | yard
    oracle = {"standalone": {s.rollout: alone[s.name][s.rollout] for s in sub.SUBSYSTEMS}} | yard
    rollouts = {mode: {who: sub.at_horizons(e, horizons) for who, e in curves.items()}
                for mode, curves in (("free_running", free), ("oracle", oracle))}  # fmt: skip
    write_text(paths.reports / "rollout_curve.csv", rollout_curve(
        {who: {s.name: e[s.rollout] for s in sub.SUBSYSTEMS if s.rollout in e}
         for who, e in (free | {"standalone oracle": oracle["standalone"]}).items()}
    ))  # fmt: skip

    matrices = {
        "Mamba-2 monolith": transition_counts(predictions[PAIRED]),
        "standalone action model": transition_counts(predictions["action_transitions"]),
    }
    cost = {k: (models.n_params(m), sub.flops_per_frame(m))
            for k, m in (monoliths | standalone).items()}  # fmt: skip
    cost["recomposed"] = tuple(sum(cost[n][k] for n in standalone) for k in (0, 1))
    events = sub.replay_events(enc, val_frames.floats, val_frames.ints, val_frames.offsets)
    subsystems = {}
    for s in sub.SUBSYSTEMS:
        subsystems[s.name] = {
            "owns": list(s.owns(enc)),
            "headline": s.headline,
            "higher_is_better": s.higher_is_better,
            **decomposition.judge(s, draws[s.name], n_games, f"{PAIRED}_monolith"),
            "teacher_forced": {
                **{f"{a}_monolith": teacher[a][s.name] for a in monoliths},
                "standalone": teacher[s.name],
                **{y: yard_tf[y][s.name] for y in sub.YARDSTICKS},
            },
            "rollout": {mode: {who: r[who][s.name] for who in r} for mode, r in rollouts.items()},
            "standalone_parameters": cost[s.name][0],
            "standalone_flops_per_frame": cost[s.name][1],
        }
    metrics = {
        "encoding": enc.to_dict(),
        "data": _data(train_frames, val_frames),
        "events": {k: int(v.sum()) for k, v in events.items()},
        "player_frames": 2 * val_frames.n_frames,
        "bootstrap": {
            "unit": "validation game",
            "n_boot": len(w),
            "level": intervals.LEVEL,
            "min_games": intervals.MIN_GAMES,
            "seed": settings["seed"],
        },
        "horizons": list(horizons),
        "rollout_starts": int(len(starts)),
        "monoliths": list(monoliths),
        "subsystems": subsystems,
        "cost": {k: {"parameters": p, "flops_per_frame": f} for k, (p, f) in cost.items()},
        "transition_confusion": {
            "labels": CATEGORY_LABELS,
            **{name: m.tolist() for name, m in matrices.items()},
        },
    }
    write_json(paths.reports / "metrics.json", metrics)
    write_text(
        paths.reports / "table.md",
        f"# Subsystem decomposition ({metrics['data']['val_games']} validation games, "
        f"{metrics['data']['val_frames']:,} frames)\n\n" + decompose_tables(metrics) + "\n",
    )  # fmt: skip
    return metrics
