"""A live session's life around the frame loop, on libmelee's real objects: the `Console` built
from `console_options`, connecting with retries, stopping what started, the menus' calls, the
netplay join wait, and `_session` driven through a replay to its end.

No Dolphin runs here. Where a Dolphin console must be built, its executable is a shell script
that answers `--version` as Slippi Ishiiruka does on Linux (so libmelee builds a real console
with its temporary user folder) and, when run, writes its pid and idles (or exits at once): the
tests check it is killed. Where a console must yield frames, it is libmelee's own replay file
console. Nothing answers on UDP port 0, and libmelee's connection try fails there at once
instead of after its 10 s wait: the tests that need a Dolphin that never answers use it.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import platform
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import free_port, needs_replays, replay_path

from mmlib.errors import UsageError
from mmlib.play import dolphin, runner
from mmlib.play.settings import NetplaySettings, VsCpuSettings

linux_only = pytest.mark.skipif(
    platform.system() != "Linux", reason="the stand-in Dolphin is a Linux executable (sh script)"
)

ISHIIRUKA = """#!/bin/sh
here=$(dirname "$0")
if [ "$1" = "--version" ]; then echo "Faster Melee - Slippi (3.4.0)"; exit 255; fi
echo $$ > "$here/dolphin.pid"
if [ -f "$here/exit" ]; then exit 3; fi
exec sleep 600
"""


@pytest.fixture
def ishiiruka(tmp_path) -> Path:
    """A Slippi (Ishiiruka) folder whose executable is a stand-in (module docstring)."""
    folder = tmp_path / "Slippi Launcher" / "netplay"
    folder.mkdir(parents=True)
    exe = folder / "Slippi_Online-x86_64.AppImage"
    exe.write_text(ISHIIRUKA)
    exe.chmod(0o755)
    return folder


def _settings(tmp_path: Path, ishiiruka: Path, kind: str, **changes):
    """Settings as `vs_cpu_settings`/`netplay_settings` return them, minus the policy (the
    session's scaffolding never reads it)."""
    iso = tmp_path / "melee.iso"
    iso.write_bytes(b"GALE01")
    common = dict(
        checkpoint=tmp_path / "policy",
        policy=None,
        device="cpu",
        dolphin_path=ishiiruka,
        dolphin_exe=ishiiruka / "Slippi_Online-x86_64.AppImage",
        iso_path=iso,
        character="fox",
        stage="pokemon_stadium",
        temperature=1.0,
        button_temperature=1.0,
        seed=0,
        replay_dir=tmp_path / "replays",
        connect_timeout_s=60.0,
    )
    if kind == "vs-cpu":
        s = VsCpuSettings(**common, cpu_character="falco", cpu_level=9, port=1, cpu_port=2)
    else:
        home = tmp_path / "User"
        (home / "Slippi").mkdir(parents=True)
        (home / "Slippi" / "user.json").write_text('{"connectCode": "BOT#1"}')
        s = NetplaySettings(
            **common, connect_code="ABCD#123", dolphin_home=home, own_code="BOT#1",
            max_matches=1, join_timeout_s=None,
        )  # fmt: skip
    return dataclasses.replace(s, **changes)


def _dolphin_pid(ishiiruka: Path) -> int:
    return int((ishiiruka / "dolphin.pid").read_text())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Pad:
    """Stands in for a controller's pipe (no Dolphin reads it): counts the frames it sends."""

    def __init__(self):
        self.flushes = 0

    def flush(self):
        self.flushes += 1

    def tilt_analog(self, button, x, y): ...

    def press_shoulder(self, button, amount): ...

    def press_button(self, button): ...

    def release_button(self, button): ...

    def release_all(self): ...


class Consoles(list):
    """A `make_console` for `_session` that keeps every console it builds (libmelee's real one,
    from `console_options`); `answers=False`: Slippi port 0, where no server ever answers."""

    def __init__(self, answers: bool = True):
        super().__init__()
        self.port = {} if answers else {"slippi_port": 0}

    def __call__(self, s):
        import melee

        self.append(melee.Console(**dolphin.console_options(s), **self.port))
        return self[-1]


# --- the keywords the runner passes to libmelee, against its real signatures -------------------


@linux_only
@pytest.mark.parametrize("kind", ["vs-cpu", "netplay"])
def test_console_options_build_a_real_console_and_stop_frees_it(tmp_path, ishiiruka, kind):
    import melee

    s = _settings(tmp_path, ishiiruka, kind)
    options = dolphin.console_options(s)
    inspect.signature(melee.Console).bind(**options)  # TypeError: a keyword libmelee lacks
    console = dolphin.dolphin_console(s)
    home = Path(console.dolphin_home_path)
    assert Path(console.temp_dir) in home.parents and (home / "Config" / "Dolphin.ini").is_file()
    assert console.blocking_input and console.replay_dir == str(s.replay_dir)
    assert console.online_delay == (2 if kind == "netplay" else 0)
    assert (home / "Slippi" / "user.json").is_file() == (kind == "netplay")  # the copied login
    # Never run nor connected: libmelee's own stop() raises AssertionError here.
    dolphin.stop(console)
    assert not Path(home).exists() and console.temp_dir is None


@pytest.fixture
def menu_calls(monkeypatch) -> list[dict]:
    """Every `menu_helper_simple` call's arguments, bound by libmelee's real signature (an
    argument it does not take raises TypeError), defaults filled in; the helper does nothing."""
    import melee

    calls, real = [], inspect.signature(melee.MenuHelper.menu_helper_simple)

    class Recording(melee.MenuHelper):
        def menu_helper_simple(self, *args, **kwargs):
            bound = real.bind(self, *args, **kwargs)
            bound.apply_defaults()
            calls.append(bound.arguments)

    monkeypatch.setattr(melee, "MenuHelper", Recording)
    return calls


def _menu_state():
    import melee

    state = melee.GameState()
    state.menu_state = melee.Menu.CHARACTER_SELECT
    return state


def test_vs_cpu_menus_call_libmelee_as_it_takes_them(tmp_path, menu_calls):
    import melee

    s = _settings(tmp_path, Path("/unused"), "vs-cpu")
    bot, cpu = Pad(), Pad()
    mode = runner.vs_cpu_mode(s, bot, cpu)
    state = _menu_state()
    mode.menus(state)
    assert len(menu_calls) == 2 and menu_calls[0]["self"] is not menu_calls[1]["self"]  # 2 helpers
    for call, controller, character, level, start in (
        (menu_calls[0], bot, melee.Character.FOX, 0, False),
        (menu_calls[1], cpu, melee.Character.FALCO, 9, True),
    ):
        assert call["gamestate"] is state and call["controller"] is controller
        assert call["character_selected"] == character
        assert call["stage_selected"] == melee.Stage.POKEMON_STADIUM
        assert (call["cpu_level"], call["autostart"], call["connect_code"]) == (level, start, None)
        assert call["frozen_stadium"] is False  # as in training: the stage transforms
    assert mode.menu_timeout_s == runner.MENU_TIMEOUT_S and mode.max_matches == 1


def test_netplay_menus_call_libmelee_as_it_takes_them(tmp_path, menu_calls):
    import melee

    s = _settings(tmp_path, Path("/unused"), "netplay")
    bot = Pad()
    mode = runner.netplay_mode(s, bot)
    mode.menus(_menu_state())
    (call,) = menu_calls
    assert call["controller"] is bot and call["character_selected"] == melee.Character.FOX
    assert (call["connect_code"], call["costume"], call["autostart"]) == ("ABCD#123", 0, True)
    assert call["frozen_stadium"] is False and call["cpu_level"] == 0
    assert mode.menu_timeout_s is None  # waits for the opponent unless told otherwise


# --- the netplay join wait ---------------------------------------------------------------------


class MenuConsole:
    """Yields `n` menu frames (the bot waiting for its opponent), then ends."""

    def __init__(self, n: int):
        self.n, self.frames = n, 0

    def step(self):
        if self.frames == self.n:
            return None
        self.frames += 1
        return _menu_state()


@pytest.mark.parametrize("join_timeout_s, frames", [(None, 100), (30.0, 4)])
def test_netplay_waits_for_its_opponent_as_long_as_told(
    tmp_path, menu_calls, join_timeout_s, frames
):
    s = _settings(tmp_path, Path("/unused"), "netplay", join_timeout_s=join_timeout_s)
    bot, console, now = Pad(), MenuConsole(100), [0.0]

    def clock():  # 10 s per frame: the 100 frames span 1000 s, past vs-cpu's 120 s
        now[0] += 10.0
        return now[0]

    mode = runner.netplay_mode(s, bot)
    session = runner.play(
        console, bot, [], mode, None, runner.Session(), out=print, warn=print, clock=clock
    )
    assert console.frames == frames and len(menu_calls) == frames - (join_timeout_s is not None)
    assert session.matches == [] and not session.ok
    if join_timeout_s is None:
        assert session.ended == "Dolphin stopped sending frames"
    else:
        assert session.ended == "no game started within 30 s in the menus"


# --- connecting ------------------------------------------------------------------------------


class SlippiServer:
    """An ENet host on 127.0.0.1 that accepts connections, as Dolphin's Slippi server does (it
    sends no frames). libmelee's `connect()` is True only once this host has answered."""

    def __init__(self):
        import enet

        self.port = free_port()
        self.host = enet.Host(enet.Address(b"127.0.0.1", self.port), 4, 0, 0)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._done.is_set():
            self.host.service(50)

    def close(self):
        self._done.set()
        self._thread.join()


@linux_only
def test_connect_tries_again_until_dolphins_server_answers(tmp_path, ishiiruka):
    import melee

    server = SlippiServer()
    console = melee.Console(path=str(ishiiruka), slippi_port=0)  # port 0: no answer, at once
    pauses = []

    def sleep(seconds):
        pauses.append(seconds)
        if len(pauses) == 2:  # Dolphin's server opens before the third try
            console.slippi_port = server.port

    try:
        assert dolphin.connect(console, timeout_s=30.0, sleep=sleep)
        assert pauses == [dolphin.CONNECT_RETRY_S] * 2
    finally:
        dolphin.stop(console)  # joins the third try's worker
        server.close()
    assert console.temp_dir is None


@linux_only
def test_a_dolphin_that_never_answers_ends_the_session_in_one_line(tmp_path, ishiiruka):
    s = _settings(tmp_path, ishiiruka, "vs-cpu", connect_timeout_s=2.5)
    consoles, lines = Consoles(answers=False), []
    never = lambda *_: pytest.fail("the body runs only once connected")  # noqa: E731
    session = runner._session(s, (1, 2), never, lines.append, make_console=consoles)
    assert session.ended == "could not connect to Dolphin's Slippi server within 2.5 s"
    assert not session.ok and lines == [
        f"Dolphin started (Slippi_Online-x86_64.AppImage); replays go to {s.replay_dir}"
    ]
    assert _gone(_dolphin_pid(ishiiruka)) and consoles[0].temp_dir is None


@linux_only
def test_a_dolphin_that_exits_is_not_waited_for(tmp_path, ishiiruka):
    (ishiiruka / "exit").touch()
    s = _settings(tmp_path, ishiiruka, "netplay", connect_timeout_s=30.0)
    session = runner._session(s, (1,), None, lambda _: None, make_console=Consoles(answers=False))
    assert session.ended == "Dolphin exited (status 3) before its Slippi server answered"
    assert not session.ok


# --- stopping only what started ------------------------------------------------------------------


@linux_only
def test_a_failure_before_dolphin_runs_is_reported_not_masked(tmp_path, ishiiruka):
    (tmp_path / "file").write_text("")
    s = _settings(tmp_path, ishiiruka, "vs-cpu", replay_dir=tmp_path / "file" / "replays")
    consoles = Consoles()
    with pytest.raises(UsageError) as error:
        runner._session(s, (1, 2), None, lambda _: None, make_console=consoles)
    assert str(error.value) == (
        f"--replay-dir {s.replay_dir}: cannot make the folder (Not a directory)"
    )
    assert not (ishiiruka / "dolphin.pid").exists()  # never run
    assert consoles[0].temp_dir is None  # the temporary user folder is gone all the same


@linux_only
def test_ctrl_c_while_dolphin_starts_stops_it(tmp_path, ishiiruka):
    s = _settings(tmp_path, ishiiruka, "netplay")
    consoles = Consoles()

    def out(line):  # Dolphin runs, nothing is connected yet
        deadline = time.monotonic() + 30
        while not (ishiiruka / "dolphin.pid").exists():  # its shell has started
            assert time.monotonic() < deadline, "the stand-in Dolphin never started"
            time.sleep(0.01)
        signal.raise_signal(signal.SIGINT)

    handler = signal.getsignal(signal.SIGINT)
    session = runner._session(s, (1,), None, out, make_console=consoles)
    assert (session.ended, session.ok) == ("stopped by SIGINT", True)
    assert _gone(_dolphin_pid(ishiiruka)) and consoles[0].temp_dir is None
    assert signal.getsignal(signal.SIGINT) is handler  # restored


def replay_file_console(name: str, fail_stop: bool = False):
    """libmelee's console on a replay file, seen by the session as Dolphin: `run()` has no process
    to start (libmelee's asserts `is_dolphin`); connect, step and stop are libmelee's own. Its
    `calls` list what the session did with it."""
    import melee

    class Console(melee.Console):
        def run(self, **kwargs):
            self.calls.append("run")

        def connect(self):
            self.calls.append("connect")
            return super().connect()

        def step(self):
            state = super().step()
            self.calls.append("frame" if state is not None else "end")
            return state

        def stop(self):
            self.calls.append("stop")
            super().stop()
            if fail_stop:
                raise RuntimeError("the pipe broke")

    console = Console(is_dolphin=False, path=str(replay_path(name)), allow_old_version=True)
    console.calls = []
    return console


@needs_replays
def test_a_session_plays_a_replay_to_its_end(tmp_path):
    s = _settings(tmp_path, Path("/unused"), "vs-cpu")
    console, bot, beats, lines = replay_file_console("peppi-v3.16.slp"), Pad(), [], []

    def body(console_, controllers, beat, session):
        assert console_ is console and controllers == []  # a replay file takes no controllers

        def counted():
            beats.append(1)
            beat()

        mode = runner.Mode(menus=None, seats=lambda state: None, feed_sent=True, max_matches=1)
        return runner.play(console_, bot, [], mode, None, session, out=lines.append, beat=counted)

    session = runner._session(s, (), body, lines.append, make_console=lambda _: console)
    frames = console.calls.count("frame")
    assert frames == 308 and len(beats) == frames and bot.flushes == 1 + frames
    assert console.calls == ["run", "connect", *["frame"] * frames, "end", "stop"]
    assert lines[1] == "match 1: over; the bot's port was never found (it stood still)"
    assert session.matches == [None] and not session.ok
    assert session.ended == "Dolphin stopped sending frames"
    assert s.replay_dir.is_dir()


@needs_replays
def test_an_error_stopping_dolphin_does_not_hide_the_first(tmp_path):
    s = _settings(tmp_path, Path("/unused"), "vs-cpu")
    console, warnings = replay_file_console("peppi-v3.16.slp", fail_stop=True), []

    def body(*_):
        raise ZeroDivisionError("the body failed")

    with pytest.raises(ZeroDivisionError, match="the body failed"):
        runner._session(s, (), body, print, warnings.append, make_console=lambda _: console)
    assert console.calls == ["run", "connect", "stop"]
    assert warnings == ["stopping Dolphin failed as well (RuntimeError: the pipe broke)"]
    # With nothing else in flight, the error stopping Dolphin is the error.
    console = replay_file_console("peppi-v3.16.slp", fail_stop=True)
    with pytest.raises(RuntimeError, match="the pipe broke"):
        runner._session(s, (), lambda *_: None, print, make_console=lambda _: console)
