"""The six normalisation transforms (SPEC 3.5), their fitting and the published JSON shapes (3.6).

Round trips are checked on each transform's valid domain with float32 inputs; the tolerances
below allow a few float32 roundings of the values involved (forward and inverse compute in
float64 and round once to float32 each), far below any error a wrong formula would make.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import SPEC_NUMERIC
from hypothesis import given, settings
from hypothesis import strategies as st

from mmlib.features.transforms import (
    column_specs,
    denormalize_columns,
    fit_mimic_norm,
    fit_norm_stats,
    forward,
    inverse,
    normalize_columns,
)

F32_EPS = float(np.finfo(np.float32).eps)  # 1.19e-7; one float32 rounding is at most eps/2
TINY = 1e-30  # absolute slack for results that underflow to float32 subnormals
settings.register_profile("transforms", deadline=None, max_examples=200)
settings.load_profile("transforms")


def f32(lo: float, hi: float) -> st.SearchStrategy[float]:
    lo, hi = float(np.float32(lo)), float(np.float32(hi))  # bounds must be float32 values
    return st.floats(lo, hi, width=32, allow_nan=False, allow_infinity=False)


# a small batch of raw values, so each example also exercises arrays
def batch(lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    return st.lists(f32(lo, hi), min_size=1, max_size=8).map(lambda v: np.array(v, np.float32))


def std_spec(mean, std):
    return {"transform": "standardize", "mean": mean, "std": std}


def norm_spec(lo, hi, kind="normalize"):
    return {"transform": kind, "min": lo, "max": hi}


def tanh_spec(scale):
    return {"transform": "tanh_scale", "scale": scale}


def lin_spec(mx):
    return {"transform": "linear_max", "max": mx}


def log_spec(mx):
    return {"transform": "log_max", "max": mx}


# --- round trips ---------------------------------------------------------------------------------


@given(batch(-1e4, 1e4), f32(-1e3, 1e3), f32(1.0, 1e3))
def test_standardize_round_trip(x, mean, std):
    back = inverse(forward(x, std_spec(mean, std)), std_spec(mean, std))
    assert back.dtype == np.float32
    tol = 4 * F32_EPS * (np.abs(x) + abs(mean)) + TINY
    assert np.all(np.abs(back - x) <= tol)


@given(
    f32(-1e3, 1e3),
    f32(1e-2, 1e3),
    st.sampled_from(["normalize", "invert_normalize"]),
    st.lists(f32(-1.0, 2.0), min_size=1, max_size=8),
)
def test_normalize_round_trip(lo, width, kind, fractions):
    hi = float(np.float32(lo + width))
    x = np.float32(lo + np.array(fractions) * (hi - lo))  # values around [min, max]
    spec = norm_spec(lo, hi, kind)
    back = inverse(forward(x, spec), spec)
    tol = 8 * F32_EPS * (np.abs(x) + abs(lo) + abs(hi)) + TINY
    assert np.all(np.abs(back - x) <= tol)


@given(f32(0.1, 100.0), st.lists(f32(-4.0, 4.0), min_size=1, max_size=8))
def test_tanh_scale_round_trip_off_saturation(scale, ratios):
    x = np.float32(np.array(ratios) * scale)  # |x / scale| <= 4
    back = inverse(forward(x, tanh_spec(scale)), tanh_spec(scale))
    # dx = scale * dy / (1 - y^2); at |x/scale| = 4, 1 / (1 - tanh(4)^2) ~ 745
    tol = scale * 745 * F32_EPS + 4 * F32_EPS * np.abs(x) + TINY
    assert np.all(np.abs(back - x) <= tol)


@given(batch(-1e4, 1e4), f32(1e-2, 1e3))
def test_linear_max_round_trip(x, mx):
    back = inverse(forward(x, lin_spec(mx)), lin_spec(mx))
    assert np.all(np.abs(back - x) <= 2 * F32_EPS * np.abs(x) + TINY)


@given(f32(1e-2, 1e4), st.lists(f32(0.0, 1.0), min_size=1, max_size=8))
def test_log_max_round_trip_on_its_domain(mx, fractions):
    x = np.minimum(np.float32(np.array(fractions) * mx), np.float32(mx))  # x in [0, max]
    back = inverse(forward(x, log_spec(mx)), log_spec(mx))
    # dx = dy * log1p(max) * (1 + x)
    tol = F32_EPS * (math.log1p(mx) * (1 + x) + 2 * x) + TINY
    assert np.all(np.abs(back - x) <= tol)


# --- output ranges -------------------------------------------------------------------------------


@given(f32(-1e3, 1e3), f32(1e-2, 1e3), st.lists(f32(0.0, 1.0), min_size=1, max_size=8))
def test_normalize_maps_min_max_onto_minus_one_one(lo, width, fractions):
    hi = float(np.float32(lo + width))
    x = np.clip(np.float32(lo + np.array(fractions) * (hi - lo)), lo, hi)
    ends = np.array([lo, hi], np.float32)
    assert forward(ends, norm_spec(lo, hi)).tolist() == [-1.0, 1.0]
    assert forward(ends, norm_spec(lo, hi, "invert_normalize")).tolist() == [1.0, -1.0]
    for kind in ("normalize", "invert_normalize"):
        y = forward(x, norm_spec(lo, hi, kind))
        assert np.all((y >= -1) & (y <= 1))
    # the two are mirror images, and normalize is increasing
    y = forward(x, norm_spec(lo, hi))
    assert np.allclose(y, -forward(x, norm_spec(lo, hi, "invert_normalize")), atol=1e-6)
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(y[order]) >= 0)


def test_shield_full_is_minus_one_broken_is_plus_one():
    spec = norm_spec(0.0, 60.0, "invert_normalize")
    assert forward(np.float32([60.0, 0.0, 30.0]), spec).tolist() == [-1.0, 1.0, 0.0]


@given(batch(-1e6, 1e6), f32(0.1, 100.0))
def test_tanh_scale_range(x, scale):
    y = forward(x, tanh_spec(scale))
    assert np.all(np.abs(y) <= 1)
    inside = np.abs(x / scale) <= 4
    assert np.all(np.abs(y[inside]) < 1)
    assert np.all(np.sign(y) * np.sign(x) >= 0)  # odd: the sign is kept


@given(batch(-1e6, 1e6), f32(1e-2, 1e4))
def test_log_max_in_unit_interval_and_clamps(x, mx):
    y = forward(x, log_spec(mx))
    assert np.all((y >= 0) & (y <= 1))
    assert np.all(y[x <= 0] == 0)
    assert np.all(y[x >= mx] == 1)


def test_linear_max_does_not_clamp():
    assert forward(np.float32([40.0, -20.0]), lin_spec(20.0)).tolist() == [2.0, -1.0]


# --- degenerate parameters -----------------------------------------------------------------------

DEGENERATE = [
    (std_spec(3.0, 0.0), 3.0),
    (norm_spec(7.0, 7.0), 7.0),
    (norm_spec(7.0, 7.0, "invert_normalize"), 7.0),
    (tanh_spec(0.0), 0.0),
    (lin_spec(0.0), 0.0),
    (log_spec(0.0), 0.0),
]


@pytest.mark.parametrize(("spec", "inverse_value"), DEGENERATE)
def test_degenerate_parameters_give_zero(spec, inverse_value):
    x = np.float32([-5.0, 0.0, 3.0, 7.0, 1e6])
    with np.errstate(all="raise"):  # no division by zero on the way
        y = forward(x, spec)
        back = inverse(np.float32([-1.0, 0.0, 0.5, 1.0]), spec)
    assert y.dtype == np.float32 and y.tolist() == [0.0] * 5
    assert back.dtype == np.float32 and back.tolist() == [inverse_value] * 4


# --- SPEC 3.5 example values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "x", "expected"),
    [
        (tanh_spec(5.0), 2.5, 0.462),
        (tanh_spec(10.0), 25.0, 0.987),
        (log_spec(120.0), 5.0, 0.374),
        (log_spec(120.0), 15.0, 0.578),
        (log_spec(120.0), 60.0, 0.857),
        (lin_spec(20.0), 10.0, 0.5),
    ],
)
def test_spec_example_values(spec, x, expected):
    y = forward(np.float32(x), spec)
    assert y.dtype == np.float32 and y.shape == ()
    assert round(float(y), 3) == expected


def test_scalars_and_shapes_are_kept():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert forward(x, tanh_spec(5.0)).shape == (2, 3, 4)
    assert inverse(x / 24, log_spec(120.0)).shape == (2, 3, 4)
    assert forward(3, lin_spec(2.0)).dtype == np.float32
    assert np.isnan(forward(np.float32([np.nan]), std_spec(0.0, 2.0))).all()


# --- unknown transform, missing parameter --------------------------------------------------------


def test_unknown_transform_names_it():
    for fn in (forward, inverse):
        with pytest.raises(ValueError, match="unknown transform 'zscore'") as err:
            fn(np.float32([1.0]), {"transform": "zscore", "mean": 0.0, "std": 1.0})
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="unknown transform None"):
        forward(1.0, {"scale": 5.0})


def test_missing_parameter_is_a_value_error():
    with pytest.raises(ValueError, match="lacks 'scale'"):
        forward(1.0, {"transform": "tanh_scale"})


# --- fitting mimic_norm.json / norm_stats.json ---------------------------------------------------

NUMERIC = SPEC_NUMERIC
# SPEC 3.5 / 3.6, written out again here so the test does not read the table it checks
EXPECTED_TRANSFORM = {
    "pos_x": "standardize",
    "pos_y": "standardize",
    "percent": "normalize",
    "stock": "normalize",
    "jumps_left": "normalize",
    "shield_strength": "invert_normalize",
}
EXPECTED_FIXED = {
    "speed_air_x_self": {"transform": "tanh_scale", "scale": 5.0},
    "speed_ground_x_self": {"transform": "tanh_scale", "scale": 5.0},
    "speed_y_self": {"transform": "tanh_scale", "scale": 5.0},
    "speed_x_attack": {"transform": "tanh_scale", "scale": 10.0},
    "speed_y_attack": {"transform": "tanh_scale", "scale": 10.0},
    "hitlag_left": {"transform": "linear_max", "max": 20.0},
    "hitstun_left": {"transform": "log_max", "max": 120.0},
}
FLAG = {"transform": "normalize", "min": 0.0, "max": 1.0, "mean": 0.5, "std": 0.5}


def raw_columns(seed=0, n=500) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: (rng.normal(size=n) * (0.1 if name == "stock" else 30.0)).astype(np.float32)
        for name in NUMERIC
    }


def test_fit_mimic_norm_published_shape():
    values = raw_columns()
    features = fit_mimic_norm(values)["features"]
    assert list(features) == NUMERIC + ["facing", "invulnerable", "on_ground"]
    assert len(features) == 16
    for flag in ("facing", "invulnerable", "on_ground"):
        assert features[flag] == FLAG
    for name, spec in EXPECTED_FIXED.items():
        assert features[name] == spec
    for name, kind in EXPECTED_TRANSFORM.items():
        spec = features[name]
        assert set(spec) == {"transform", "min", "max", "mean", "std"}
        assert spec["transform"] == kind
        v = values[name].astype(np.float64)
        assert spec["min"] == float(v.min()) and spec["max"] == float(v.max())
        assert spec["mean"] == pytest.approx(float(v.mean()), rel=1e-12, abs=1e-12)
    # std: population std (ddof 0), floored at 1.0
    assert features["pos_x"]["std"] == pytest.approx(float(values["pos_x"].astype(float).std()))
    assert features["stock"]["std"] == 1.0
    # plain floats, JSON round trip unchanged, deterministic
    text = json.dumps(fit_mimic_norm(values), sort_keys=True)
    assert json.loads(text) == fit_mimic_norm(values)
    assert text == json.dumps(fit_mimic_norm(dict(values)), sort_keys=True)
    for spec in features.values():
        assert all(type(v) is float for k, v in spec.items() if k != "transform")


def test_fit_mimic_norm_hand_values():
    spec = fit_mimic_norm({"percent": np.array([0.0, 50.0, 100.0])})["features"]["percent"]
    assert spec["min"] == 0.0 and spec["max"] == 100.0 and spec["mean"] == 50.0
    assert spec["std"] == pytest.approx(math.sqrt(5000 / 3))  # population, not sample, std


def test_fit_mimic_norm_ignores_nan_and_skips_missing_columns():
    features = fit_mimic_norm(
        {
            "percent": np.array([np.nan, 10.0, 30.0, np.nan]),
            "stock": np.full(4, np.nan),  # NaN-only: skipped
            "hitlag_left": np.array([np.nan]),  # fixed transform, but no data: skipped
            "hitstun_left": np.array([0.0, 3.0]),
        }
    )["features"]
    assert list(features) == ["percent", "hitstun_left", "facing", "invulnerable", "on_ground"]
    assert features["percent"] == {
        "transform": "normalize",
        "min": 10.0,
        "max": 30.0,
        "mean": 20.0,
        "std": 10.0,
    }


def test_fit_mimic_norm_leaves_other_columns_to_norm_stats_and_rejects_infinity():
    values = {"ecb_top_y": np.arange(5.0), "percent": np.arange(5.0)}
    norm = fit_mimic_norm(values)
    assert list(norm["features"]) == ["percent", "facing", "invulnerable", "on_ground"]
    stats = {f"self_{k}": v for k, v in fit_norm_stats(values).items()}
    y = normalize_columns(np.float32([[4.0, 4.0]]), ["opp_ecb_top_y", "opp_percent"], norm, stats)
    np.testing.assert_allclose(y, [[(4 - 2) / 2**0.5, 1.0]], rtol=1e-6)  # z-score; normalize
    with pytest.raises(ValueError, match="'pos_x' holds infinite"):
        fit_mimic_norm({"pos_x": np.array([0.0, np.inf])})


def test_fit_norm_stats():
    stats = fit_norm_stats(
        {
            "self_pos_x": np.array([-50.0, 50.0, np.nan]),
            "self_stock": np.array([4.0, 4.0, 3.0]),
            "frame": np.full(3, np.nan),
        }
    )
    assert stats == {"self_pos_x": [0.0, 50.0], "self_stock": [pytest.approx(11 / 3), 1.0]}
    assert json.loads(json.dumps(stats)) == stats


# --- applying the published files to named columns -----------------------------------------------

NAMES = [f"{side}_{n}" for side in ("self", "opp") for n in NUMERIC]


def frames(seed=1, T=64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, len(NAMES))) * 3  # tanh_scale columns stay off saturation
    return np.abs(x).astype(np.float32)  # non-negative, so log_max round-trips


def test_normalize_columns_uses_each_suffix_spec():
    x = frames()
    norm = fit_mimic_norm(raw_columns())
    y = normalize_columns(x, NAMES, norm, norm_stats={})
    assert y.shape == x.shape and y.dtype == np.float32
    for j, name in enumerate(NAMES):
        spec = norm["features"][name.split("_", 1)[1]]
        np.testing.assert_array_equal(y[:, j], forward(x[:, j], spec))
    # self and opp columns of the same suffix share one transform
    np.testing.assert_array_equal(normalize_columns(x[:, :13], NAMES[13:], norm, {}), y[:, :13])
    back = denormalize_columns(y, NAMES, norm, {})
    np.testing.assert_allclose(back, x, rtol=1e-4, atol=1e-4)


def test_old_mimic_norm_without_new_entries_falls_back_to_norm_stats():
    full = fit_mimic_norm(raw_columns())
    old = {"features": {k: v for k, v in full["features"].items() if k != "hitstun_left"}}
    stats = {"self_hitstun_left": [4.0, 0.5], "opp_hitstun_left": [99.0, 99.0]}
    names = ["self_percent", "self_hitstun_left", "opp_hitstun_left"]
    x = np.float32([[10.0, 6.0, 2.0], [20.0, 4.0, 10.0]])
    y = normalize_columns(x, names, old, stats)
    # std floored at 1.0; opp uses the self_ stats of its suffix (self/opp stats are equal)
    np.testing.assert_allclose(y[:, 1], [2.0, 0.0])
    np.testing.assert_allclose(y[:, 2], [-2.0, 6.0])
    np.testing.assert_array_equal(y[:, 0], forward(x[:, 0], full["features"]["percent"]))
    np.testing.assert_allclose(denormalize_columns(y, names, old, stats), x, rtol=1e-5)
    # with the entry present, the mimic_norm transform wins over norm_stats
    y_new = normalize_columns(x, names, full, stats)
    np.testing.assert_array_equal(y_new[:, 1], forward(x[:, 1], EXPECTED_FIXED["hitstun_left"]))


def test_fallback_to_the_columns_own_name_and_errors():
    specs = column_specs(["distance"], {"features": {}}, {"distance": [10.0, 30.0]})
    assert specs == [{"transform": "standardize", "mean": 10.0, "std": 30.0}]
    # the inner dict of a mimic_norm file is accepted too
    assert column_specs(["opp_stock"], {"stock": FLAG}, {}) == [FLAG]
    with pytest.raises(ValueError, match="'opp_speed_y_self'") as err:
        normalize_columns(np.zeros((2, 1), np.float32), ["opp_speed_y_self"], {}, {})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"\(T, 2\)"):
        normalize_columns(np.zeros((2, 3), np.float32), ["a", "b"], {}, {"a": [0, 1], "b": [0, 1]})
    with pytest.raises(ValueError, match="unknown transform 'minmax'"):
        normalize_columns(np.zeros((1, 1)), ["self_stock"], {"stock": {"transform": "minmax"}}, {})
