"""The six normalisation transforms of the numeric player columns (SPEC 3.5), forward and inverse.

A transform is described by a spec dict in the published `mimic_norm.json` entry format
(SPEC 3.6), e.g. `{"transform": "tanh_scale", "scale": 5.0}`:

| transform        | forward y                              | params                   |
|------------------|----------------------------------------|--------------------------|
| standardize      | (x - mean) / std                       | mean, std                |
| normalize        | 2 (x - min) / (max - min) - 1          | min, max                 |
| invert_normalize | 2 (max - x) / (max - min) - 1          | min, max                 |
| tanh_scale       | tanh(x / scale)                        | scale                    |
| linear_max       | x / max  (no clamp)                    | max                      |
| log_max          | log1p(clip(x, 0, max)) / log1p(max)    | max                      |

Degenerate parameters (std 0, max == min, scale 0, max 0) map every x to 0, as MIMIC does; their
inverse returns the one value the parameters still name (mean for standardize, min (= max) for
(invert_)normalize, 0 for the others). Data-derived entries also carry `mean`/`std` and
`min`/`max` beside the two they use, so a spec can be read either way.

Arrays go in and come out as float32 (any shape, scalars as 0-d arrays); the arithmetic is done in
float64, so forward and inverse are exact to float32 rounding except where a transform saturates
(tanh_scale beyond |x/scale| ~ 9 gives exactly +-1 in float32; log_max clamps to [0, max]). NaN
propagates.

Fitting (`fit_mimic_norm`, `fit_norm_stats`) writes the two published JSON formats, and
`normalize_columns` applies them to a (T, C) block of named columns with SPEC 3.5's fallback:
a column whose suffix has no `mimic_norm.json` entry (older files lack the 7 newer ones) is
z-scored with its `norm_stats.json` (mean, std).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mmlib.features.moments import Moments

TRANSFORMS = (
    "standardize",
    "normalize",
    "invert_normalize",
    "tanh_scale",
    "linear_max",
    "log_max",
)

STD_FLOOR = 1.0  # published stats floor std at 1.0 (norm_stats.json and mimic_norm.json)

# Which transform each of the 13 numeric columns uses (SPEC 3.2 order). Data-derived transforms
# (standardize, normalize, invert_normalize) are fitted; the others carry fixed parameters.
MIMIC_TRANSFORMS: dict[str, dict[str, object]] = {
    "pos_x": {"transform": "standardize"},
    "pos_y": {"transform": "standardize"},
    "percent": {"transform": "normalize"},
    "stock": {"transform": "normalize"},
    "jumps_left": {"transform": "normalize"},
    "speed_air_x_self": {"transform": "tanh_scale", "scale": 5.0},
    "speed_ground_x_self": {"transform": "tanh_scale", "scale": 5.0},
    "speed_x_attack": {"transform": "tanh_scale", "scale": 10.0},
    "speed_y_attack": {"transform": "tanh_scale", "scale": 10.0},
    "speed_y_self": {"transform": "tanh_scale", "scale": 5.0},
    "hitlag_left": {"transform": "linear_max", "max": 20.0},
    "hitstun_left": {"transform": "log_max", "max": 120.0},
    "shield_strength": {"transform": "invert_normalize"},
}
DATA_DERIVED = ("standardize", "normalize", "invert_normalize")

# The three flag entries every published mimic_norm.json carries (unused by the full path: the
# encoder maps raw 0/1 flags to 2f - 1 itself, which is what this entry computes too).
FLAG_SPEC: dict[str, object] = {
    "transform": "normalize",
    "min": 0.0,
    "max": 1.0,
    "mean": 0.5,
    "std": 0.5,
}
FLAG_ENTRIES = ("facing", "invulnerable", "on_ground")

PLAYER_PREFIXES = ("self_", "opp_")


# --- forward and inverse ------------------------------------------------------------------------


def _param(spec: Mapping, name: str) -> float:
    try:
        return float(spec[name])
    except KeyError:
        raise ValueError(f"{spec.get('transform')} spec {dict(spec)} lacks {name!r}") from None


def _kind(spec: Mapping) -> str:
    kind = spec.get("transform")
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown transform {kind!r}; expected one of {', '.join(TRANSFORMS)}")
    return kind


def forward(x: np.ndarray, spec: Mapping) -> np.ndarray:
    """Normalise raw values with one transform.

    Args:
        x: raw values, any shape.
        spec: a mimic_norm entry, e.g. `{"transform": "log_max", "max": 120.0}`.
    Returns:
        float32 array of x's shape; all zeros when the parameters are degenerate.
    Raises:
        ValueError: unknown transform name, or a parameter the transform needs is missing.
    """
    kind = _kind(spec)
    x = np.asarray(x, dtype=np.float64)
    if kind == "standardize":
        mean, std = _param(spec, "mean"), _param(spec, "std")
        y = (x - mean) / std if std != 0 else np.zeros_like(x)
    elif kind in ("normalize", "invert_normalize"):
        lo, hi = _param(spec, "min"), _param(spec, "max")
        if hi == lo:
            y = np.zeros_like(x)
        elif kind == "normalize":
            y = 2.0 * (x - lo) / (hi - lo) - 1.0
        else:
            y = 2.0 * (hi - x) / (hi - lo) - 1.0
    elif kind == "tanh_scale":
        scale = _param(spec, "scale")
        y = np.tanh(x / scale) if scale != 0 else np.zeros_like(x)
    elif kind == "linear_max":
        mx = _param(spec, "max")
        y = x / mx if mx != 0 else np.zeros_like(x)
    else:  # log_max
        mx = _param(spec, "max")
        # max < 0 would make clip's bounds cross; treat it like 0 (no valid range)
        y = np.log1p(np.clip(x, 0.0, mx)) / np.log1p(mx) if mx > 0 else np.zeros_like(x)
    return y.astype(np.float32)


def inverse(y: np.ndarray, spec: Mapping) -> np.ndarray:
    """Raw values from normalised ones: the inverse of `forward` on the transform's valid domain.

    tanh_scale clips y to the open interval (-1, 1) first (so +-1 give a large finite value, not
    inf); log_max clips y to [0, 1], so the result lies in [0, max]. Degenerate parameters give the
    value the spec still names: mean (standardize), min (normalize, invert_normalize), 0 (others).

    Args:
        y: normalised values, any shape.
        spec: a mimic_norm entry.
    Returns:
        float32 array of y's shape.
    """
    kind = _kind(spec)
    y = np.asarray(y, dtype=np.float64)
    if kind == "standardize":
        mean, std = _param(spec, "mean"), _param(spec, "std")
        x = y * std + mean if std != 0 else np.full_like(y, mean)
    elif kind in ("normalize", "invert_normalize"):
        lo, hi = _param(spec, "min"), _param(spec, "max")
        if hi == lo:
            x = np.full_like(y, lo)
        elif kind == "normalize":
            x = (y + 1.0) / 2.0 * (hi - lo) + lo
        else:
            x = hi - (y + 1.0) / 2.0 * (hi - lo)
    elif kind == "tanh_scale":
        scale = _param(spec, "scale")
        if scale == 0:
            x = np.zeros_like(y)
        else:
            below_one = np.nextafter(1.0, 0.0)  # arctanh(1) is inf; this gives ~18.7 * scale
            x = scale * np.arctanh(np.clip(y, -below_one, below_one))
    elif kind == "linear_max":
        x = y * _param(spec, "max")  # max 0 gives 0, as documented
    else:  # log_max
        mx = _param(spec, "max")
        x = np.expm1(np.clip(y, 0.0, 1.0) * np.log1p(mx)) if mx > 0 else np.zeros_like(y)
    return np.asarray(x, dtype=np.float32)


# --- fitting ------------------------------------------------------------------------------------


def _observed(name: str, v: np.ndarray | Moments) -> Moments | None:
    """A column's moments (its non-NaN values), None if there are none; inf is an error."""
    m = v if isinstance(v, Moments) else Moments.of(name, v)
    return m if m.count else None


