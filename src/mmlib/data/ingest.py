"""`mmlib ingest`: a folder of replays -> one parquet file per game, a games table, a rejects table.

Output layout (DIR is `--output`):

    DIR/games/<md5>.parquet   one per game: the long frame table of schema.py (zstd); its footer
                              metadata (key `mmlib.game`) holds the game's games-table row
    DIR/games.parquet         one row per game in DIR/games (summary.GAMES_SCHEMA)
    DIR/rejects.parquet       one row per file that could not be ingested (REJECTS_SCHEMA)

Each replay is parsed in a worker process, so a corrupt file, a Rust panic or a hang (timeout)
costs that file only. Games already in DIR (by md5) are skipped, every file is written to a
temporary name and renamed into place, and the tables are rebuilt from what is on disk, so a run
killed at any moment leaves no partial file and the next run completes the set.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from mmlib.atomic import atomic_path
from mmlib.data.replay import Rejected, classify, frames_table, read_raw
from mmlib.data.sources import BadArchive, Replay, expand
from mmlib.data.summary import GAMES_SCHEMA, summarize, with_min_frames
from mmlib.errors import UsageError

GAME_KEY = b"mmlib.game"  # footer metadata key holding a game file's games-table row
REJECTS_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("md5", pa.string()),  # null for an archive that could not be opened
        ("reason", pa.string()),  # short class: io_error, not_vs_mode, misaligned, timeout, ...
        ("message", pa.string()),
    ]
)
# Dictionary pages and per-column statistics cost a quarter of the write time and buy little
# here (one row group per game): keep statistics for the key columns, which filters use.
PARQUET_OPTIONS = dict(
    compression="zstd", use_dictionary=False, write_statistics=["frame", "port", "follower"]
)


@dataclass(frozen=True)
class IngestConfig:
    workers: int = 0  # worker processes; 0 = one per CPU core (does not change the output)
    timeout_s: float = 120.0  # seconds one replay may take before it is rejected as a hang
    min_frames: int = 300  # playable frames a game needs for usable_1v1


@dataclass
class IngestReport:
    ingested: int = 0  # games parsed and written by this run
    present: int = 0  # games already in the output (same md5), skipped
    duplicates: int = 0  # files whose bytes repeat another input of this run
    rejected: int = 0
    frames: int = 0  # unique frames of the games written by this run
    seconds: float = 0.0

    def line(self, output: Path) -> str:
        return (
            f"ingest: {self.ingested} games ingested ({self.frames:,} frames), "
            f"{self.present} already present, {self.duplicates} duplicates, "
            f"{self.rejected} rejected, in {self.seconds:.1f} s -> {output}"
        )


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write a parquet file atomically. It is built in memory and written with one call, which
    is about a sixth faster than streaming page by page to the file."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    with atomic_path(path) as tmp:
        tmp.write_bytes(sink.getvalue())


def ingest_one(path: str, name: str, md5: str, games_dir: str, min_frames: int) -> dict:
    """Parse one replay and write its game file. Runs in a worker process; never raises."""
    try:
        if os.path.getsize(path) == 0:
            raise Rejected("empty", "the file is empty")
        raw = read_raw(path)
        version = tuple(raw.start["slippi"]["version"])
        ports = sorted(int(p["port"][1:]) for p in raw.start["players"])
        frames, dropped = frames_table(raw.frames, version, ports)
        row = {"md5": md5, "source": name} | summarize(raw, frames, dropped, version, min_frames)
        meta = {GAME_KEY: json.dumps(row, sort_keys=True).encode()}
        write_atomic(frames.replace_schema_metadata(meta), Path(games_dir) / f"{md5}.parquet")
        return {"row": row}
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: B036 - Rust panics are BaseExceptions (SPEC 1.6)
        r = classify(e)
        return {"reject": {"source": name, "md5": md5, "reason": r.reason, "message": str(r)}}


def _game_row(path: Path) -> dict:
    return json.loads(pq.read_schema(path).metadata[GAME_KEY])


def _read_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist() if path.exists() else []


def _lock(output: Path) -> int:
    """Hold an exclusive lock on the output folder for the life of the process."""
    fd = os.open(output, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(f"another `mmlib ingest` is writing to {output}") from None
    return fd


def _parse_all(replays: Iterable[Replay], games_dir: Path, config: IngestConfig, progress: bool):
    """Yield (replay, result) for every replay; hangs and dead workers become rejects.

    Each replay is scheduled as soon as it is hashed, so hashing in this process overlaps the
    parsing in the workers.
    """
    from pebble import CONSTS, ProcessExpired, ProcessPool

    CONSTS.sleep_unit = 0.01  # pebble polls its workers every 0.1 s, a 0.1 s wait at every close
    with ProcessPool(max_workers=config.workers or os.cpu_count() or 1) as pool:
        bar = tqdm(total=0, desc="ingest", unit="game", disable=not progress)
        futures = {}
        for r in replays:
            args = (str(r.path), r.name, r.md5, str(games_dir), config.min_frames)
            futures[pool.schedule(ingest_one, args=args, timeout=config.timeout_s)] = r
            bar.total += 1
        for future in concurrent.futures.as_completed(futures):
            replay = futures[future]
            try:
                result = future.result()
            except concurrent.futures.TimeoutError:
                result = {"reason": "timeout", "message": f"took over {config.timeout_s:g} s"}
            except ProcessExpired as e:
                result = {"reason": "crash", "message": f"the parser process died ({e})"}
            if "reason" in result:
                result = {"reject": {"source": replay.name, "md5": replay.md5} | result}
            bar.update()
            yield replay, result
        bar.close()


def ingest(
    inputs: Iterable[Path],
    output: Path,
    config: IngestConfig = IngestConfig(),
    progress: bool = True,
) -> IngestReport:
    """Ingest every replay under `inputs` into `output` (see the module docstring)."""
    started = time.perf_counter()
    inputs = [Path(p) for p in inputs]
    for p in inputs:
        if not p.exists():
            raise UsageError(f"no such file or folder: {p}")
    games_dir = output / "games"
    try:
        games_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the output folder {output}: {e.strerror}") from None
    lock = _lock(output)
    scratch = output / ".scratch"
    try:
        for stale in games_dir.glob(".*.tmp"):  # left by a killed run
            stale.unlink()
        shutil.rmtree(scratch, ignore_errors=True)

        report = IngestReport()
        stored = {p.stem for p in games_dir.glob("*.parquet")}
        seen: set[str] = set()
        names: set[str] = set()
        rejects: list[dict] = []

        def new_replays():
            """The replays to parse; counts the rest (present, duplicate, bad archive)."""
            for item in expand(inputs, scratch):
                names.add(item.name)
                if isinstance(item, BadArchive):
                    rejects.append(
                        {
                            "source": item.name,
                            "md5": None,
                            "reason": "bad_archive",
                            "message": item.message,
                        }
                    )
                elif item.md5 in seen:
                    report.duplicates += 1
                elif item.md5 in stored:
                    report.present += 1
                    seen.add(item.md5)
                else:
                    seen.add(item.md5)
                    yield item

        new_rows: dict[str, dict] = {}
        for _, result in _parse_all(new_replays(), games_dir, config, progress):
            if "row" in result:
                new_rows[result["row"]["md5"]] = result["row"]
                report.ingested += 1
                report.frames += result["row"]["frames"]
            else:
                rejects.append(result["reject"])
        report.rejected = len(rejects)

        # The tables describe what is on disk: old rows, rows of files a killed run left without
        # one, and this run's rows. Rejects of earlier runs stay unless their file was seen again.
        files = {p.stem: p for p in games_dir.glob("*.parquet")}
        rows = {r["md5"]: r for r in _read_rows(output / "games.parquet") if r["md5"] in files}
        rows |= new_rows
        rows |= {md5: _game_row(p) for md5, p in files.items() if md5 not in rows}
        old_rejects = [
            r
            for r in _read_rows(output / "rejects.parquet")
            if r["source"] not in names and r["md5"] not in files
        ]
        rows = {md5: with_min_frames(r, config.min_frames) for md5, r in rows.items()}
        games = sorted(rows.values(), key=lambda r: (r["source"], r["md5"]))
        all_rejects = sorted(old_rejects + rejects, key=lambda r: (r["source"], r["md5"] or ""))
        write_atomic(pa.Table.from_pylist(games, GAMES_SCHEMA), output / "games.parquet")
        write_atomic(pa.Table.from_pylist(all_rejects, REJECTS_SCHEMA), output / "rejects.parquet")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os.close(lock)
    report.seconds = time.perf_counter() - started
    return report
