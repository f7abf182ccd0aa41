"""decode.py: buttons and hitstun, exhaustively, by property and on the real replays (SPEC 1.2)."""

from __future__ import annotations

import math

import melee
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import INGESTED, libmelee_frames, needs_replays
from hypothesis import given
from hypothesis import strategies as st

from mmlib.data import decode, schema

# SPEC 1.2's table (the one libmelee's console.py hard-codes in a nested function, not exposed).
SPEC_BUTTONS = {
    "d_left": 0x0001,
    "d_right": 0x0002,
    "d_down": 0x0004,
    "d_up": 0x0008,
    "z": 0x0010,
    "r": 0x0020,
    "l": 0x0040,
    "a": 0x0100,
    "b": 0x0200,
    "x": 0x0400,
    "y": 0x0800,
    "start": 0x1000,
}
NAMED = sum(SPEC_BUTTONS.values())  # 0x1F7F
f32 = pa.float32()


def decoded(masks: pa.Array, prefix: str = "button_") -> dict[str, list]:
    return {name: col.to_pylist() for name, col in decode.buttons(masks, prefix).items()}


def test_button_table_is_specs():
    assert schema.BUTTON_BITS == SPEC_BUTTONS
    assert {c.name for c in schema.DECODED_COLUMNS} == {"hitstun_left"} | {
        f"button_{kind}{n}" for kind in ("", "physical_") for n in SPEC_BUTTONS
    }


@pytest.mark.parametrize(
    ("type_", "other_bits"), [(pa.uint32(), 0xFFFFFFFF), (pa.uint16(), 0xFFFF)]
)
def test_every_combination_of_the_twelve_buttons(type_, other_bits):
    """All 4096 combinations of the named bits, with random unnamed bits set beside them."""
    names = list(SPEC_BUTTONS)
    combos = np.arange(1 << len(names), dtype=np.uint64)
    masks = np.zeros_like(combos)
    for i, name in enumerate(names):
        masks |= ((combos >> np.uint64(i)) & np.uint64(1)) * np.uint64(SPEC_BUTTONS[name])
    noise = np.random.default_rng(0).integers(0, 1 << 32, len(combos), dtype=np.uint64)
    masks |= noise & np.uint64(other_bits & ~NAMED)
    assert (masks & np.uint64(~NAMED & other_bits)).any()  # the noise is really there

    out = decode.buttons(pa.array(masks.astype(type_.to_pandas_dtype())), "button_")
    assert set(out) == {f"button_{n}" for n in names}
    for i, name in enumerate(names):
        expected = ((combos >> np.uint64(i)) & np.uint64(1)).astype(bool)
        got = out[f"button_{name}"].to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(got, expected, err_msg=name)


@given(st.lists(st.one_of(st.none(), st.integers(0, 2**32 - 1)), min_size=1, max_size=64))
def test_processed_mask_property(masks):
    out = decoded(pa.array(masks, pa.uint32()), "p_")
    for name, bit in SPEC_BUTTONS.items():
        assert out[f"p_{name}"] == [None if m is None else bool(m & bit) for m in masks]


# --- hitstun --------------------------------------------------------------------------------


def hitstun(misc_as: list, flags: list) -> list:
    return decode.hitstun_left(pa.array(misc_as, f32), pa.array(flags, pa.uint8())).to_pylist()


def test_hitstun_is_gated_by_flag_0x02_of_flags_3():
    flags = list(range(256))
    out = hitstun([7.0] * 256, flags)
    assert out == [7.0 if f & 0x02 else 0.0 for f in flags]


def test_hitstun_clamps_negative_misc_as_to_zero():
    assert hitstun([-4.0, -0.5, -1e-45, -0.0, 3.0], [0x02] * 5) == [0.0, 0.0, 0.0, 0.0, 3.0]


def test_hitstun_is_null_exactly_when_unknown():
    """Null flags, or a null misc_as in hitstun, give null; out of hitstun it is 0 regardless."""
    assert hitstun([None, 5.0, None, None], [0x02, None, None, 0x00]) == [None, None, None, 0.0]