def _mean_std(m: Moments) -> tuple[float, float]:
    return m.mean, max(m.std, STD_FLOOR)  # population std, floored


def fit_mimic_norm(values: Mapping[str, np.ndarray | Moments]) -> dict:
    """Fit a `mimic_norm.json` (SPEC 3.6) from raw values of the 13 numeric columns.

    Data-derived entries (pos_x, pos_y, percent, stock, jumps_left, shield_strength) carry
    `transform, min, max, mean, std` with std = max(population std, 1.0); fixed ones carry their
    fixed parameter; the three flag entries are always added. NaN values are ignored; a column
    not given, or all NaN, gets no entry. Other names (e.g. an `ecb_*` column a schema keeps)
    get no entry either: `normalize_columns` z-scores them from norm_stats (SPEC 3.5 fallback).
    Values are plain Python floats, unrounded.

    Args:
        values: {suffix: raw values of any shape, or their `Moments`} (feed both perspectives'
            values to match the published files, whose self/opp stats are equal).
    Returns:
        `{"features": {suffix: spec}}`, numeric columns in SPEC 3.2 order, then the flags.
    Raises:
        ValueError: infinite values in a column with a mimic_norm transform.
    """
    features: dict[str, dict] = {}
    for suffix, template in MIMIC_TRANSFORMS.items():
        if suffix not in values:
            continue
        v = _observed(suffix, values[suffix])
        if v is None:
            continue
        spec = dict(template)
        if spec["transform"] in DATA_DERIVED:
            mean, std = _mean_std(v)
            spec.update(min=v.min, max=v.max, mean=mean, std=std)
        features[suffix] = spec
    for flag in FLAG_ENTRIES:
        features[flag] = dict(FLAG_SPEC)
    return {"features": features}


