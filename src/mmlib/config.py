"""params.yaml -> the settings of one stage, for the chosen profile.

params.yaml has one section per stage. A section may hold `smoke:` and `full:` sub-sections;
the one named by the top-level `profile` key is laid over the section's shared keys:

    profile: smoke
    ingest:
      timeout_s: 120
      smoke: {workers: 2}
      full: {workers: 0}

gives `stage_params("ingest") == {"timeout_s": 120, "workers": 2}`.

Layers merge recursively: a profile that sets `world_model: {full: {mlp: {epochs: 30}}}` changes
that one key and keeps the rest of the shared `mlp:` mapping (preset, batch, learning rate).

A profile may build on another (`BASES`): `study` is `smoke` with a section's `study:` keys laid
over it, so it names only what it changes (a longer recipe on the same data); `cpu` is `smoke`'s
recipes on data version 2 (`ingest.cpu.source`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mmlib.errors import UsageError

PROFILES = ("smoke", "study", "cpu", "full")
BASES = {"study": "smoke", "cpu": "smoke"}  # profile -> the profile it builds on
DEFAULT_PARAMS = Path("params.yaml")


class ConfigError(UsageError):
    """params.yaml is missing or does not hold what a stage needs (one line for the user)."""


def load_params(path: Path = DEFAULT_PARAMS) -> dict:
    try:
        with open(path) as f:
            return yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"no params file at {path}") from None


def stage_params(stage: str, path: Path = DEFAULT_PARAMS, profile: str | None = None) -> dict:
    """The settings of `stage` with its profile sub-section applied."""
    params = load_params(path)
    profile = profile or params.get("profile", "smoke")
    if profile not in PROFILES:
        raise ConfigError(f"profile {profile!r} in {path} is not one of {', '.join(PROFILES)}")
    if stage not in params:
        raise ConfigError(f"{path} has no `{stage}` section")
    section = dict(params[stage] or {})
    chain = [BASES[profile], profile] if profile in BASES else [profile]
    overrides = [section.get(name) or {} for name in chain]
    for name in PROFILES:
        section.pop(name, None)
    for layer in overrides:
        section = merged(section, layer)
    return section


def merged(base: dict, layer: dict) -> dict:
    """`layer` laid over `base`, mapping by mapping: a nested key replaces only itself.
    A non-mapping value (a number, a list) replaces what was there whole."""
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
