"""`mmlib fetch`: bring the user's own .slp files into a replay folder (default data/replays).

A source is a folder (every .slp and .zip/.7z under it; `~` is expanded), a .slp file, a .zip or
.7z archive of replays, or an http(s) URL of one of those, downloaded to a temporary file first.
Every local path is checked and every URL downloaded before anything is written, so a bad source
costs one line (exit status 2) and leaves the destination untouched.

Replays keep their base name. A file whose bytes (MD5) are already anywhere in the destination is
skipped; a different file whose name is taken gets `-<first 8 hex of its md5>` before `.slp`.
Each copy is written under a hidden temporary name and renamed into place, so a killed fetch
leaves no partial .slp. Downloads and unpacked archives live in a temporary folder that is
removed at the end, even on error. An archive that cannot be opened is named in the summary
and the rest is copied. Replays are not validated here: `mmlib ingest` does that.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from mmlib.atomic import atomic_path
from mmlib.data import sources as src
from mmlib.data.sources import md5_of
from mmlib.errors import UsageError

TIMEOUT_S = 60  # per socket operation (connect, each read), not for the whole download
TMP_GLOB = ".*.slp.*.tmp"  # atomic_path's temporary copies; a killed run's are removed next run


@dataclass
class FetchReport:
    copied: int = 0  # replays written to the destination by this run
    renamed: int = 0  # of those, written under `<name>-<md5[:8]>.slp` because the name was taken
    already_present: int = 0  # same bytes already in the destination, skipped
    duplicates: int = 0  # same bytes as another replay of this run, copied once
    bad_archives: list[str] = field(default_factory=list)  # archives that could not be opened

    def line(self, dest: Path) -> str:
        bad = self.bad_archives
        unreadable = f", {len(bad)} unreadable archives ({', '.join(bad)})" if bad else ""
        parts = Path(dest).parts  # `dvc add data` for the default data/replays
        top = parts[0] if parts and not Path(dest).is_absolute() else dest
        return (
            f"fetch: {self.copied} replays copied ({self.renamed} renamed), "
            f"{self.already_present} already present, {self.duplicates} duplicates{unreadable} "
            f"-> {dest}; version them with `dvc add {top}`"
        )


def _is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme.lower() in ("http", "https")


def _is_archive(path: Path) -> bool:
    return path.suffix.lower() in src.ARCHIVE_SUFFIXES


def _known(path: Path, shown: str) -> Path:
    if path.suffix.lower() not in src.REPLAY_SUFFIXES | src.ARCHIVE_SUFFIXES:
        raise UsageError(f"{shown} is not a .slp, .zip or .7z file")
    return path


def _download(url: str, folder: Path, progress: bool) -> Path:
    """Stream `url` into `folder`, named as the server or the (redirected) URL names it."""
    folder.mkdir()
    request = urllib.request.Request(url, headers={"User-Agent": "mmlib-fetch"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            name = response.headers.get_filename() or urllib.parse.unquote(
                PurePosixPath(urllib.parse.urlsplit(response.url).path).name
            )
            path = _known(folder / Path(name or "download").name, url)
            size = int(response.headers.get("Content-Length") or 0) or None
            with (
                open(path, "wb") as f,
                tqdm(
                    total=size,
                    desc=path.name,
                    unit="B",
                    unit_scale=True,
                    disable=not progress,
                    leave=False,
                ) as bar,
            ):
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
            return path
    except urllib.error.HTTPError as e:
        reason = f"HTTP {e.code} {e.reason}"
    except urllib.error.URLError as e:
        reason = getattr(e.reason, "strerror", None) or e.reason
    except (OSError, http.client.HTTPException, ValueError) as e:  # timeouts, cut connections
        reason = str(e) or type(e).__name__
    raise UsageError(
        f"cannot download {url}: {reason}; "
        "check the network or download it by hand and pass the file"
    )


def _index(dest: Path, progress: bool) -> tuple[set[str], set[str]]:
    """MD5s of every .slp under `dest`, and the (lowercased) names taken at its top."""
    for stale in dest.glob(TMP_GLOB):
        stale.unlink()
    slps = [p for p in dest.rglob("*") if p.is_file() and p.suffix.lower() in src.REPLAY_SUFFIXES]
    md5s = {md5_of(p) for p in tqdm(slps, desc="indexing", disable=not progress, leave=False)}
    return md5s, {p.name.lower() for p in dest.iterdir()}  # lowercased: macOS, Windows ignore case


def _replays_in(path: Path, scratch: Path) -> list[tuple[str, Path]]:
    """(base name, file) of the replay at `path`, or of every replay in the archive at `path`."""
    if not _is_archive(path):
        return [(path.name, path)]
    shutil.rmtree(scratch, ignore_errors=True)  # one archive unpacked at a time
    members = src.extract_archive(path, scratch)
    return [(PurePosixPath(m.replace("\\", "/")).name, p) for m, p in members]  # Windows zips


def _target(name: str, md5: str, taken: set[str]) -> str:
    """`name`, or `<stem>-<md5[:8]><suffix>` if a different file already has it."""
    stem, suffix = os.path.splitext(name)
    for candidate in (name, f"{stem}-{md5[:8]}{suffix}", f"{stem}-{md5}{suffix}"):
        if candidate.lower() not in taken:
            return candidate
    raise UsageError(f"{name}: every candidate name is taken by a different file")


def _copy_atomic(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _copy_all(
    items: list[tuple[str, Path]], dest: Path, scratch: Path, progress: bool
) -> FetchReport:
    report, seen = FetchReport(), set()
    stored, taken = _index(dest, progress)
    total = sum(not _is_archive(p) for _, p in items)  # archives add their members when opened
    bar = tqdm(total=total, desc="fetch", unit="replay", disable=not progress)
    for shown, path in items:
        try:
            replays = _replays_in(path, scratch / "unpacked")
        except Exception:  # zipfile/py7zr raise many types for a damaged archive
            report.bad_archives.append(shown)
            continue
        bar.total += len(replays) if _is_archive(path) else 0
        for name, replay in replays:
            md5 = md5_of(replay)
            if md5 in stored:
                report.already_present += 1
            elif md5 in seen:
                report.duplicates += 1
            else:
                target = _target(name, md5, taken)
                _copy_atomic(replay, dest / target)
                taken.add(target.lower())
                report.copied += 1
                report.renamed += target != name
            seen.add(md5)
            bar.update()
    bar.close()
    return report


def fetch(sources: list[str], dest: Path, progress: bool = True) -> FetchReport:
    """Copy every replay under `sources` into `dest` (see the module docstring)."""
    urls = [s for s in sources if _is_url(s)]
    local = src.find_files(Path(s).expanduser() for s in sources if not _is_url(s))
    items = [(str(p), _known(p, str(p))) for p in local]
    # Outside `dest`, so that a killed run leaves nothing there for `dvc add data` to pick up.
    scratch = Path(tempfile.mkdtemp(prefix="mmlib-fetch-"))
    try:
        items += [(u, _download(u, scratch / f"url{i}", progress)) for i, u in enumerate(urls)]
        dest = Path(dest).expanduser()
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create {dest}: {e.strerror}") from None
        return _copy_all(items, dest, scratch, progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
