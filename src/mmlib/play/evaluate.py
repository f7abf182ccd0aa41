"""One character's replay-driven play evaluation (notebook 06, stage `play_eval`).

For each validation game of the character (its shards' manifest names them and the port), the
trained policy is driven through the replay three ways: teacher-forced with the neutral prefill,
teacher-forced with no prefill, and free-running with the neutral prefill. Streaming's drift from
the fixed-window recompute is measured on the same frames. The yardstick beside the agreement is
copying the human's current input as the next one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mmlib.checkpoint.directory import Policy
from mmlib.data.members import CACHE, replay_file
from mmlib.errors import UsageError
from mmlib.play import drift, drive

RUNS = {  # name -> (mode, prefill)
    "teacher": ("teacher", "neutral"),
    "teacher_no_prefill": ("teacher", "none"),
    "free": ("free", "neutral"),
}
FIRST_SECONDS = 3  # the span a prefill can matter in: the window is 180 frames


def validation_games(shards: Path, games_parquet: Path, cache: Path = CACHE) -> list[dict]:
    """[{md5, replay, port}] of a character's validation games; `replay` is the file the games
    table names, or for an archive member its copy extracted into `cache`
    (`members.replay_file`)."""
    manifest = json.loads((shards / "manifest.json").read_text())
    sources = dict(
        zip(
            *pq.read_table(games_parquet, columns=["md5", "source"]).to_pydict().values(),
            strict=True,
        )
    )
    out = []
    for game in manifest["val"]["games"]:
        if game["md5"] not in sources:
            raise UsageError(f"{games_parquet} has no game {game['md5']} (named in {shards})")
        replay = str(replay_file(sources[game["md5"]], game["md5"], cache))
        out.append({"md5": game["md5"], "replay": replay, "port": game["self_port"]})
    if not out:
        raise UsageError(f"{shards}: no validation games")
    return out


def copy_last(table: pa.Table) -> dict[str, float]:
    """Per head: how often the human's next input equals their current one (the yardstick)."""
    out = {}
    for h in drive.HEADS:
        human = table[f"human_{h}"].to_numpy()
        out[h] = float((human[1:] == human[:-1]).mean())
    return out


def _first(table: pa.Table) -> pa.Table:
    return table.slice(0, FIRST_SECONDS * drive.FPS)


def _mean(dicts: list[dict], weights: list[int]):
    """Nested dicts with the same keys, merged: counts (ints) add up, rates (floats) get the
    frame-weighted mean."""
    first = dicts[0]
    if isinstance(first, dict):
        return {k: _mean([d[k] for d in dicts], weights) for k in first}
    if isinstance(first, int):
        return int(sum(dicts))
    return float(np.average(dicts, weights=weights))


def evaluate(
    policy: Policy, games: list[dict], settings: dict, progress: bool = False
) -> tuple[dict, pa.Table]:
    """Metrics for `games` (the first `max_games` of them when set), and every run's per-frame
    inputs (column `run`, `md5`)."""
    max_frames = settings.get("max_frames")
    games = games[: settings.get("max_games") or None]  # sorted by md5: a fixed, content-blind cut
    tables, per_game = [], []
    for game in games:
        runs = {}
        for name, (mode, prefill) in RUNS.items():
            t = drive.drive(
                policy,
                game["replay"],
                game["port"],
                mode=mode,
                prefill=prefill,
                temperature=settings["temperature"],
                seed=settings["seed"],
                max_frames=max_frames,
                progress=progress,
            )
            runs[name] = t
            n = t.num_rows
            tables.append(
                t.append_column("run", pa.array([name] * n)).append_column(
                    "md5", pa.array([game["md5"]] * n)
                )
            )
        limit = None if max_frames is None else max_frames + 1  # the frames `drive` fed
        ints, floats = drift.replay_rows(policy, game["replay"], game["port"], limit)
        teacher = runs["teacher"]
        per_game.append(
            {
                "frames": teacher.num_rows,
                "agreement": {n: drive.agreement(t) for n, t in runs.items()},
                "agreement_first_3s": {n: drive.agreement(_first(t)) for n, t in runs.items()},
                "copy_last_input": copy_last(teacher),
                "health_bot": {n: drive.health(t, "bot") for n, t in runs.items()},
                "health_human": drive.health(teacher, "human"),
                "drift": drift.measure(policy.model, ints, floats, settings["drift_every"]),
            }
        )
    weights = [g["frames"] for g in per_game]
    metrics = {
        "games": [g["md5"] for g in games],
        "frames": int(sum(weights)),
        **{k: _mean([g[k] for g in per_game], weights) for k in per_game[0] if k != "frames"},
    }
    human = metrics["health_human"]["presses_per_s"]  # chatter: the bot's presses per human one
    metrics["press_ratio"] = {
        n: h["presses_per_s"] / human if human else None for n, h in metrics["health_bot"].items()
    }
    for part in ("sliding", "filling"):
        for head, figures in metrics["drift"][part].items():  # a maximum is not averaged
            figures["max_abs_logit_diff"] = max(
                g["drift"][part][head]["max_abs_logit_diff"] for g in per_game
            )
    return _significant(metrics), pa.concat_tables(tables)


def _significant(obj, digits: int = 4):
    """Floats to `digits` significant digits (the committed metrics show no float noise)."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: _significant(v, digits) for k, v in obj.items()}
    return obj


def stretch(table: pa.Table, run: str, start: int, length: int) -> pa.Table:
    """`length` frames of one run of the first game, from its `start`-th frame, moved back to
    the game's last `length` frames where the run is shorter (the cpu profile drives 600)."""
    first = table["md5"][0]
    mask = pc.and_(pc.equal(table["run"], run), pc.equal(table["md5"], first))
    rows = table.filter(mask)
    if len(rows) == 0:
        raise ValueError(f"no {run!r} frames to draw")
    return rows.slice(max(0, min(start, len(rows) - length)), length)
