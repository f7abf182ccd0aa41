"""Ingested archive members read again (members.py): a real .7z of shared replays, ingested,
each game's `source` resolved to a file with the ingested bytes; the audit and play evaluation
read games through libmelee from that archive; missing archives, other archives and damaged
caches."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import py7zr
import pytest
from conftest import REPLAYS, needs_replays

from mmlib.data.ingest import IngestConfig, ingest
from mmlib.data.members import replay_file, short_name, split_source
from mmlib.data.sources import md5_of
from mmlib.data.store import read_games
from mmlib.errors import UsageError
from mmlib.features import audit as A
from mmlib.features import audit_rows
from mmlib.features.replay_console import ReplayConsole
from mmlib.play.evaluate import validation_games

NAMES = ["peppi-v3.16.slp", "peppi-v3.18.slp", "peppi-v2.0.slp"]  # small; v2.0: fox on port 2
FOX, FOX_PORT = "peppi-v2.0.slp", 2
FOLDER = "set"  # the members sit in a folder inside the archive, as in the v2 archives


def make_7z(path: Path, names: list[str], folder: str = "games") -> Path:
    with py7zr.SevenZipFile(path, "w") as z:
        for name in names:
            z.write(REPLAYS / folder / name, f"{FOLDER}/{name}")
    return path


@pytest.fixture(scope="module")
def archived(tmp_path_factory) -> dict:
    """NAMES in one .7z, ingested; and the same files ingested from the folder, for reference."""
    if not (REPLAYS / "games").is_dir():
        pytest.skip(f"the shared replays are not at {REPLAYS}")
    tmp = tmp_path_factory.mktemp("members")
    archive = make_7z(tmp / "set.7z", NAMES)
    ingest([archive], tmp / "ingest", IngestConfig(workers=1), progress=False)
    ingest([REPLAYS / "games" / n for n in NAMES], tmp / "plain", IngestConfig(workers=1), False)
    games = read_games(tmp / "ingest").to_pandas()
    return {"archive": archive, "ingest": tmp / "ingest", "plain": tmp / "plain", "games": games}


def rows(archived) -> list[tuple[str, str]]:
    return list(zip(archived["games"]["source"], archived["games"]["md5"], strict=True))


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# --- resolving sources --------------------------------------------------------------------------


def test_split_source_tells_members_from_plain_files():
    assert split_source("data/archives/a.7z::x/y.slp") == (Path("data/archives/a.7z"), "x/y.slp")
    assert split_source("data/archives/A.ZIP::y.slp") == (Path("data/archives/A.ZIP"), "y.slp")
    assert split_source("data/replays/y.slp") is None
    assert split_source("data/odd::name.slp") is None  # not an archive before the `::`
    assert short_name("data/archives/a.7z::x/y.slp") == "a.7z::x/y.slp"
    assert short_name("data/replays/y.slp") == "y.slp"


@needs_replays
def test_every_archive_source_resolves_to_the_ingested_bytes(archived, tmp_path):
    assert len(archived["games"]) == len(NAMES)
    cache = tmp_path / "cache"
    for source, md5 in rows(archived):
        assert split_source(source) == (archived["archive"], f"{FOLDER}/{Path(source).name}")
        path = replay_file(source, md5, cache)
        assert md5_of(path) == md5
        assert path.read_bytes() == (REPLAYS / "games" / path.name).read_bytes()
        assert path.is_relative_to(cache)
    # extracted once, into one folder named by the archive's bytes; nothing else left there
    assert [p.name for p in cache.iterdir()] == [md5_of(archived["archive"])]
    folder = cache / md5_of(archived["archive"])
    inode = folder.stat().st_ino
    for source, md5 in rows(archived):
        replay_file(source, md5, cache)
    assert folder.stat().st_ino == inode  # a second resolve reads the cache, extracts nothing


@needs_replays
def test_a_plain_source_is_used_where_it_is(tmp_path):
    plain = REPLAYS / "games" / FOX
    cache = tmp_path / "cache"
    assert replay_file(str(plain), md5_of(plain), cache) == plain
    assert not cache.exists()  # nothing copied, nothing extracted
    with pytest.raises(UsageError) as e:
        replay_file(str(tmp_path / "gone.slp"), md5_of(plain), cache)
    assert one_line(e) == f"replay {tmp_path / 'gone.slp'} of the ingest is missing"


@needs_replays
def test_only_archives_holding_a_requested_member_are_extracted(archived, tmp_path):
    other = make_7z(tmp_path / "other.7z", ["peppi-game.slp"])
    cache = tmp_path / "cache"
    source, md5 = rows(archived)[0]
    replay_file(source, md5, cache)
    assert [p.name for p in cache.iterdir()] == [md5_of(archived["archive"])]
    assert md5_of(other) not in {p.name for p in cache.iterdir()}


# --- faults -------------------------------------------------------------------------------------


@needs_replays
def test_a_missing_archive_is_one_line(archived, tmp_path):
    source, md5 = rows(archived)[0]
    moved = str(tmp_path / "moved.7z")
    with pytest.raises(UsageError) as e:
        replay_file(source.replace(str(archived["archive"]), moved), md5, tmp_path / "cache")
    assert one_line(e).startswith(f"archive {moved} of the ingest is missing (game {md5}: ")
    assert not (tmp_path / "cache").exists()


@needs_replays
def test_an_archive_that_is_not_the_one_ingested_is_one_line(archived, tmp_path):
    """The same archive name, other bytes: a member it lacks, a member that differs, a file
    that is no archive."""
    source, md5 = rows(archived)[0]
    member = split_source(source)[1]
    replaced = make_7z(tmp_path / "set.7z", ["peppi-game.slp"])
    with pytest.raises(UsageError) as e:
        replay_file(f"{replaced}::{member}", md5, tmp_path / "cache")
    assert one_line(e) == f"archive {replaced} has no replay {member} (game {md5})"
    with pytest.raises(UsageError) as e:  # a member that is there, but not the ingested game
        replay_file(f"{replaced}::{FOLDER}/peppi-game.slp", md5, tmp_path / "cache")
    assert "but the ingest recorded" in one_line(e)
    broken = tmp_path / "broken.7z"
    broken.write_bytes(archived["archive"].read_bytes()[:1000])
    with pytest.raises(UsageError) as e:
        replay_file(f"{broken}::{member}", md5, tmp_path / "cache")
    assert one_line(e).startswith(f"cannot extract archive {broken}: ")
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "cache").iterdir())


@needs_replays
def test_a_half_written_cache_is_not_trusted(archived, tmp_path):
    """A killed extraction leaves only its temporary folder: never read, removed by the next
    extraction. A damaged member in a whole folder is extracted again."""
    source, md5 = rows(archived)[0]
    member = split_source(source)[1]
    key = md5_of(archived["archive"])
    cache = tmp_path / "cache"
    dead = 2**22 + 12345  # above Linux's default pid_max: no running process has it
    half = cache / f".{key}.{dead}.tmp" / "members" / member
    half.parent.mkdir(parents=True)
    half.write_bytes((REPLAYS / "games" / Path(member).name).read_bytes()[:5000])  # truncated

    path = replay_file(source, md5, cache)
    assert md5_of(path) == md5 and path == cache / key / member
    assert [p.name for p in cache.iterdir()] == [key]  # the dead run's folder is gone

    path.write_bytes(path.read_bytes()[:5000])  # the cache itself damaged: a truncated member
    assert md5_of(replay_file(source, md5, cache)) == md5
    path.unlink()  # or a member missing
    assert md5_of(replay_file(source, md5, cache)) == md5
    assert [p.name for p in cache.iterdir()] == [key]


@needs_replays
@pytest.mark.slow
def test_a_run_killed_while_extracting_leaves_no_trusted_folder(archived, tmp_path):
    source, md5 = rows(archived)[0]
    cache = tmp_path / "cache"
    key = md5_of(archived["archive"])
    code = "import sys; from mmlib.data.members import replay_file; replay_file(*sys.argv[1:])"
    child = subprocess.Popen([sys.executable, "-c", code, source, md5, str(cache)])
    deadline = time.monotonic() + 120
    while not list(cache.glob(f".{key}.*.tmp")) and child.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the extraction finished before it was killed"
    assert not (cache / key).exists()  # only the temporary folder is left, never read
    assert md5_of(replay_file(source, md5, cache)) == md5
    assert [p.name for p in cache.iterdir()] == [key]


@needs_replays
def test_a_running_extraction_is_left_alone(archived, tmp_path):
    """Another live process's temporary folder is not removed (it may be mid-extraction)."""
    source, md5 = rows(archived)[0]
    key = md5_of(archived["archive"])
    live = tmp_path / "cache" / f".{key}.{os.getppid()}.tmp"
    live.mkdir(parents=True)
    replay_file(source, md5, tmp_path / "cache")
    assert live.is_dir()
    shutil.rmtree(live)


