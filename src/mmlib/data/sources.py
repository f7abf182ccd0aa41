"""Turn what a user points the ingest at (files, folders, .zip/.7z archives) into replay files.

Every replay is named by where it came from (`path`, or `archive::member` for archive members)
and identified by the MD5 of its bytes. Archive members are extracted to a scratch folder first,
because peppi reads from a path.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mmlib.errors import UsageError

REPLAY_SUFFIXES = {".slp"}
ARCHIVE_SUFFIXES = {".zip", ".7z"}


@dataclass(frozen=True)
class Replay:
    name: str  # where it came from, as shown in the tables
    path: Path  # a file peppi can read
    md5: str


@dataclass(frozen=True)
class BadArchive:
    name: str
    message: str


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def find_files(inputs: Iterable[Path]) -> list[Path]:
    """Replays and archives under the inputs, sorted; a missing input is a UsageError."""
    found: set[Path] = set()
    for path in inputs:
        if path.is_dir():
            found.update(
                p
                for p in path.rglob("*")
                if p.is_file() and _suffix(p) in REPLAY_SUFFIXES | ARCHIVE_SUFFIXES
            )
        elif path.is_file():
            found.add(path)  # named explicitly: taken whatever its suffix, rejected if not a replay
        elif path.exists():
            raise UsageError(f"not a regular file or folder: {path}")
        else:
            raise UsageError(f"no such file or folder: {path}")
    return sorted(found)


def extract_archive(archive: Path, scratch: Path) -> list[tuple[str, Path]]:
    """(member name, extracted path) of every .slp in a .zip or .7z archive."""
    dest = scratch / hashlib.md5(str(archive).encode()).hexdigest()
    if _suffix(archive) == ".zip":
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.namelist() if _suffix(Path(m)) in REPLAY_SUFFIXES]
            z.extractall(dest, members)
    else:
        import py7zr

        with py7zr.SevenZipFile(archive) as z:
            members = [m for m in z.getnames() if _suffix(Path(m)) in REPLAY_SUFFIXES]
            z.extract(dest, targets=members)
    return [(m, dest / m) for m in sorted(members) if (dest / m).is_file()]


def expand(inputs: Iterable[Path], scratch: Path) -> Iterator[Replay | BadArchive]:
    """Every replay under the inputs, archives unpacked into `scratch`, in a stable order.

    A generator: each replay is hashed only when it is asked for.
    """
    for path in find_files(inputs):
        if _suffix(path) in ARCHIVE_SUFFIXES:
            try:
                members = extract_archive(path, scratch)
            except Exception as e:  # zipfile/py7zr raise many types for a damaged archive
                yield BadArchive(str(path), f"{type(e).__name__}: {e}")
                continue
            for member, extracted in members:
                yield Replay(f"{path}::{member}", extracted, md5_of(extracted))
        else:
            yield Replay(str(path), path, md5_of(path))
