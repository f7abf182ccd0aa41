"""The controller encoding (SPEC 3.7): button priority, stick and shoulder classes, the one-hot.

The button rules are checked on all 128 combinations of the 7 digital bits against a plain
per-frame reference written here; the stick tables against the SPEC's table copied again here;
`to_unit` against libmelee's own pre-frame parser.
"""

from __future__ import annotations

import itertools
import json
import struct

import numpy as np
import pytest

from mmlib.features import controller as ctl
from mmlib.features.controller import (
    BUTTON_CLASSES,
    C_STICK_CENTERS,
    CONTROLLER_DIM,
    MAIN_STICK_CENTERS,
    SHOULDER_LEVELS,
    button_class,
    c_stick_class,
    controller_combos_json,
    main_stick_class,
    one_hot,
    shoulder_class,
    stick_clusters_json,
    to_unit,
)

BITS = ("A", "B", "X", "Y", "Z", "L", "R")  # the 7 digital bits that matter (START, D-pad do not)


def reference_class(pressed: set[str]) -> str:
    """SPEC 3.7's rules for one frame, as plainly as possible."""
    jump = "X" in pressed or "Y" in pressed
    trig = "L" in pressed or "R" in pressed
    if "B" in pressed:
        return "B"
    elif "A" in pressed and trig:
        return "A_TRIG"
    elif "Z" in pressed:
        return "Z"
    elif "A" in pressed:
        return "A"
    elif trig:
        return "TRIG"
    elif jump:
        return "JUMP"
    else:
        return "NONE"


def call(pressed: set[str]):
    """button_class on one frame given as a set of pressed bits (python bools)."""
    return button_class(
        "A" in pressed,
        "B" in pressed,
        "Z" in pressed,
        "X" in pressed or "Y" in pressed,
        "L" in pressed or "R" in pressed,
    )


ALL_COMBOS = [
    {b for b, on in zip(BITS, mask, strict=True) if on}
    for mask in itertools.product((False, True), repeat=7)
]


def test_class_names_and_sizes():
    assert BUTTON_CLASSES == ("A", "B", "Z", "JUMP", "TRIG", "A_TRIG", "NONE")
    consts = (ctl.BTN_A, ctl.BTN_B, ctl.BTN_Z, ctl.BTN_JUMP, ctl.BTN_TRIG, ctl.BTN_A_TRIG)
    assert consts + (ctl.BTN_NONE,) == tuple(range(7))
    assert (ctl.N_MAIN, ctl.N_C, ctl.N_BUTTON, ctl.N_SHOULDER, CONTROLLER_DIM) == (37, 9, 7, 3, 56)
    assert SHOULDER_LEVELS == (0.0, 0.4, 1.0)


def test_all_128_combinations_scalar_and_vectorised():
    assert len(ALL_COMBOS) == 128
    expected = [BUTTON_CLASSES.index(reference_class(p)) for p in ALL_COMBOS]
    scalar = [int(call(p)) for p in ALL_COMBOS]
    assert scalar == expected
    bits = {b: np.array([b in p for p in ALL_COMBOS]) for b in BITS}
    vec = button_class(
        bits["A"], bits["B"], bits["Z"], bits["X"] | bits["Y"], bits["L"] | bits["R"]
    )
    assert vec.shape == (128,) and vec.dtype == np.int64
    assert vec.tolist() == expected
    # every class occurs, and a 2-D batch gives the same answer
    assert set(expected) == set(range(7))
    grid = {b: v.reshape(8, 16) for b, v in bits.items()}
    vec2 = button_class(
        grid["A"], grid["B"], grid["Z"], grid["X"] | grid["Y"], grid["L"] | grid["R"]
    )
    assert vec2.ravel().tolist() == expected


@pytest.mark.parametrize(
    ("pressed", "expected"),
    [
        ("A B", "B"),
        ("A L", "A_TRIG"),
        ("A Z L", "A_TRIG"),
        ("X L", "TRIG"),
        ("Z X", "Z"),
        ("A X", "A"),
        ("Y", "JUMP"),
        ("R", "TRIG"),
        ("A B Z X Y L R", "B"),
        ("", "NONE"),
    ],
)
def test_spec_examples(pressed, expected):
    assert BUTTON_CLASSES[int(call(set(pressed.split())))] == expected


# --- sticks --------------------------------------------------------------------------------------

