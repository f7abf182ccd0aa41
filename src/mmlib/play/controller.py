"""Decode and press (SPEC 5.4): the policy's four sampled classes -> libmelee `Controller` calls.

A `Choice` holds the four classes the policy sampled for one frame (shoulder 3, c-stick 9, main
stick 37, button 7; the tables live in `mmlib.features.controller`). `press` sends it to Dolphin
through a libmelee `Controller`; `sent` is the raw controller it sends, keyed by
`raw.CONTROLLER_KEYS`, which becomes the next frame's controller input
(`OnlineFeatures.push(state, controller=sent(choice))`). Read back through the class functions,
`sent(choice)` gives `choice` again, for every one of the 37 * 9 * 7 * 3 choices.

Why TRIG presses the *digital* L: libmelee's `press_shoulder` only sets the analog trigger and
never the digital L/R bit (its own docstring says so). Analog alone crosses the shield threshold,
but airdodge (so wavedash), tech and shield-grab need the digital press. MIMIC's 7-class decoder
sent only the analog value for TRIG and only A for A_TRIG, so none of its bots ever wavedashed
(SPEC 5.4, "The TRIG bug"). Here TRIG presses L and A_TRIG presses A and L; the analog L is
always set from the shoulder class, and R (analog or digital) is never used.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmlib.features.controller import (
    BTN_A,
    BTN_A_TRIG,
    BTN_B,
    BTN_JUMP,
    BTN_NONE,
    BTN_TRIG,
    BTN_Z,
    C_STICK_CENTERS,
    MAIN_STICK_CENTERS,
    N_BUTTON,
    N_C,
    N_MAIN,
    N_SHOULDER,
    SHOULDER_LEVELS,
)

# The digital buttons each button class presses (libmelee `Button` values). JUMP is X, never Y;
# TRIG is the digital L, never R.
PRESSES: dict[int, tuple[str, ...]] = {
    BTN_A: ("A",),
    BTN_B: ("B",),
    BTN_Z: ("Z",),
    BTN_JUMP: ("X",),
    BTN_TRIG: ("L",),
    BTN_A_TRIG: ("A", "L"),
    BTN_NONE: (),
}
# Released every frame before the presses, in this order.
RELEASES: tuple[str, ...] = ("A", "B", "X", "Y", "Z", "L", "R")


@dataclass(frozen=True, slots=True)
class Choice:
    """The four classes sampled for one frame."""

    shoulder: int  # 0..2, index into SHOULDER_LEVELS (0, 0.4, 1): the analog L
    c: int  # 0..8, index into C_STICK_CENTERS
    main: int  # 0..36, index into MAIN_STICK_CENTERS
    button: int  # 0..6, index into BUTTON_CLASSES (A, B, Z, JUMP, TRIG, A_TRIG, NONE)

    def __post_init__(self):
        for name, n in (
            ("shoulder", N_SHOULDER),
            ("c", N_C),
            ("main", N_MAIN),
            ("button", N_BUTTON),
        ):
            value = getattr(self, name)
            if not 0 <= value < n:
                raise ValueError(f"Choice.{name} must be in 0..{n - 1}, got {value}")


NEUTRAL = Choice(shoulder=0, c=0, main=0, button=BTN_NONE)


def sent(choice: Choice) -> dict:
    """The raw controller `choice` sends, keyed by `raw.CONTROLLER_KEYS` in that order.

    Sticks are the class centres (python floats of the float32 tables, libmelee's [0, 1], y up),
    `shoulder` is the analog L level, and the five bools are the digital bits as the replays
    record them (`jump` = X or Y, `trig` = digital L or R). These are the values the game reads
    back, not the analog-fixed values libmelee writes to the pipe: the next frame's input.
    """
    main_x, main_y = MAIN_STICK_CENTERS[choice.main].tolist()
    c_x, c_y = C_STICK_CENTERS[choice.c].tolist()
    held = PRESSES[choice.button]
    return {
        "main_x": main_x,
        "main_y": main_y,
        "c_x": c_x,
        "c_y": c_y,
        "shoulder": float(SHOULDER_LEVELS[choice.shoulder]),
        "a": "A" in held,
        "b": "B" in held,
        "z": "Z" in held,
        "jump": "X" in held or "Y" in held,
        "trig": "L" in held or "R" in held,
    }


def press(ctrl, choice: Choice) -> dict:
    """Send `choice` through a connected libmelee `Controller` as one frame; return `sent(choice)`.

    Commands, in order (SPEC 5.4): main stick to its centre; c-stick to its centre; release A, B,
    X, Y, Z, L, R; analog L to the shoulder level (always sent; R analog never used); press the
    class's buttons (A; B; Z; JUMP -> X; TRIG -> digital L; A_TRIG -> A and digital L; NONE ->
    nothing); then one `flush()`. libmelee buffers the frame's commands and writes them to the
    pipe at the flush, and Dolphin applies them together (in blocking mode it reads up to the
    FLUSH), so the release and the press of a class repeated on consecutive frames cancel: the
    button stays held with no gap between frames. A new rising edge (a second jump, a re-press of
    A) needs at least one frame of another class in between.

    Args:
        ctrl: a connected `melee.Controller` (its default `fix_analog_inputs=True` maps the
            centres so the game reads them back unchanged).
        choice: the four sampled classes.
    Returns:
        `sent(choice)`: the raw controller to feed back as the next frame's input.
    """
    from melee import Button

    out = sent(choice)
    ctrl.tilt_analog(Button.BUTTON_MAIN, out["main_x"], out["main_y"])
    ctrl.tilt_analog(Button.BUTTON_C, out["c_x"], out["c_y"])
    for name in RELEASES:
        ctrl.release_button(Button(name))
    ctrl.press_shoulder(Button.BUTTON_L, out["shoulder"])
    for name in PRESSES[choice.button]:
        ctrl.press_button(Button(name))
    ctrl.flush()
    return out
