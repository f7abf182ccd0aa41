"""`mmlib fetch`: folders, archives and URLs of real replays copied into a replay folder."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import pytest

from mmlib.data import fetch as fetch_module
from mmlib.data.fetch import fetch
from mmlib.data.sources import md5_of
from mmlib.errors import UsageError

GAMES = Path(__file__).resolve().parents[1].parent / "shared" / "replays" / "games"
pytestmark = pytest.mark.skipif(not GAMES.is_dir(), reason=f"no real replays at {GAMES}")


@pytest.fixture
def replays() -> list[Path]:
    """The four smallest real replays, for speed."""
    return sorted(GAMES.glob("*.slp"), key=lambda p: p.stat().st_size)[:4]


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch) -> Path:
    """fetch's temporary folders go here, so a test can check that they are removed."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def md5s(folder: Path) -> dict[str, str]:
    return {p.name: md5_of(p) for p in folder.iterdir()}


def run_cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path / "tmp")}
    return subprocess.run(
        [sys.executable, "-m", "mmlib", "fetch", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_folder_is_copied_recursively_and_a_second_run_copies_nothing(
    replays, tmp_path, monkeypatch, scratch
):
    slippi = tmp_path / "home" / "Slippi"
    (slippi / "2024-05").mkdir(parents=True)
    for r in replays[:3]:
        shutil.copy(r, slippi)
    shutil.copy(replays[3], slippi / "2024-05")
    (slippi / "notes.txt").write_text("not a replay")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    dest = tmp_path / "data" / "replays"

    first = fetch(["~/Slippi"], dest, progress=False)

    assert md5s(dest) == {r.name: md5_of(r) for r in replays}
    assert (first.copied, first.already_present, first.renamed) == (4, 0, 0)
    second = fetch(["~/Slippi"], dest, progress=False)
    assert (second.copied, second.already_present) == (0, 4)
    assert md5s(dest) == {r.name: md5_of(r) for r in replays}
    assert list(scratch.iterdir()) == []
    assert second.line(Path("data/replays")).endswith("version them with `dvc add data`")


def make_zip(path: Path, files: list[Path]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.write(files[0], f"sub/{files[0].name}")
        for f in files[1:]:
            z.write(f, f.name)


def make_7z(path: Path, files: list[Path]) -> None:
    import py7zr

    with py7zr.SevenZipFile(path, "w") as z:
        z.write(files[0], f"sub/{files[0].name}")
        for f in files[1:]:
            z.write(f, f.name)


@pytest.mark.parametrize("suffix, make", [(".zip", make_zip), (".7z", make_7z)])
def test_archive_is_unpacked_into_dest(replays, tmp_path, scratch, suffix, make):
    archive = tmp_path / f"replays{suffix}"
    make(archive, replays[:3])
    dest = tmp_path / "dest"

    report = fetch([str(archive)], dest, progress=False)

    assert md5s(dest) == {r.name: md5_of(r) for r in replays[:3]}  # flat: no sub/ in dest
    assert report.copied == 3 and report.bad_archives == []
    assert list(scratch.iterdir()) == []


def test_damaged_archive_is_reported_and_the_rest_copied(replays, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    dest = tmp_path / "dest"

    report = fetch([str(bad), str(replays[0])], dest, progress=False)

    assert report.bad_archives == [str(bad)] and report.copied == 1
    assert "1 unreadable archives" in report.line(dest)


def test_name_clash_gets_md5_suffix_and_same_bytes_are_not_copied_twice(replays, tmp_path):
    a, b = replays[:2]
    dest = tmp_path / "dest"
    dest.mkdir()
    shutil.copy(a, dest / "game.slp")  # already in dest, under a name a source clashes with
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(b, source / "game.slp")  # different bytes, same name
    shutil.copy(a, source / "other-name.slp")  # same bytes as dest/game.slp
    shutil.copy(b, source / "z-again.slp")  # same bytes as source/game.slp, sorted after it

    report = fetch([str(source)], dest, progress=False)

    suffixed = f"game-{md5_of(b)[:8]}.slp"
    assert md5s(dest) == {"game.slp": md5_of(a), suffixed: md5_of(b)}
    counts = (report.copied, report.renamed, report.already_present, report.duplicates)
    assert counts == (1, 1, 1, 1)


def test_killed_copy_leaves_no_partial_replay(replays, tmp_path, monkeypatch, scratch):
    def half_then_killed(source, target):
        Path(target).write_bytes(Path(source).read_bytes()[:1000])
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch_module.shutil, "copyfile", half_then_killed)
    dest = tmp_path / "dest"
    with pytest.raises(KeyboardInterrupt):
        fetch([str(replays[0])], dest, progress=False)
    assert list(dest.iterdir()) == []
    assert list(scratch.iterdir()) == []


@pytest.fixture
def server(tmp_path):
    """An HTTP server on localhost serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_of_archive_and_of_replay_are_downloaded(replays, tmp_path, server, scratch):
    www, base = server
    make_zip(www / "set.zip", replays[:2])
    shutil.copy(replays[2], www / "one game.slp")
    dest = tmp_path / "dest"

    report = fetch([f"{base}/set.zip", f"{base}/one%20game.slp"], dest, progress=False)

    expected = {r.name: md5_of(r) for r in replays[:2]} | {"one game.slp": md5_of(replays[2])}
    assert md5s(dest) == expected and report.copied == 3
    assert list(scratch.iterdir()) == []


def test_url_not_found_is_a_usage_error(tmp_path, server):
    with pytest.raises(UsageError, match="HTTP 404"):
        fetch([f"{server[1]}/missing.zip"], tmp_path / "dest", progress=False)
    assert not (tmp_path / "dest").exists()


def test_unreachable_url_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "tmp").mkdir(exist_ok=True)
    dest = tmp_path / "dest"
    url = "http://127.0.0.1:9/replays.zip"  # port 9 (discard) refuses at once

    done = run_cli(url, "--dest", str(dest), tmp_path=tmp_path)

    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mmlib fetch: cannot download {url}: ")
    assert "download it by hand" in lines[0]
    assert not dest.exists() or list(dest.iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_missing_folder_is_one_line_and_exit_2_and_nothing_is_copied(replays, tmp_path):
    dest = tmp_path / "dest"
    missing = tmp_path / "no" / "such" / "Slippi"

    done = run_cli(str(replays[0]), str(missing), "--dest", str(dest), tmp_path=tmp_path)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"mmlib fetch: no such file or folder: {missing}"]
    assert not dest.exists()


def test_explicit_file_that_is_not_a_replay_is_refused(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hi")
    with pytest.raises(UsageError, match="not a .slp, .zip or .7z"):
        fetch([str(notes)], tmp_path / "dest", progress=False)
