"""params.yaml profiles: a section's profile keys over its shared ones; `study` builds on
`smoke`; a bad profile or a missing section is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmlib.config import ConfigError, stage_params

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_profiles_lay_their_keys_over_the_shared_ones_and_study_builds_on_smoke(tmp_path):
    section = {"seed": 0, "steps": 1, "smoke": {"steps": 2, "batch": 8}, "study": {"steps": 3},
               "full": {"steps": 4, "batch": 64}}  # fmt: skip
    path = _write(tmp_path, {"profile": "smoke", "bc": section, "ingest": {"smoke": {"w": 2}}})
    assert stage_params("bc", path) == {"seed": 0, "steps": 2, "batch": 8}
    assert stage_params("bc", path, "study") == {"seed": 0, "steps": 3, "batch": 8}
    assert stage_params("bc", path, "full") == {"seed": 0, "steps": 4, "batch": 64}
    assert stage_params("ingest", path, "study") == {"w": 2}  # no study keys: smoke's
    with pytest.raises(ConfigError, match="profile 'huge'"):
        stage_params("bc", path, "huge")
    with pytest.raises(ConfigError, match="no `play` section"):
        stage_params("play", path)


@pytest.mark.parametrize("profile", ["smoke", "study", "cpu", "full"])
def test_every_stage_of_the_project_params_resolves_in_every_profile(profile, tmp_path):
    """Every section of params.yaml resolves with no profile sub-section left and the profile's
    values (read from the file) over the shared ones, and each stage builds from its settings
    what it builds in the pipeline: the ingest, BC and world-model configs, the keys read."""
    from mmlib.config import BASES, PROFILES
    from mmlib.data.ingest import IngestConfig
    from mmlib.train import character
    from mmlib.worldmodel import params as wm_params

    def leaves(d: dict, at: tuple = ()) -> dict:  # {key path: value}, mappings walked into
        out = {}
        for k, v in d.items():
            out |= leaves(v, (*at, k)) if isinstance(v, dict) and v else {(*at, k): v}
        return out

    def keys(d: dict) -> set:  # every key at every depth
        return set(d) | {k for v in d.values() if isinstance(v, dict) for k in keys(v)}

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    path = _write(tmp_path, params | {"profile": profile})  # the recipes read the file's profile
    chain = [BASES[profile], profile] if profile in BASES else [profile]
    settings, overridden = {}, 0
    for stage, section in params.items():
        if not isinstance(section, dict):
            continue
        got = settings[stage] = stage_params(stage, path)
        assert not keys(got) & set(PROFILES), f"{stage}: a profile sub-section is left"
        want = leaves({k: v for k, v in section.items() if k not in PROFILES})
        for layer in chain:  # a later layer's leaf replaces what lay at, under or above its path
            for key, value in leaves(section.get(layer) or {}).items():
                want = {p: v for p, v in want.items() if p[: len(key)] != key[: len(p)]}
                want[key] = value
                overridden += 1
        assert leaves(got) == want, stage
    assert overridden, f"no section of params.yaml has a {profile} sub-section"

    ingest = dict(settings["ingest"])
    assert all(Path(p).parts[0] == "data" for p in ingest.pop("source"))  # the DVC-tracked data
    IngestConfig(**ingest)  # every other ingest key is a field
    cfg, _ = character.recipe(path)  # TrainConfig and the model preset
    bc = {k: v for k, v in settings["bc"].items() if k != "characters"}
    assert {k: getattr(cfg, k) for k in bc} == bc
    for arch in wm_params.archs(path):
        model_cfg, train_cfg, _ = wm_params.recipe(path, arch)
        assert model_cfg.arch == arch
        assert train_cfg.epochs == settings["world_model"][arch]["epochs"]
    wm_params.decompose_recipe(path)
    read = {  # the keys stages and notebooks read from the sections kept as mappings
        "features": {"val_frac", "seed", "window", "sample_frames", "characters", "workers"},
        "play": {"characters", "temperature", "seed", "drift_every", "threads", "max_frames"},
        "overview": {"length_bin_s"},
        "audit": {"games_per_version", "seed"},
        "bc_curve": {"character", "train_games"},
    }
    for stage, names in read.items():
        assert names <= set(settings[stage]), f"{stage} lacks {names - set(settings[stage])}"
    # each BC character needs its shards, and play drives BC's policies
    assert set(settings["bc"]["characters"]) <= set(settings["features"]["characters"])
    assert set(settings["play"]["characters"]) <= set(settings["bc"]["characters"])
    assert settings["bc_curve"]["character"] in settings["bc"]["characters"]
    unchecked = set(settings) - {"ingest", "bc", "world_model", "decompose", *read}
    assert not unchecked, f"say here how the stage reads its settings: {sorted(unchecked)}"


def test_a_profile_sets_one_nested_key_and_keeps_its_siblings(tmp_path):
    """`study: {mlp: {epochs: 30}}` changes the epochs of smoke's mlp recipe and nothing else
    (a shallow merge used to drop the preset, batch and learning rate)."""
    section = {
        "model": {"scale": "mad", "hold": True},
        "smoke": {"workers": 2, "mlp": {"preset": "mlp", "epochs": 10, "batch": 128, "lr": 1e-3}},
        "study": {"mlp": {"epochs": 30}, "model": {"hold": False}},
        "full": {"mlp": {"epochs": 2, "grid": [1, 2]}},
    }
    path = _write(tmp_path, {"profile": "study", "world_model": section})
    assert stage_params("world_model", path) == {
        "model": {"scale": "mad", "hold": False},
        "workers": 2,
        "mlp": {"preset": "mlp", "epochs": 30, "batch": 128, "lr": 1e-3},
    }
    full = stage_params("world_model", path, "full")  # full builds on nothing: shared keys only
    assert full["mlp"] == {"epochs": 2, "grid": [1, 2]} and "workers" not in full


def test_a_mapping_replaces_a_scalar_and_a_list_replaces_a_list_whole():
    from mmlib.config import merged

    assert merged({"a": 1, "b": [1, 2]}, {"a": {"x": 1}, "b": [3]}) == {"a": {"x": 1}, "b": [3]}
    assert merged({"a": {"x": 1}}, {"a": 2}) == {"a": 2}