def fit_norm_stats(values: Mapping[str, np.ndarray | Moments]) -> dict[str, list[float]]:
    """Fit a `norm_stats.json` (SPEC 3.6): `{column: [mean, std]}`, std = max(pop. std, 1.0).

    NaN values are ignored; an all-NaN column gets no entry. Keys are kept as given, in order.
    Values may be raw arrays or their `Moments`, as for `fit_mimic_norm`.
    """
    stats: dict[str, list[float]] = {}
    for name, raw in values.items():
        v = _observed(name, raw)
        if v is not None:
            stats[name] = list(_mean_std(v))
    return stats


# --- applying the published files to named columns ----------------------------------------------


def suffix_of(name: str) -> str:
    """`self_pos_x` -> `pos_x`: the key a column is looked up by in mimic_norm (same for opp)."""
    for prefix in PLAYER_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def column_specs(names: list[str], mimic_norm: Mapping, norm_stats: Mapping) -> list[dict]:
    """The transform spec of each named column: resolve once, then apply per frame.

    A column uses the mimic_norm entry of its suffix; without one it falls back to a z-score
    (standardize) with `norm_stats["self_<suffix>"]`, else `norm_stats[name]`, std floored at 1.0
    (SPEC 3.5's fallback, which is how older mimic_norm files load).

    Args:
        names: C column names, e.g. `["self_pos_x", "opp_hitstun_left"]`.
        mimic_norm: the loaded `mimic_norm.json` (`{"features": {...}}`, or its inner dict).
        norm_stats: the loaded `norm_stats.json` (`{column: [mean, std]}`).
    Raises:
        ValueError: a column found in neither file.
    """
    features = mimic_norm.get("features", mimic_norm)
    specs = []
    for name in names:
        suffix = suffix_of(name)
        if suffix in features:
            _kind(features[suffix])
            specs.append(dict(features[suffix]))
            continue
        key = f"self_{suffix}" if f"self_{suffix}" in norm_stats else name
        if key not in norm_stats:
            raise ValueError(
                f"column {name!r}: no mimic_norm entry {suffix!r} and no norm_stats entry "
                f"'self_{suffix}' or {name!r}"
            )
        mean, std = norm_stats[key]
        specs.append(
            {"transform": "standardize", "mean": float(mean), "std": max(float(std), STD_FLOOR)}
        )
    return specs


def _apply(x: np.ndarray, names: list[str], specs: list[dict], fn) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(
            f"expected a (T, {len(names)}) array for {len(names)} names, got {x.shape}"
        )
    out = np.empty(x.shape, dtype=np.float32)
    for j, spec in enumerate(specs):
        out[:, j] = fn(x[:, j], spec)
    return out


def normalize_columns(
    x: np.ndarray, names: list[str], mimic_norm: Mapping, norm_stats: Mapping
) -> np.ndarray:
    """Normalise a (T, C) block of raw columns named `names`; returns (T, C) float32.

    Each column gets `column_specs`' transform (mimic_norm by suffix, else norm_stats z-score).
    """
    return _apply(x, names, column_specs(names, mimic_norm, norm_stats), forward)


def denormalize_columns(
    x: np.ndarray, names: list[str], mimic_norm: Mapping, norm_stats: Mapping
) -> np.ndarray:
    """Inverse of `normalize_columns`: (T, C) normalised -> (T, C) raw float32."""
    return _apply(x, names, column_specs(names, mimic_norm, norm_stats), inverse)
