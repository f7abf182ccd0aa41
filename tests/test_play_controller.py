"""Decode and press (SPEC 5.4) against libmelee's real `Controller` writing to a real named pipe.

No Dolphin and no mocks: a remote `melee.Console` with a temporary home lets `melee.Controller`
create its FIFO and write GCPadNew.ini as it does for Dolphin; a reader thread holds the other end
of the FIFO, as Dolphin would, and collects the text commands ("SET MAIN x y", "RELEASE A",
"PRESS L", "SET L v", "FLUSH"). The expected commands and classes are written out here again from
the SPEC, not read from the module under test.
"""

from __future__ import annotations

import fcntl
import itertools
import math
import os
import threading
from dataclasses import dataclass, field

import melee
import numpy as np
import pytest
from melee.controller import fix_analog_stick, fix_analog_trigger

from mmlib.features import build
from mmlib.features.controller import (
    BUTTON_CLASSES,
    C_STICK_CENTERS,
    MAIN_STICK_CENTERS,
    SHOULDER_LEVELS,
    button_class,
    c_stick_class,
    main_stick_class,
    shoulder_class,
)
from mmlib.features.raw import CONTROLLER_KEYS
from mmlib.play.controller import NEUTRAL, Choice, press, sent

# SPEC 5.4's table: the PRESS commands each button class sends, in order.
SPEC_PRESSES = {
    "A": ["PRESS A"],
    "B": ["PRESS B"],
    "Z": ["PRESS Z"],
    "JUMP": ["PRESS X"],
    "TRIG": ["PRESS L"],
    "A_TRIG": ["PRESS A", "PRESS L"],
    "NONE": [],
}
NONE = BUTTON_CLASSES.index("NONE")
SPEC_RELEASES = [f"RELEASE {b}" for b in ("A", "B", "X", "Y", "Z", "L", "R")]
JOIN_TIMEOUT_S = 5.0


@dataclass
class Pipe:
    """A connected libmelee Controller and the reader at the other end of its FIFO."""

    ctrl: melee.Controller
    reader: threading.Thread
    lines: list[str] = field(default_factory=list)

    def frames(self) -> list[list[str]]:
        """Close the controller, wait for the reader, and split the commands at each FLUSH.

        Every frame ends with its "FLUSH"; nothing may follow the last one.
        """
        self.ctrl.disconnect()
        self.reader.join(JOIN_TIMEOUT_S)
        if self.reader.is_alive():
            pytest.fail(f"the FIFO reader did not see EOF within {JOIN_TIMEOUT_S} s")
        out, frame = [], []
        for line in self.lines:
            frame.append(line)
            if line == "FLUSH":
                out.append(frame)
                frame = []
        assert frame == [], f"commands after the last FLUSH: {frame}"
        return out


@pytest.fixture
def pipe(tmp_path):
    """A real `melee.Controller` on port 1 of a remote console whose home is `tmp_path/User`.

    The console needs only `Config/Dolphin.ini` with a `[Core]` section (libmelee writes the
    controller's SIDevice there, and GCPadNew.ini beside it). The reader end is opened first
    without blocking, so `ctrl.connect()` (a blocking open for writing) returns at once; then it
    is made blocking and drained by a thread until the controller closes its end (EOF).
    """
    home = tmp_path / "User"
    (home / "Config").mkdir(parents=True)
    (home / "Config" / "Dolphin.ini").write_text("[Core]\n")
    console = melee.Console(is_dolphin=True, is_remote=True, dolphin_home_path=str(home))
    ctrl = melee.Controller(console, 1)
    fd = os.open(ctrl.pipe_path, os.O_RDONLY | os.O_NONBLOCK)
    assert ctrl.connect()
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    lines: list[str] = []

    def read():
        with os.fdopen(fd, "r") as f:
            lines.extend(line.rstrip("\n") for line in f)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    p = Pipe(ctrl, reader, lines)
    yield p
    ctrl.disconnect()  # ends the reader if the test failed before reading
    reader.join(JOIN_TIMEOUT_S)


def set_values(line: str, name: str) -> tuple[float, ...]:
    """The numbers of a "SET <name> ..." command."""
    words = line.split()
    assert words[:2] == ["SET", name], line
    return tuple(float(w) for w in words[2:])