# SPEC 3.7's table, index order, copied again so the module's table is checked, not reused
SPEC_MAIN = [
    (0.5, 0.5),
    (0.675, 0.5), (0.325, 0.5), (0.5, 0.675), (0.5, 0.325),
    (0.8375, 0.5), (0.1625, 0.5), (0.5, 0.8375), (0.5, 0.1625),
    (1, 0.5), (0.5, 1), (0, 0.5), (0.5, 0),
    (0.975, 0.35), (0.025, 0.35), (0.975, 0.65), (0.025, 0.65),
    (0.925, 0.25), (0.925, 0.75), (0.075, 0.25), (0.075, 0.75),
    (0.85, 0.15), (0.15, 0.15), (0.85, 0.85), (0.15, 0.85),
    (0.75, 0.75), (0.25, 0.75), (0.75, 0.25), (0.25, 0.25),
    (0.75, 0.925), (0.25, 0.925), (0.75, 0.075), (0.25, 0.075),
    (0.65, 0.025), (0.65, 0.975), (0.35, 0.025), (0.35, 0.975),
]  # fmt: skip
SPEC_C = [(0.5, 0.5), (1, 0.5), (0, 0.5), (0.5, 0), (0.5, 1),
          (0.15, 0.15), (0.85, 0.15), (0.85, 0.85), (0.15, 0.85)]  # fmt: skip


def test_centre_tables_match_spec():
    assert MAIN_STICK_CENTERS.shape == (37, 2) and MAIN_STICK_CENTERS.dtype == np.float32
    assert C_STICK_CENTERS.shape == (9, 2) and C_STICK_CENTERS.dtype == np.float32
    np.testing.assert_array_equal(MAIN_STICK_CENTERS, np.float32(SPEC_MAIN))
    np.testing.assert_array_equal(C_STICK_CENTERS, np.float32(SPEC_C))
    with pytest.raises(ValueError):
        MAIN_STICK_CENTERS[0, 0] = 0.0  # read-only: nobody can move a centre by accident


@pytest.mark.parametrize(
    ("fn", "centers"), [(main_stick_class, SPEC_MAIN), (c_stick_class, SPEC_C)]
)
def test_each_centre_and_points_near_it_map_to_its_index(fn, centers):
    c = np.float32(centers)
    n = len(c)
    assert fn(c[:, 0], c[:, 1]).tolist() == list(range(n))
    assert [int(fn(x, y)) for x, y in centers] == list(range(n))  # scalars agree
    # points within a fraction of half the nearest-neighbour distance of a centre
    d = np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1)) + np.eye(n) * 9
    radius = 0.45 * d.min(axis=1)  # (n,)
    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, size=(n, 50))
    r = rng.uniform(0, 1, size=(n, 50)) * radius[:, None]
    x = np.float32(c[:, :1] + r * np.cos(angle))
    y = np.float32(c[:, 1:] + r * np.sin(angle))
    got = fn(x, y)
    assert got.shape == (n, 50)
    np.testing.assert_array_equal(got, np.repeat(np.arange(n)[:, None], 50, axis=1))


def brute_nearest(x: float, y: float, centers) -> int:
    """Plain loop: nearest centre in float32, first index on ties."""
    x, y = np.float32(x), np.float32(y)
    best, best_d = 0, None
    for i, (cx, cy) in enumerate(np.float32(centers)):
        d = (x - cx) * (x - cx) + (y - cy) * (y - cy)
        if best_d is None or d < best_d:
            best, best_d = i, d
    return best


def test_random_points_match_a_plain_loop():
    rng = np.random.default_rng(1)
    xy = rng.uniform(-0.05, 1.05, size=(400, 2)).astype(np.float32)
    main = main_stick_class(xy[:, 0], xy[:, 1])
    cs = c_stick_class(xy[:, 0], xy[:, 1])
    assert main.tolist() == [brute_nearest(x, y, SPEC_MAIN) for x, y in xy]
    assert cs.tolist() == [brute_nearest(x, y, SPEC_C) for x, y in xy]
    # float64 inputs are cast to float32 first: same classes
    assert (
        main_stick_class(xy[:, 0].astype(float), xy[:, 1].astype(float)).tolist() == main.tolist()
    )


@pytest.mark.parametrize(
    ("fn", "centers", "xy", "expected"),
    [
        (main_stick_class, SPEC_MAIN, (0.7251596450805664, 0.6212021112442017), 1),
        (c_stick_class, SPEC_C, (0.2499999850988388, 0.40810227394104004), 0),
    ],
)
def test_boundary_points_use_float32_arithmetic(fn, centers, xy, expected):
    """Float32 points on a class boundary where float64 arithmetic would pick the other class."""
    x, y = np.float32(xy)
    c64 = np.float32(centers).astype(np.float64)
    d64 = (float(x) - c64[:, 0]) ** 2 + (float(y) - c64[:, 1]) ** 2
    assert int(np.argmin(d64)) != expected  # the point really is one where the two disagree
    assert brute_nearest(x, y, centers) == expected
    assert int(fn(x, y)) == expected
    assert fn(np.float32([x, x]), np.float32([y, y])).tolist() == [expected, expected]