# --- the stages that read replays again ---------------------------------------------------------


@needs_replays
def test_the_audit_reads_archive_members_through_libmelee(archived, tmp_path):
    games = archived["games"]
    cache = tmp_path / "cache"
    paths = audit_rows.replay_paths(games, tmp_path / "no-replay-dir", cache)
    assert {md5: md5_of(p) for md5, p in paths.items()} == {m: m for m in games["md5"]}
    got = audit_rows.read_rows(archived["ingest"], games, tmp_path / "no-replay-dir", cache)
    assert got.unreadable == {} and set(got.lm["md5"]) == set(games["md5"])
    fox = games.loc[games["source"].str.endswith(FOX), "md5"].item()
    plain = audit_rows.read_libmelee(REPLAYS / "games" / FOX)
    from_archive = got.lm[got.lm["md5"] == fox].drop(columns=["md5", "version"])
    assert len(plain) > 1000
    assert from_archive.reset_index(drop=True).equals(plain)


@needs_replays
def test_the_audit_names_an_unreadable_member_by_archive_and_member(tmp_path):
    """Members' names repeat across archives (`test.slp` 18 times in the v2 archives), so a
    finding names the archive too, and never this machine's folders."""
    archive = make_7z(tmp_path / "odd.7z", ["slippijs-test.slp"], "fixtures")
    ingest([archive], tmp_path / "ingest", IngestConfig(workers=1), progress=False)
    games = read_games(tmp_path / "ingest").to_pandas()
    got = audit_rows.read_rows(tmp_path / "ingest", games, tmp_path, tmp_path / "cache")
    assert list(got.unreadable) == [f"odd.7z::{FOLDER}/slippijs-test.slp"]
    assert got.unreadable[f"odd.7z::{FOLDER}/slippijs-test.slp"].startswith("TypeError: buffer")


