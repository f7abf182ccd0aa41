"""What an ingested dataset holds: tables, metrics and pictures for notebooks/00_dataset_overview.

Everything here reads the ingest's games and rejects tables (see ingest.py); nothing reads frames.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from mmlib.data.ids import PORTS

GAME_COLUMNS = [
    "source",
    "slippi_version",
    "stage",
    "players",
    "n_players",
    "frames",
    "duration_s",
    "end_method",
    "usable_1v1",
]


def load(ingest_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The games and rejects tables of an ingest output folder."""
    ingest_dir = Path(ingest_dir)
    games = pq.read_table(ingest_dir / "games.parquet").to_pandas()
    rejects = pq.read_table(ingest_dir / "rejects.parquet").to_pandas()
    games["source"] = games["source"].map(lambda s: Path(s).name)
    rejects["source"] = rejects["source"].map(lambda s: Path(s).name)
    return games, rejects


def player_slots(games: pd.DataFrame) -> pd.DataFrame:
    """One row per occupied (game, port): character, player type, stage and game length."""
    slots = []
    for port in PORTS:
        cols = {f"p{port}_character": "character", f"p{port}_type": "type"}
        s = games[["md5", "stage", "playable_frames", *cols]].rename(columns=cols)
        slots.append(s[s["character"].notna()].assign(port=port))
    return pd.concat(slots, ignore_index=True)


def game_table(games: pd.DataFrame) -> pd.DataFrame:
    """The games, one line each, with the players written out (`Fox (human) v Marth (cpu)`)."""
    slots = player_slots(games)
    who = slots["character"] + " (" + slots["type"] + ")"
    players = who.groupby(slots["md5"]).agg(" v ".join)
    return games.assign(players=games["md5"].map(players))[GAME_COLUMNS]


def character_stage_matrix(games: pd.DataFrame) -> pd.DataFrame:
    """Player slots per (character, stage): a game counts once for each player in it."""
    slots = player_slots(games)
    matrix = pd.crosstab(slots["character"], slots["stage"])
    order = matrix.sum(axis=1).sort_values(ascending=False).index
    return matrix.loc[order, matrix.sum(axis=0).sort_values(ascending=False).index]


def character_frames(games: pd.DataFrame) -> pd.DataFrame:
    """Games and playable frames per character, across both perspectives (behaviour cloning's
    budget), split by human and CPU slots."""
    slots = player_slots(games)
    table = slots.pivot_table(
        index="character", columns="type", values="playable_frames", aggfunc="sum", fill_value=0
    )
    table["games"] = slots.groupby("character")["md5"].nunique()
    table["frames"] = slots.groupby("character")["playable_frames"].sum()
    return table.sort_values("frames", ascending=False)


def metrics(games: pd.DataFrame, rejects: pd.DataFrame) -> dict:
    """Headline numbers for reports/overview/metrics.json (no timings: it is a cached output)."""
    slots = player_slots(games)
    usable = games[games["usable_1v1"]]
    return {
        "games": int(len(games)),
        "rejects": int(len(rejects)),
        "rejects_by_reason": {k: int(v) for k, v in rejects["reason"].value_counts().items()},
        "frames": int(games["frames"].sum()),
        "playable_frames": int(games["playable_frames"].sum()),
        "minutes": round(float(games["duration_s"].sum()) / 60, 1),
        "usable_1v1_games": int(len(usable)),
        "usable_1v1_playable_frames": int(usable["playable_frames"].sum()),
        "human_slots": int((slots["type"] == "human").sum()),
        "cpu_slots": int((slots["type"] == "cpu").sum()),
        "characters": int(slots["character"].nunique()),
        "slippi_versions": int(games["slippi_version"].nunique()),
        "rollback_frames_dropped": int(games["rollback_frames_dropped"].sum()),
    }


def plot_game_lengths(games: pd.DataFrame, min_frames: int, bin_s: float, ax) -> None:
    """Histogram of playable game length (seconds), usable 1v1 games stacked on the rest."""
    longest = float(games["duration_s"].max())
    bins = [i * bin_s for i in range(int(longest // bin_s) + 2)]
    groups = [
        games.loc[~games["usable_1v1"], "duration_s"],
        games.loc[games["usable_1v1"], "duration_s"],
    ]
    ax.hist(
        groups, bins=bins, stacked=True, label=["other", "usable 1v1"], color=["#bbb", "#3b75af"]
    )
    ax.axvline(min_frames / 60, color="k", ls="--", lw=1, label=f"min_frames = {min_frames}")
    ax.set(xlabel="playable length (s)", ylabel="games", title=f"Game length ({len(games)} games)")
    ax.legend()


def plot_character_stage(matrix: pd.DataFrame, ax) -> None:
    """Heat map of player slots per character x stage, with the counts written in."""
    im = ax.imshow(matrix.values, cmap="Blues", aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    for (i, j), n in pd.DataFrame(matrix.values).stack().items():
        if n:
            ax.text(
                j,
                i,
                int(n),
                ha="center",
                va="center",
                color="white" if n > matrix.values.max() / 2 else "black",
                fontsize=8,
            )
    ax.set_title("Player slots per character and stage")
    ax.figure.colorbar(im, ax=ax, label="player slots")
