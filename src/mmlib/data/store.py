"""Read what `mmlib ingest` wrote (layout in ingest.py): the games table and the frames.

Game files mark the columns that have no nulls in that game as required, so that parquet writes
them faster; these readers give every game the canonical, nullable `FRAME_SCHEMA`, so tables of
different games concatenate.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mmlib.data.schema import FRAME_SCHEMA


def read_games(ingest_dir: Path) -> pa.Table:
    """The games table: one row per ingested game."""
    return pq.read_table(Path(ingest_dir) / "games.parquet")


def read_frames(ingest_dir: Path, md5: str, columns: list[str] | None = None) -> pa.Table:
    """The frame table of one game (all streams), in FRAME_SCHEMA (or the `columns` asked for)."""
    table = pq.read_table(Path(ingest_dir) / "games" / f"{md5}.parquet", columns=columns)
    schema = pa.schema([FRAME_SCHEMA.field(name) for name in table.column_names])
    return table.cast(schema)


def frames_dataset(ingest_dir: Path) -> ds.Dataset:
    """Every game's frames as one lazily read dataset (filter and project before reading)."""
    return ds.dataset(Path(ingest_dir) / "games", schema=FRAME_SCHEMA, format="parquet")
