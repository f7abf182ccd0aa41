"""An ingested game's replay file, read again: an ingest `source` -> a .slp file on disk.

The ECB audit and replay-driven play evaluation read the replays themselves (through libmelee),
by the games table's `source` (sources.py: a path, or `archive::member` for an archive member).
A plain file is used where it is. An archive is extracted whole, the first time one of its
members is asked for, into a persistent cache outside DVC's outputs:

    runs/replays/<md5 of the archive's bytes>/<member>

It is extracted into a temporary folder beside it (`.<md5>.<pid>.tmp`) that is renamed into
place once whole, so a killed run never leaves a cache folder that is trusted; the next run
removes what a dead process left. Every member read from the cache is checked against the games
table's md5: a member that differs (a damaged cache) is extracted again, once; if it still
differs, the archive is not the one that was ingested, and that is a UsageError.
"""

from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path

from mmlib.data.sources import ARCHIVE_SUFFIXES, extract_archive, md5_of
from mmlib.errors import UsageError

CACHE = Path("runs/replays")  # extracted archives, relative to the repository (gitignored)
SEPARATOR = "::"  # between an archive's path and a member's name in a `source`


def split_source(source: str) -> tuple[Path, str] | None:
    """(archive, member) of an archive member's `source`; None for a plain file."""
    archive, sep, member = source.partition(SEPARATOR)
    if sep and member and Path(archive).suffix.lower() in ARCHIVE_SUFFIXES:
        return Path(archive), member
    return None


def short_name(source: str) -> str:
    """A source as a report names it, without this machine's folders: a plain file's name, an
    archive member as `<archive file name>::<member>` (members' own names repeat across
    archives, e.g. `test.slp`)."""
    split = split_source(source)
    return Path(source).name if split is None else f"{split[0].name}{SEPARATOR}{split[1]}"


def replay_file(source: str, md5: str, cache: Path = CACHE) -> Path:
    """A readable .slp file holding the bytes of the ingested game `md5` from `source`.

    A plain file: `Path(source)`, neither copied nor hashed (as before archives). An archive
    member: its file in `cache` (the archive extracted there first if it is not), with md5 `md5`.
    A missing plain file or archive, an archive that cannot be extracted or lacks the member, or
    a member whose bytes differ from the ingest's raise a one-line UsageError.
    """
    split = split_source(source)
    if split is None:
        if not Path(source).is_file():
            raise UsageError(f"replay {source} of the ingest is missing")
        return Path(source)
    archive, member = split
    if not archive.is_file():
        raise UsageError(f"archive {archive} of the ingest is missing (game {md5}: {source})")
    folder = Path(cache) / _archive_md5(str(archive.resolve()), *_stamp(archive))
    fresh = False
    if not folder.is_dir():
        _extract(archive, folder)
        fresh = True
    path = folder / member
    if not fresh and not _holds(path, md5):  # a damaged cache is not trusted: extract again
        _discard(folder)
        _extract(archive, folder)
    if not path.is_file():
        raise UsageError(f"archive {archive} has no replay {member} (game {md5})")
    if (found := md5_of(path)) != md5:
        raise UsageError(
            f"{source}: md5 {found}, but the ingest recorded {md5}; "
            "the archive is not the one ingested (ingest it again)"
        )
    return path


def _stamp(archive: Path) -> tuple[int, int]:
    st = archive.stat()
    return st.st_size, st.st_mtime_ns


@cache
def _archive_md5(path: str, size: int, mtime_ns: int) -> str:
    """The md5 of an archive's bytes, hashed once per process while its size and time hold."""
    return md5_of(Path(path))


def _holds(path: Path, md5: str) -> bool:
    return path.is_file() and md5_of(path) == md5


def _extract(archive: Path, folder: Path) -> None:
    """Extract every .slp of `archive` into `folder` (which does not exist), atomically: into a
    temporary folder beside it, renamed into place when whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(folder)
    work = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    try:
        whole = work / "members"  # the folder renamed into place
        whole.mkdir(parents=True)
        try:
            extracted = extract_archive(archive, work / "scratch")
        except Exception as e:  # noqa: BLE001 - zipfile/py7zr raise many types for a bad archive
            message = " ".join(f"{type(e).__name__}: {e}".split())
            raise UsageError(f"cannot extract archive {archive}: {message}") from None
        for member, path in extracted:
            (whole / member).parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, whole / member)
        try:
            os.rename(whole, folder)
        except OSError:
            if not folder.is_dir():  # else another process put a whole copy there first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _discard(folder: Path) -> None:
    """Remove a cache folder: renamed away first, so no reader sees it half deleted."""
    doomed = folder.with_name(f".{folder.name}.{os.getpid()}.old.tmp")
    try:
        os.rename(folder, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def _remove_stale(folder: Path) -> None:
    """Remove the temporary folders of `folder` that processes no longer running left."""
    for tmp in folder.parent.glob(f".{folder.name}.*.tmp"):
        pid = tmp.name.split(".")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
