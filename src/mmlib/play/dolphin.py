"""Slippi Dolphin through libmelee's `Console`: its options, connecting, stopping, the watchdog.

`console_options` are the `melee.Console` keyword arguments of a session (SPEC 5.5);
`dolphin_console` builds that console or raises `UsageError` with one line. `connect` and `stop`
wrap `Console.connect` and `Console.stop` around two behaviours of libmelee 0.47.6 (pinned in
pyproject.toml), both found by running them against a stand-in Dolphin executable:

- One `connect()` waits about 10 s for Dolphin's Slippi server, and a failed one leaves the
  console's `SlippstreamClient` without its worker process: a second `connect()` raises
  AttributeError. A Dolphin that takes longer to open its server (the first start of an AppImage,
  a slow disk) needs more tries, each on a fresh client.
- `stop()` first joins that worker, which only `connect()` starts: on a console never connected
  it raises AssertionError ('can only join a started process') before it kills Dolphin or removes
  the temporary home folder.

Both reach into libmelee's private attributes (`_slippstream`, `_process`); a libmelee upgrade
must rerun the tests in tests/test_play_session.py, which build real consoles.

`Watchdog` interrupts a `Console.step` that waits for a frame that never comes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from mmlib.play.settings import BotSettings, NetplaySettings

NETPLAY_DELAY = 2  # frames of online delay (SPEC 5.5)
CONNECT_RETRY_S = 1.0  # pause between two connection tries
STALL_S = 30.0  # no frame from Dolphin for this long: the session ends (`Watchdog`)


def console_options(s: BotSettings) -> dict:
    """The `melee.Console` keyword arguments of a session (SPEC 5.5)."""
    options = dict(
        path=str(s.dolphin_path),
        is_dolphin=True,
        tmp_home_directory=True,  # a fresh Dolphin user folder per session, deleted at stop
        blocking_input=True,  # Dolphin waits for the bot's FLUSH every frame
        setup_gecko_codes=True,
        fullscreen=False,
        disable_audio=False,
        use_exi_inputs=False,
        enable_ffw=False,
        save_replays=True,
        replay_dir=str(s.replay_dir),
    )
    if isinstance(s, NetplaySettings):
        # The user's own Dolphin folder, copied: its user.json logs in to Slippi online, and its
        # graphics backend (None: kept as it is there) is the one that works on this machine.
        options |= dict(
            online_delay=NETPLAY_DELAY,
            copy_home_directory=True,
            dolphin_home_path=str(s.dolphin_home),
            gfx_backend=None,
        )
    else:
        options |= dict(online_delay=0, copy_home_directory=False, gfx_backend="")
    return options


def dolphin_console(s: BotSettings):
    """The session's `melee.Console` (libmelee runs `--version` on the executable here, and makes
    the temporary user folder); UsageError when libmelee cannot use this Dolphin."""
    import melee

    from mmlib.errors import UsageError

    try:
        return melee.Console(**console_options(s))
    except (OSError, ValueError, RuntimeError, AssertionError) as e:
        raise UsageError(
            f"--dolphin-path {s.dolphin_path}: libmelee cannot use this Dolphin "
            f"({type(e).__name__}: {e})"
        ) from None


def exit_status(console) -> int | None:
    """Dolphin's exit status once its process has ended; None while it runs or before `run()`."""
    process = getattr(console, "_process", None)
    return None if process is None else process.poll()


def connect(console, timeout_s: float, sleep: Callable[[float], None] = time.sleep) -> bool:
    """`console.connect()`, tried again every `CONNECT_RETRY_S` until it succeeds; False once
    `timeout_s` have passed (no try starts later) or Dolphin has exited."""
    from melee.slippstream import SlippstreamClient

    deadline = time.monotonic() + timeout_s
    while not console.connect():
        if time.monotonic() + CONNECT_RETRY_S > deadline or exit_status(console) is not None:
            return False
        sleep(CONNECT_RETRY_S)
        if isinstance(console._slippstream, SlippstreamClient):  # the failed one has no worker
            console._slippstream = SlippstreamClient(console.slippi_address, console.slippi_port)
    return True


def stop(console) -> None:
    """`console.stop()` in any state: kills Dolphin if it was started, joins the connection worker
    if `connect()` started it, removes the temporary user folder (module docstring)."""
    from melee.slippstream import SlippstreamClient

    stream = console._slippstream
    if isinstance(stream, SlippstreamClient) and stream._worker is not None:
        if stream._worker.pid is None:  # never started: nothing to join
            stream._buffer.close()
            stream._worker = None
    console.stop()


class Watchdog:
    """Interrupts `console.step` when no frame has come for `stall_s` seconds (a Dolphin whose
    emulation stopped while its window stays open never closes the connection)."""

    def __init__(self, console, stall_s: float = STALL_S):
        self.console, self.stall_s = console, stall_s
        self.last, self.fired = time.monotonic(), False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def beat(self) -> None:
        self.last = time.monotonic()

    def _run(self) -> None:
        while not self._done.wait(1.0):
            if time.monotonic() - self.last > self.stall_s:
                self.fired = True
                self.console.interrupt()  # step() then raises EnetDisconnected
                return

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