def read_back(v: float) -> float:
    """The [0, 1] stick value the game reports for pipe value `v` (libmelee's model, SPEC 5.4).

    Dolphin's raw stick is floor((v - 0.5) * 254) (libmelee's `fix_analog_stick` comment); Melee
    reads raw / 80 in [-1, 1]; libmelee reports that / 2 + 0.5. Every centre lies inside Melee's
    80 circle and outside its dead zone, so neither matters here.
    """
    return math.floor((v - 0.5) * 254) / 160 + 0.5


def choice_of(main=0, c=0, button=NONE, shoulder=0) -> Choice:
    return Choice(shoulder=shoulder, c=c, main=main, button=button)


@pytest.mark.parametrize("name", BUTTON_CLASSES)
def test_each_button_class_sends_the_spec_commands(pipe, name):
    choice = choice_of(button=BUTTON_CLASSES.index(name), shoulder=2)
    press(pipe.ctrl, choice)
    [frame] = pipe.frames()
    assert frame[0].startswith("SET MAIN ")
    assert frame[1].startswith("SET C ")
    assert frame[2:9] == SPEC_RELEASES
    assert frame[9].startswith("SET L ")
    assert frame[10:] == SPEC_PRESSES[name] + ["FLUSH"]
    # the bugs this guards against: TRIG analog-only, JUMP on Y, anything on R
    assert not any(line in ("PRESS Y", "PRESS R") or line.startswith("SET R") for line in frame)
    if name in ("TRIG", "A_TRIG"):
        assert "PRESS L" in frame


def test_stick_and_shoulder_values_are_libmelees_fixed_centres(pipe):
    mains = [choice_of(main=i) for i in range(len(MAIN_STICK_CENTERS))]
    cs = [choice_of(c=i) for i in range(len(C_STICK_CENTERS))]
    shoulders = [choice_of(shoulder=i) for i in range(len(SHOULDER_LEVELS))]
    current = []
    for choice in mains + cs + shoulders:
        press(pipe.ctrl, choice)
        current.append((pipe.ctrl.current.main_stick, pipe.ctrl.current.c_stick))
    frames = pipe.frames()
    assert len(frames) == len(mains) + len(cs) + len(shoulders)
    for choice, frame, (cur_main, cur_c) in zip(
        mains + cs + shoulders, frames, current, strict=True
    ):
        for name, centres, cls, cur, k in (
            ("MAIN", MAIN_STICK_CENTERS, main_stick_class, cur_main, choice.main),
            ("C", C_STICK_CENTERS, c_stick_class, cur_c, choice.c),
        ):
            line = frame[0] if name == "MAIN" else frame[1]
            x, y = set_values(line, name)
            cx, cy = (float(v) for v in centres[k])
            assert (x, y) == (fix_analog_stick(cx), fix_analog_stick(cy)), (name, k)
            assert (x, y) == cur  # libmelee records the fixed (pipe) value
            assert cls(read_back(x), read_back(y)) == k, (name, k, x, y)
        (level,) = set_values(frame[9], "L")
        assert level == fix_analog_trigger(SHOULDER_LEVELS[choice.shoulder])
        assert shoulder_class(math.floor(level * 255) / 140) == choice.shoulder


