"""Reading the ingest's output back: every game in the canonical nullable schema."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mmlib.data import store
from mmlib.data.schema import FRAME_SCHEMA


def test_game_files_mark_only_null_free_columns_required(ingested):
    for path in sorted((ingested / "games").glob("*.parquet"))[:10]:
        table = pq.read_table(path)
        for field, column in zip(table.schema, table.columns, strict=True):
            assert field.nullable == (column.null_count > 0), (path.name, field.name)


def test_read_frames_gives_the_canonical_schema_and_games_concatenate(ingested):
    md5s = store.read_games(ingested)["md5"].to_pylist()
    tables = [store.read_frames(ingested, md5) for md5 in md5s[:5]]
    assert all(t.schema == FRAME_SCHEMA for t in tables)
    assert pa.concat_tables(tables).num_rows == sum(t.num_rows for t in tables)
    some = store.read_frames(ingested, md5s[0], columns=["frame", "post_percent"])
    assert some.schema == pa.schema(
        [FRAME_SCHEMA.field("frame"), FRAME_SCHEMA.field("post_percent")]
    )


def test_frames_dataset_reads_every_game(ingested):
    games = store.read_games(ingested)
    data = store.frames_dataset(ingested)
    assert data.schema == FRAME_SCHEMA
    leaders = data.to_table(columns=["frame"], filter=~pc.field("follower"))
    # every game has one leader stream per player, each covering every frame of the game
    expected = pc.sum(pc.multiply(games["frames"], pc.cast(games["n_players"], pa.int32())))
    assert leaders.num_rows == expected.as_py()
