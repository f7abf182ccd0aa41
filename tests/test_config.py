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


@pytest.mark.parametrize("profile", ["smoke", "study", "full"])
def test_every_stage_of_the_project_params_resolves_in_every_profile(profile):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for stage in params:
        if isinstance(params[stage], dict):
            assert isinstance(stage_params(stage, ROOT / "params.yaml", profile), dict)


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