@needs_replays
@pytest.mark.slow
def test_the_audit_of_an_archive_equals_the_audit_of_its_files(archived, tmp_path):
    from_archive = A.run_audit(
        archived["ingest"], tmp_path / "no-replay-dir", cap=5, seed=0, cache=tmp_path / "cache"
    )
    from_files = A.run_audit(archived["plain"], REPLAYS / "games", cap=5, seed=0)
    assert json.dumps(from_archive, sort_keys=True) == json.dumps(from_files, sort_keys=True)


@needs_replays
def test_play_evaluation_reads_its_validation_game_from_the_archive(archived, tmp_path):
    games = archived["games"]
    fox = games.loc[games["source"].str.endswith(FOX), "md5"].item()
    shards = tmp_path / "shards" / "fox"
    shards.mkdir(parents=True)
    manifest = {"val": {"games": [{"md5": fox, "self_port": FOX_PORT, "opp_port": 1}]}}
    (shards / "manifest.json").write_text(json.dumps(manifest))
    cache = tmp_path / "cache"
    (game,) = validation_games(shards, archived["ingest"] / "games.parquet", cache)
    assert game["md5"] == fox and game["port"] == FOX_PORT
    assert Path(game["replay"]).is_relative_to(cache) and md5_of(Path(game["replay"])) == fox
    frames = [s.frame for s in ReplayConsole(game["replay"])]
    assert frames == [s.frame for s in ReplayConsole(REPLAYS / "games" / FOX)]
    assert FOX_PORT in next(iter(ReplayConsole(game["replay"]))).players


@needs_replays
@pytest.mark.slow
def test_play_drive_on_an_archive_member_equals_the_plain_file(archived, fox_policy, tmp_path):
    from mmlib.checkpoint.directory import load_policy
    from mmlib.play import drive

    policy = load_policy(fox_policy)
    games = archived["games"]
    source, md5 = games.loc[games["source"].str.endswith(FOX), ["source", "md5"]].iloc[0]
    member = replay_file(source, md5, tmp_path / "cache")
    run = {"mode": "teacher", "max_frames": 200, "seed": 0}
    got = drive.drive(policy, member, FOX_PORT, **run)
    assert got.equals(drive.drive(policy, REPLAYS / "games" / FOX, FOX_PORT, **run))