def test_hitstun_nan_and_inf():
    """NaN decodes to 0 in hitstun and out of it (libmelee also turns NaN into 0); +inf passes
    through in hitstun (libmelee's int() would raise OverflowError). Neither is in a replay."""
    nan, neg_nan = float("nan"), -float("nan")
    out = hitstun([nan, neg_nan, nan, math.inf, -math.inf, math.inf], [2, 2, 0, 2, 2, 0])
    assert out == [0.0, 0.0, 0.0, math.inf, 0.0, 0.0]


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(width=32, allow_nan=True, allow_infinity=True)),
            st.one_of(st.none(), st.integers(0, 255)),
        ),
        min_size=1,
        max_size=64,
    )
)
def test_hitstun_property(rows):
    misc_as, flags = zip(*rows, strict=True)
    out = hitstun(list(misc_as), list(flags))
    for m, f, h in zip(misc_as, flags, out, strict=True):
        if f is None or (f & 0x02 and m is None):
            assert h is None
        elif f & 0x02 and not math.isnan(m):
            assert h == max(m, 0.0)
        else:
            assert h == 0.0


# --- the real replays -----------------------------------------------------------------------


@needs_replays
def test_hitstun_on_the_real_replays(games, game_table):
    flagged = leaked = 0
    for name in INGESTED:
        t = game_table(name)
        version = tuple(map(int, games[name]["slippi_version"].split(".")))
        h = t["hitstun_left"]
        if version < (2, 0, 0):
            assert h.null_count == len(t), name
            continue
        present = t["present"].to_numpy()
        assert (h.is_valid().to_numpy(zero_copy_only=False) == present).all(), name
        t = t.filter(t["present"])
        h = t["hitstun_left"].to_numpy()
        misc = t["post_misc_as"].to_numpy()
        in_hitstun = (t["post_state_flags_3"].to_numpy() & 0x02) != 0
        assert (h[~in_hitstun] == 0).all(), name
        np.testing.assert_array_equal(h[in_hitstun], np.maximum(misc[in_hitstun], 0), name)
        flagged += in_hitstun.sum()
        leaked += (np.trunc(misc[~in_hitstun]) != 0).sum()
    assert flagged > 10_000  # SPEC: ~20k hitstun rows in this corpus
    assert leaked > 10_000  # rows where libmelee's ungated int(misc_as) is non-zero (SPEC: 12%)


BUTTON_REPLAYS = [
    "peppi-buttons_abxy.slp",
    "peppi-buttons_lrzs.slp",
    "peppi-dpad_udlr.slp",
    "slippijs-techTester.slp",
]  # no rollback frames: libmelee and we agree on rows


@needs_replays
@pytest.mark.parametrize("name", BUTTON_REPLAYS)
def test_buttons_match_libmelee(name, game_table):
    """Our decoded columns equal libmelee's decode of the same frames, physical and processed."""
    t = game_table(name).filter(pc.invert(game_table(name)["follower"]))
    first = t["frame"][0].as_py()
    cols = {c: t[c].to_numpy(zero_copy_only=False) for c in t.column_names if "button_" in c}
    ports = t["port"].to_numpy()
    pressed = 0
    for state in libmelee_frames(name):
        for port, player in state.players.items():
            row = np.flatnonzero(ports == port)[state.frame - first]
            for n in SPEC_BUTTONS:
                button = melee.enums.Button[f"BUTTON_{n.upper()}"]
                assert cols[f"button_physical_{n}"][row] == player.controller_state.button[button]
                assert cols[f"button_{n}"][row] == player.controller_state.processed_button[button]
                pressed += bool(cols[f"button_{n}"][row])
    assert pressed > 0


@needs_replays
def test_hitstun_agrees_with_libmelee_inside_hitstun_only(game_table):
    """libmelee truncates misc_as on every frame (SPEC 1.2); inside hitstun it agrees with us."""
    name = "slippijs-techTester.slp"
    t = game_table(name).filter(pc.invert(game_table(name)["follower"]))
    ports, h = t["port"].to_numpy(), t["hitstun_left"].to_numpy()
    flag = (t["post_state_flags_3"].to_numpy() & 0x02) != 0
    agree_in = disagree_out = 0
    for state in libmelee_frames(name):
        for port, player in state.players.items():
            row = np.flatnonzero(ports == port)[state.frame + 123]
            if flag[row]:
                assert player.hitstun_frames_left == max(int(h[row]), 0)
                agree_in += 1
            else:
                assert h[row] == 0
                disagree_out += player.hitstun_frames_left != 0
    assert agree_in > 100 and disagree_out > 100