def test_libmelee_current_state_agrees_with_sent(pipe):
    n_main, n_c = len(MAIN_STICK_CENTERS), len(C_STICK_CENTERS)
    n_btn, n_sh = len(BUTTON_CLASSES), len(SHOULDER_LEVELS)
    # every class of every head, in varying company, frame after frame on one controller
    choices = [
        Choice(shoulder=i % n_sh, c=(i * 5) % n_c, main=i % n_main, button=(i * 3) % n_btn)
        for i in range(n_main * n_btn)
    ]
    B = melee.Button
    for choice in choices:
        out = press(pipe.ctrl, choice)
        assert out == sent(choice)
        cur = pipe.ctrl.current
        held = cur.button
        assert not held[B.BUTTON_Y] and not held[B.BUTTON_R] and cur.r_shoulder == 0
        got = button_class(
            held[B.BUTTON_A],
            held[B.BUTTON_B],
            held[B.BUTTON_Z],
            held[B.BUTTON_X] or held[B.BUTTON_Y],
            held[B.BUTTON_L] or held[B.BUTTON_R],
        )
        assert got == button_class(out["a"], out["b"], out["z"], out["jump"], out["trig"])
        assert got == choice.button
        assert (held[B.BUTTON_L], cur.l_shoulder) == (out["trig"], out["shoulder"])
        assert shoulder_class(cur.l_shoulder) == choice.shoulder
        assert main_stick_class(*map(read_back, cur.main_stick)) == choice.main
        assert main_stick_class(out["main_x"], out["main_y"]) == choice.main
        assert c_stick_class(*map(read_back, cur.c_stick)) == choice.c
        assert c_stick_class(out["c_x"], out["c_y"]) == choice.c
    assert len(pipe.frames()) == len(choices)


def test_sent_round_trips_through_controller_classes_for_every_choice():
    heads = (len(SHOULDER_LEVELS), len(C_STICK_CENTERS), len(MAIN_STICK_CENTERS))
    grid = list(itertools.product(*(range(n) for n in heads), range(len(BUTTON_CLASSES))))
    assert len(grid) == 3 * 9 * 37 * 7
    rows = [sent(Choice(shoulder=s, c=c, main=m, button=b)) for s, c, m, b in grid]
    for row in rows[:: len(BUTTON_CLASSES) * 37]:
        assert tuple(row) == CONTROLLER_KEYS
        assert all(type(row[k]) is float for k in CONTROLLER_KEYS[:5])
        assert all(type(row[k]) is bool for k in CONTROLLER_KEYS[5:])
    raw = {"self_" + k: np.array([r[k] for r in rows]) for k in CONTROLLER_KEYS}
    got = build.controller_classes(raw)
    want = np.array(grid)  # (6993, 4): shoulder, c, main, button
    for j, head in enumerate(("shoulder", "c", "main", "button")):
        np.testing.assert_array_equal(got[head], want[:, j], err_msg=head)
    # and one frame at a time, as OnlineFeatures receives it
    for (s, c, m, b), r in zip(grid[::97], rows[::97], strict=True):
        one = build.controller_classes({"self_" + k: np.array([v]) for k, v in r.items()})
        assert [int(one[h][0]) for h in ("shoulder", "c", "main", "button")] == [s, c, m, b]


def test_sent_bits_follow_the_spec_table():
    bits = {  # SPEC 5.4: the bits `sent` reports per class (jump = X, trig = digital L)
        "A": {"a"},
        "B": {"b"},
        "Z": {"z"},
        "JUMP": {"jump"},
        "TRIG": {"trig"},
        "A_TRIG": {"a", "trig"},
        "NONE": set(),
    }
    for k, name in enumerate(BUTTON_CLASSES):
        out = sent(choice_of(button=k))
        assert {b for b in ("a", "b", "z", "jump", "trig") if out[b]} == bits[name], name
    assert sent(NEUTRAL) == dict.fromkeys(CONTROLLER_KEYS[:4], 0.5) | {"shoulder": 0.0} | dict(
        a=False, b=False, z=False, jump=False, trig=False
    )


@pytest.mark.parametrize("name", BUTTON_CLASSES)
def test_a_repeated_class_is_released_and_pressed_within_each_frame(pipe, name):
    choice = choice_of(button=BUTTON_CLASSES.index(name), main=9, c=1, shoulder=1)
    press(pipe.ctrl, choice)
    press(pipe.ctrl, choice)
    frames = pipe.frames()
    assert len(frames) == 2 and frames[0] == frames[1]
    for frame in frames:
        assert frame.count("FLUSH") == 1 and frame[-1] == "FLUSH"
        for line in SPEC_PRESSES[name]:
            release = "RELEASE " + line.split()[1]
            # the release comes before the press, and no FLUSH falls between them: held
            assert frame.index(release) < frame.index(line) < frame.index("FLUSH")


@pytest.mark.parametrize("bad", [dict(main=37), dict(c=-1), dict(button=7), dict(shoulder=3)])
def test_choice_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        choice_of(**bad)