def test_neutral_and_ties():
    assert int(main_stick_class(0.5, 0.5)) == 0
    assert int(c_stick_class(0.5, 0.5)) == 0
    # (0.5, 0.25) is exactly between c-stick neutral (0.5, 0.5) and down (0.5, 0): first wins
    assert int(c_stick_class(0.5, 0.25)) == 0
    # (0.5, 0.75): between neutral and up (index 4)
    assert int(c_stick_class(0.5, 0.75)) == 0


def test_shoulder_levels():
    s = [0.0, 0.2, 0.35, 0.7, 0.71, 1.0]
    # 0.2 is a float32 tie between 0 and 0.4 (first wins); float32(0.7) is nearer 0.4 than 1.0
    expected = [0, 0, 1, 1, 2, 2]
    assert shoulder_class(s).tolist() == expected
    assert [int(shoulder_class(v)) for v in s] == expected
    assert shoulder_class(np.float32(s).reshape(2, 3)).tolist() == [expected[:3], expected[3:]]


# --- one-hot -------------------------------------------------------------------------------------


def test_one_hot_layout():
    v = one_hot(36, 8, 6, 2)
    assert v.shape == (56,) and v.dtype == np.float32
    assert np.flatnonzero(v).tolist() == [36, 37 + 8, 46 + 6, 53 + 2]
    rng = np.random.default_rng(2)
    main, c = rng.integers(0, 37, 100), rng.integers(0, 9, 100)
    btn, sh = rng.integers(0, 7, 100), rng.integers(0, 3, 100)
    batch = one_hot(main, c, btn, sh)
    assert batch.shape == (100, 56)
    assert np.all(batch.sum(-1) == 4) and set(np.unique(batch)) == {0.0, 1.0}
    np.testing.assert_array_equal(batch[:, :37].argmax(-1), main)
    np.testing.assert_array_equal(batch[:, 37:46].argmax(-1), c)
    np.testing.assert_array_equal(batch[:, 46:53].argmax(-1), btn)
    np.testing.assert_array_equal(batch[:, 53:].argmax(-1), sh)
    np.testing.assert_array_equal(batch[7], one_hot(main[7], c[7], btn[7], sh[7]))
    assert one_hot(main.reshape(4, 25), c.reshape(4, 25), 0, 0).shape == (4, 25, 56)


@pytest.mark.parametrize("args", [(37, 0, 0, 0), (0, 9, 0, 0), (0, 0, 7, 0), (0, 0, 0, -1)])
def test_one_hot_rejects_out_of_range(args):
    with pytest.raises(ValueError, match="out of range"):
        one_hot(*args)


# --- to_unit against libmelee --------------------------------------------------------------------


def libmelee_sticks(main_xy, c_xy):
    """libmelee's own pre-frame parser on a hand-made pre-frame event (processed floats)."""
    from melee.console import Console
    from melee.gamestate import GameState

    buf = bytearray(0x41)  # port 0 (byte 0x5), not Nana; long enough for every optional field
    for off, v in zip((0x19, 0x1D, 0x21, 0x25), (*main_xy, *c_xy), strict=True):
        struct.pack_into(">f", buf, off, v)
    state = GameState()
    Console(path="unused.slp", is_dolphin=False)._Console__pre_frame(state, bytes(buf))
    cs = state.players[1].controller_state
    return cs.main_stick, cs.c_stick


@pytest.mark.parametrize(
    ("main_xy", "c_xy"),
    [((0.0, 0.0), (1.0, -1.0)), ((0.6125, -0.3), (-0.9875, 0.2875)), ((0.1, 0.7), (0.3, -0.55))],
)
def test_to_unit_matches_libmelee(main_xy, c_xy):
    main, c = libmelee_sticks(main_xy, c_xy)
    ours = to_unit(np.float32([*main_xy, *c_xy]))
    assert ours.dtype == np.float32
    theirs = np.array([*main, *c])
    assert theirs.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)  # bit for bit
    assert [to_unit(v) for v in np.float32(main_xy)] == list(main)
    assert to_unit(np.float32(main_xy[0])).dtype == np.float32


# --- published JSON ------------------------------------------------------------------------------


def test_json_helpers_have_the_published_shapes():
    sticks = stick_clusters_json()
    assert set(sticks) == {"stick_centers", "shoulder_centers"}
    assert sticks["stick_centers"] == [list(map(float, xy)) for xy in SPEC_MAIN]
    assert sticks["shoulder_centers"] == [0.0, 0.4, 1.0]
    assert controller_combos_json() == {
        "button_names": ["A", "B", "Z", "JUMP", "TRIG", "A_TRIG", "NONE"],
        "n_combos": 7,
        "class_scheme": "melee_7class",
    }
    assert json.loads(json.dumps(sticks)) == sticks
