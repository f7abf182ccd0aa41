"""The live runners: a trained policy in Slippi Dolphin, against the game's CPU (`run_vs_cpu`)
or a human over Slippi netplay (`run_netplay`). Both take settings already checked by
`mmlib.play.settings`, so everything here happens after the user's arguments are known good.

Each frame (`play`): `state = console.step()`; in a game, the bot's `StreamingPolicy` (a fresh one
per match, made once both ports are known) gives a `Choice` that `press` sends, and `NEUTRAL` is
pressed on frames the model is not fed; in the menus, libmelee's `MenuHelper` drives each
controller (SPEC 5.5). A match ends at the first menu after a game; vs-cpu then stops, netplay
stops after `max_matches`. Ctrl-C (SIGINT) or SIGTERM stops Dolphin and ends the session cleanly.

A session (`_session`) builds the console (`mmlib.play.dolphin`), starts Dolphin, connects to its
Slippi server, retrying for `connect_timeout_s`, runs the frame loop and always stops what it
started, whatever ended it. In the menus, vs-cpu ends after `MENU_TIMEOUT_S` without a game (the
CPU needs nobody); netplay waits for its opponent as long as `join_timeout_s` allows (None: for
ever). The menus pick the stage as training saw it: Pokemon Stadium transforms (not frozen).

One FLUSH per controller per frame. libmelee's `Console.step` flushes every connected controller
before it reads a frame, and `press` flushes as well: with two FLUSHes in a frame, a blocking
Dolphin may run the next frame on the second without waiting for the bot. So the runners take
their controllers off `console.controllers` and flush each exactly once per frame themselves (the
first before the first frame, where `step` would have).

The controller fed back to the policy: vs-cpu passes what `press` sent on the previous frame (it
produced this frame: no online delay). Netplay runs with `online_delay=2`, so what the bot sent
reaches the game two frames later; there the policy reads the input the game actually applied
from the `GameState` instead (`step(state, None)`), which is how training pairs inputs and states.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mmlib.play.dolphin import STALL_S, Watchdog, connect, dolphin_console, exit_status, stop
from mmlib.play.match import (
    FrameBudget,
    MatchResult,
    describe,
    detect_ports,
    fixed_ports,
    in_game,
    match_result,
)
from mmlib.play.settings import (
    BotSettings,
    NetplaySettings,
    VsCpuSettings,
    melee_character,
    melee_stage,
)

MENU_TIMEOUT_S = 120.0  # vs-cpu: no game within this long in the menus, the session ends
COSTUME = 0  # the bot's costume (netplay's port detection looks for it)
FROZEN_STADIUM = False  # training games have the transforming Pokemon Stadium


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _stdout(line: str) -> None:
    print(line, flush=True)


@dataclass
class Session:
    """How a session went: its matches and why it ended."""

    matches: list[MatchResult | None] = field(default_factory=list)  # None: bot's port unknown
    ended: str = ""  # why the session ended, one line
    ok: bool = True  # False when Dolphin failed or went away (exit status 1)


@dataclass
class Mode:
    """What differs between vs-cpu and netplay inside the frame loop."""

    menus: Callable  # (state) -> None: one menu frame's inputs on every controller (no flush)
    seats: Callable  # (state) -> (bot port, opponent port) | None
    feed_sent: bool  # feed the policy what `press` sent (True) or the GameState's input (False)
    max_matches: int  # stop after this many matches; -1: no limit
    menu_timeout_s: float | None = MENU_TIMEOUT_S  # no game this long in the menus: end; None: wait


@dataclass
class _Match:
    number: int  # from 1
    seats: tuple[int, int] | None = None  # (bot, opponent), once known
    policy: object = None  # its StreamingPolicy, made when the seats are known
    sent: dict | None = None  # what the bot pressed on the previous frame
    fed: int = 0  # frames the policy was fed
    last: object = None  # the last in-game GameState


def play(
    console,
    bot,
    others: list,
    mode: Mode,
    new_policy: Callable,
    session: Session,
    *,
    out: Callable[[str], None] = _stdout,
    warn: Callable[[str], None] = _stderr,
    beat: Callable[[], None] = lambda: None,
    clock: Callable[[], float] = time.monotonic,
) -> Session:
    """The frame loop, until the mode's last match ends or the frames stop.

    Args:
        console: anything whose `step()` returns the next `GameState` or None (a libmelee
            `Console`: Dolphin, or a replay file in the tests).
        bot: the bot's controller (libmelee `Controller` calls, off `console.controllers`).
        others: the other controllers this process drives (the CPU's), flushed every frame.
        new_policy: (bot port, opponent port, match index from 0) -> `StreamingPolicy`.
        session: filled in place (matches, ended, ok) and returned.
        beat: called on every frame (the stall watchdog).
        clock: seconds, for the menu timeout.
    """
    from mmlib.play.controller import NEUTRAL, press

    controllers = [bot, *others]
    budget = FrameBudget()
    match: _Match | None = None
    menu_since = clock()
    for c in controllers:
        c.flush()  # the first frame's input, as `Console.step` would send it
    while True:
        state = console.step()
        if state is None:
            if match is not None:
                _end(match, session, out, unfinished=True)
            session.ended, session.ok = "Dolphin stopped sending frames", False
            return session
        beat()
        if in_game(state):
            if match is None:
                match = _Match(len(session.matches) + 1)
                for c in controllers:
                    c.release_all()  # nothing held over from the menus (START, a stick)
            if match.seats is None and (seats := mode.seats(state)) is not None:
                match.seats, match.policy = seats, new_policy(*seats, match.number - 1)
                out(f"match {match.number}: {describe(state, *seats)}")
            start = time.perf_counter()
            decision = None
            if match.policy is not None:
                feed = match.sent if mode.feed_sent else None
                decision = match.policy.step(state, feed)
            match.sent = press(bot, decision.choice if decision is not None else NEUTRAL)
            match.last = state
            elapsed = time.perf_counter() - start
            if decision is not None:
                match.fed += 1
            # The first fed frame also fills the context (prefill) and warms torch up: not timed.
            if not (decision is not None and match.fed == 1):
                if (slow := budget.record(elapsed)) is not None:
                    warn(slow)
            for c in others:
                c.flush()
            continue
        if match is not None:
            _end(match, session, out)
            match, menu_since = None, clock()
            if len(session.matches) == mode.max_matches:
                n = len(session.matches)
                session.ended = f"{n} match{'es' if n > 1 else ''} played"
                return session
        limit = mode.menu_timeout_s
        if limit is not None and clock() - menu_since > limit:
            session.ended = f"no game started within {limit:g} s in the menus"
            session.ok = False
            return session
        mode.menus(state)
        for c in controllers:
            c.flush()


def _end(match: _Match, session: Session, out, unfinished: bool = False) -> None:
    if match.seats is None:
        session.matches.append(None)
        out(f"match {match.number}: over; the bot's port was never found (it stood still)")
        return
    result = match_result(match.last, *match.seats)
    session.matches.append(result)
    line = f"unfinished at {result.score()}" if unfinished else result.line()
    out(f"match {match.number}: {line}")


class Stopped(Exception):
    """SIGINT or SIGTERM arrived: leave the loop, stop Dolphin, exit 0."""


def _session(
    s: BotSettings,
    ports: tuple[int, ...],
    body: Callable,
    out: Callable[[str], None] = _stdout,
    warn: Callable[[str], None] = _stderr,
    make_console: Callable = dolphin_console,
) -> Session:
    """Build the console (`make_console(s)`: Dolphin's; a replay file's in the tests) with a
    controller on each port, start Dolphin, connect, run `body(console, controllers, beat,
    session)`, and always stop what was started, whatever ended the session.

    An error stopping Dolphin after another error is one line on `warn`: the first one goes on.
    """
    import melee
    from melee.slippstream import EnetDisconnected

    from mmlib.errors import UsageError

    session, console, controllers, watchdog, failed = Session(), None, [], None, False
    pid = os.getpid()

    def on_signal(signum, frame):
        if os.getpid() != pid:  # libmelee's forked connection worker: let it exit quietly
            raise KeyboardInterrupt
        raise Stopped(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        console = make_console(s)
        controllers = [
            melee.Controller(console=console, port=p, type=melee.ControllerType.STANDARD)
            for p in ports
        ]
        try:
            s.replay_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(
                f"--replay-dir {s.replay_dir}: cannot make the folder ({e.strerror})"
            ) from None
        console.run(iso_path=str(s.iso_path))
        out(f"Dolphin started ({s.dolphin_exe.name}); replays go to {s.replay_dir}")
        if not connect(console, s.connect_timeout_s):
            status = exit_status(console)
            session.ok = False
            session.ended = (
                f"could not connect to Dolphin's Slippi server within {s.connect_timeout_s:g} s"
                if status is None
                else f"Dolphin exited (status {status}) before its Slippi server answered"
            )
            return session
        for c in controllers:
            if not c.connect():
                session.ended, session.ok = f"could not open the pipe of port {c.port}", False
                return session
            console.controllers.remove(c)  # flushed by the loop only (module docstring)
        watchdog = Watchdog(console)
        watchdog.start()
        return body(console, controllers, watchdog.beat, session)
    except Stopped as e:
        session.ended = f"stopped by {e}"
        return session
    except EnetDisconnected:
        session.ok = False
        session.ended = (
            f"no frame from Dolphin for {STALL_S:.0f} s"
            if watchdog is not None and watchdog.fired
            else "Dolphin closed the connection"
        )
        return session
    except BaseException:
        failed = True
        raise
    finally:
        for sig in previous:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        try:
            if watchdog is not None:
                watchdog.stop()
            for c in controllers:
                c.disconnect()
            if console is not None:
                stop(console)
        except Exception as e:
            if not failed:
                raise
            warn(f"stopping Dolphin failed as well ({type(e).__name__}: {e})")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _policy_factory(s: BotSettings, console) -> Callable:
    from mmlib.play.policy import StreamingPolicy

    def new_policy(me: int, opp: int, index: int):
        version = console.slp_version_tuple or (3, 18, 0)
        return StreamingPolicy(
            s.policy,
            me,
            opp,
            temperature=s.temperatures,
            seed=s.seed + index,
            version=tuple(int(v) for v in version),
        )

    return new_policy


def vs_cpu_mode(s: VsCpuSettings, bot, cpu) -> Mode:
    """vs-cpu: libmelee's menu helper drives the bot's controller and the CPU's (which starts the
    game); the seats are the fixed ports; one match."""
    import melee

    character, cpu_character = melee_character(s.character), melee_character(s.cpu_character)
    stage = melee_stage(s.stage)
    helpers = melee.MenuHelper(), melee.MenuHelper()

    def menus(state):
        helpers[0].menu_helper_simple(
            state, bot, character, stage, cpu_level=0, autostart=False,
            frozen_stadium=FROZEN_STADIUM,
        )  # fmt: skip
        helpers[1].menu_helper_simple(
            state, cpu, cpu_character, stage, cpu_level=s.cpu_level, autostart=True,
            frozen_stadium=FROZEN_STADIUM,
        )  # fmt: skip

    return Mode(
        menus=menus,
        seats=lambda state: fixed_ports(state, s.port, s.cpu_port),
        feed_sent=True,
        max_matches=1,
    )


def netplay_mode(s: NetplaySettings, bot) -> Mode:
    """Netplay: the menu helper enters the opponent's connect code and waits for them up to
    `join_timeout_s` (None: for ever); the seats are found in the game (`detect_ports`)."""
    import melee

    character, stage = melee_character(s.character), melee_stage(s.stage)
    helper = melee.MenuHelper()

    def menus(state):
        helper.menu_helper_simple(
            state, bot, character, stage, connect_code=s.connect_code, costume=COSTUME,
            autostart=True, swag=False, frozen_stadium=FROZEN_STADIUM,
        )  # fmt: skip

    return Mode(
        menus=menus,
        seats=lambda state: detect_ports(state, character, COSTUME, s.own_code),
        feed_sent=False,
        max_matches=s.max_matches,
        menu_timeout_s=s.join_timeout_s,
    )


def run_vs_cpu(s: VsCpuSettings, out=_stdout, warn=_stderr) -> Session:
    """One game against the game's CPU; ends at the first menu after it (SPEC 5.5)."""
    out(
        f"vs-cpu: {s.character} (port {s.port}, {s.checkpoint}) vs a level-{s.cpu_level} "
        f"{s.cpu_character} CPU (port {s.cpu_port}) on {s.stage}"
    )

    def body(console, controllers, beat, session):
        bot, cpu = controllers
        mode, new_policy = vs_cpu_mode(s, bot, cpu), _policy_factory(s, console)
        return play(console, bot, [cpu], mode, new_policy, session, out=out, warn=warn, beat=beat)

    return _session(s, (s.port, s.cpu_port), body, out, warn)


def run_netplay(s: NetplaySettings, out=_stdout, warn=_stderr) -> Session:
    """Direct-connect matches against `s.connect_code` over Slippi online, up to `max_matches`.

    The bot's controller is on port 1 (Slippi online's local port); in a game the bot's port is
    found by its connect code, else its character and costume (`detect_ports`).
    """
    limit = "no limit" if s.max_matches == -1 else f"up to {s.max_matches}"
    code = f" ({s.own_code})" if s.own_code else ""
    wait = "for ever" if s.join_timeout_s is None else f"up to {s.join_timeout_s:g} s"
    out(
        f"netplay: {s.character}{code} vs {s.connect_code}, {limit} match(es), waiting {wait} "
        f"for them to join; stage {s.stage} if the bot picks"
    )

    def body(console, controllers, beat, session):
        (bot,) = controllers
        mode, new_policy = netplay_mode(s, bot), _policy_factory(s, console)
        return play(console, bot, [], mode, new_policy, session, out=out, warn=warn, beat=beat)

    return _session(s, (1,), body, out, warn)
