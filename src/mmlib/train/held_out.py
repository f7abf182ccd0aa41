"""A policy directory scored on the games of any ingest that it did not train on (`mmlib
evaluate bc`), with intervals over games (mmlib.train.intervals).

The rows are built the way the shards build them (`shards.perspective_rows`, with the policy's
own normalisation and feature schema), from the human perspectives of the policy's character
(the pooled policy: every human perspective) in the ingest's usable 1v1 games (and the
quit-ended ones with `include_quits`). Games whose md5 is in the policy's `train_md5s` are
skipped; a directory without that key (older ones, the published ones) skips none, and says so.

The yardsticks are fitted on the policy's training split when its shards are given; otherwise on
the scored games themselves, which flatters the yardsticks (a fit on the test data), so a model
that beats them there beats them.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmlib.checkpoint.directory import Policy, load_policy
from mmlib.data.store import read_games
from mmlib.errors import UsageError
from mmlib.features import dataset, shards
from mmlib.features.split import POOLED, Perspective, character_slug, perspectives
from mmlib.train import evaluate, intervals

TARGET_SHIFT = 1  # rows as the shards align them (SPEC 3.9)


def policy_character(policy: Policy) -> str:
    """The character a policy was trained for (metadata.json's `character`), checked."""
    name = policy.metadata.get("character")
    if name is None:
        raise UsageError(f"{policy.directory / 'metadata.json'} names no `character`")
    try:
        return character_slug(str(name))
    except UsageError as e:
        raise UsageError(f"{policy.directory / 'metadata.json'}: {e}") from None


def held_out_views(
    ingest_dir: Path, character: str, trained: set[str], include_quits: bool = False
) -> tuple[list[Perspective], list[Perspective]]:
    """The character's human perspectives in the ingest: (to score, skipped as trained on).
    A character with none there is the user's mistake: one UsageError line."""
    if not (Path(ingest_dir) / "games.parquet").is_file():
        raise UsageError(f"no ingest at {ingest_dir} (games.parquet); run `mmlib ingest`")
    views = perspectives(read_games(ingest_dir), character, include_quits=include_quits)
    which = "usable 1v1" + (" or quit-ended" if include_quits else "")
    who = "a human player" if character == POOLED else f"{character} as a human player"
    if not views:
        raise UsageError(f"no {which} game in {ingest_dir} has {who}")
    keep = [v for v in views if v.md5 not in trained]
    if not keep:
        n = len({v.md5 for v in views})
        raise UsageError(
            f"all {n} {which} games in {ingest_dir} with {who} were trained on; none held out"
        )
    return keep, [v for v in views if v.md5 in trained]


def _shard_yardsticks(shard_dir: Path, trained: list[str] | None) -> intervals.Yardsticks:
    """The yardsticks of the policy's training split, checked to be the policy's."""
    path = Path(shard_dir) / "manifest.json"
    if not path.is_file():
        raise UsageError(f"no shards at {shard_dir} (manifest.json)")
    split = json.loads(path.read_text())["split"]
    if trained is not None and sorted(split["train_md5s"]) != sorted(trained):
        raise UsageError(f"{shard_dir}: its training games are not the policy's (train_md5s)")
    return intervals.train_yardsticks(Path(shard_dir) / "train")


def _scored_yardsticks(counts: intervals.Counts) -> intervals.Yardsticks:
    """The yardsticks fitted on the scored frames themselves."""
    moves = {h: counts.transitions[h].sum(0) for h in intervals.HEADS}
    return intervals.Yardsticks.fit({h: m.sum(0) for h, m in moves.items()}, moves)


def evaluate_policy(
    policy_dir: Path,
    ingest_dir: Path,
    shard_dir: Path | None = None,
    batch: int = 128,
    n_boot: int = 2000,
    seed: int = 0,
    include_quits: bool = False,
    device=None,
    progress: bool = False,
) -> dict:
    """Score a policy on the held-out games of an ingest; the interval summary
    (`intervals.summary`) with what was scored, what was skipped and where the yardsticks
    come from. `shard_dir`: the policy's shards (`artifacts/shards/<character>`)."""
    from tqdm import tqdm  # not tqdm.auto: its warning writes a path into a notebook

    policy = load_policy(policy_dir, device or evaluate.default_device())
    character = policy_character(policy)
    trained = policy.metadata.get("train_md5s")
    keep, skipped = held_out_views(ingest_dir, character, set(trained or ()), include_quits)
    yard = _shard_yardsticks(shard_dir, trained) if shard_dir is not None else None
    by_game: dict[str, list[Perspective]] = {}
    for v in keep:
        by_game.setdefault(v.md5, []).append(v)
    games = sorted(by_game)
    window = policy.config.max_seq_len

    def rows():
        for md5 in tqdm(games, desc="evaluate", unit="game", disable=not progress):
            for view in by_game[md5]:
                raw = dataset.perspective_raw(ingest_dir, view)
                built = shards.perspective_rows(raw, policy.schema, policy.norm, TARGET_SHIFT)
                yield md5, intervals.windows_of(built, window)

    counts = intervals.score(policy.model, rows(), batch, policy.device)
    if not any(m.sum() for m in counts.transitions.values()):
        raise UsageError(
            f"the {len(games)} held-out games are all shorter than the policy's "
            f"{window}-frame window"
        )
    fitted_on = f"training split {shard_dir}"
    if yard is None:
        yard, fitted_on = _scored_yardsticks(counts), "the scored games (no shards given)"
    return {
        "policy": str(policy_dir),
        "ingest": str(ingest_dir),
        "character": character,
        "include_quits": include_quits,
        "train_md5s_known": trained is not None,
        "skipped_trained": {
            "games": len({v.md5 for v in skipped}),
            "perspectives": len(skipped),
        },
        "games": games,
        "window": window,
        "yardsticks_fitted_on": fitted_on,
    } | intervals.summary(counts, yard, n_boot, seed)


def headline(report: dict) -> str:
    """One line: what was scored and what was skipped."""
    skipped = report["skipped_trained"]
    trained = (
        f"{skipped['games']} trained-on games skipped"
        if report["train_md5s_known"]
        else "no train_md5s in the policy's metadata: no game skipped"
    )
    return (
        f"{report['character']} policy {report['policy']} on {report['ingest']}: "
        f"{report['n_games']} held-out games ({report['n_perspectives']} perspectives, "
        f"{report['n_frames']:,} frames), {trained}; yardsticks fitted on "
        f"{report['yardsticks_fitted_on']}"
    )
