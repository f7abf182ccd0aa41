"""Checkpoints (SPEC 4.7): a directory written the way the published MIMIC tools write one loads
into mmlib's model and gives the logits of an independent forward pass of the published model
(`published_reference.py`); ours round-trips exactly; the key table is SPEC 4.7's; a bad directory
fails with one line naming the file and the field.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch
from published_reference import published_logits, published_shapes

from mmlib.checkpoint import directory, published
from mmlib.errors import UsageError
from mmlib.features import build, controller, transforms
from mmlib.models.bc import BCTransformer
from mmlib.models.config import PRESETS, preset

# --- a published-format directory ---------------------------------------------------------------

# (mean, std) of the 13 numeric columns, from the Fox norm stage (self_ and opp_ are equal).
FOX_STATS = {
    "pos_x": [-1.7822491267273974, 58.753168101062144],
    "pos_y": [9.731166898815536, 40.239243342223],
    "percent": [57.965255533975885, 42.7900588237529],
    "stock": [2.9526269988034373, 1.1012521703269067],
    "jumps_left": [1.3660937669966278, 1.0],
    "speed_air_x_self": [0.017474820102018684, 1.0],
    "speed_ground_x_self": [-0.00652092490448774, 1.0],
    "speed_x_attack": [-0.024558696960764095, 1.0],
    "speed_y_attack": [0.24247950951980063, 1.0],
    "speed_y_self": [-0.3470962805518277, 1.2625078695924596],
    "hitlag_left": [0.15294245621668662, 1.0],
    "hitstun_left": [3.1631676275426956, 10.498938054272536],
    "shield_strength": [58.30578383996906, 4.601943044192388],
}
FOX_MINMAX = {
    "pos_x": ("standardize", -199.55702209472656, 266.7876892089844),
    "pos_y": ("standardize", -125.06604766845703, 252.14328002929688),
    "percent": ("normalize", 0.0, 152.19000244140625),
    "stock": ("normalize", 0.0, 4.0),
    "jumps_left": ("normalize", 0.0, 2.0),
    "shield_strength": ("invert_normalize", 32.635990142822266, 60.0),
}
NEW_ENTRIES = (  # the 7 mimic_norm entries added on 2026-04-20 (SPEC 3.5); older files lack them
    "speed_air_x_self",
    "speed_ground_x_self",
    "speed_x_attack",
    "speed_y_attack",
    "speed_y_self",
    "hitlag_left",
    "hitstun_left",
)


def old_mimic_norm() -> dict:
    """A pre-2026-04-20 `mimic_norm.json`: the data-derived entries and the flags only."""
    features = {}
    for name, (kind, lo, hi) in FOX_MINMAX.items():
        mean, std = FOX_STATS[name]
        features[name] = {"transform": kind, "min": lo, "max": hi, "mean": mean, "std": std}
    for flag in ("facing", "invulnerable", "on_ground"):
        features[flag] = {"transform": "normalize", "min": 0.0, "max": 1.0, "mean": 0.5, "std": 0.5}
    return {"features": features}


def norm_files() -> dict[str, dict]:
    stats = {f"{p}{name}": v for p in ("self_", "opp_") for name, v in FOX_STATS.items()}
    ports = {"0": 0, "1": 1, "2": 2}
    return {
        "mimic_norm.json": old_mimic_norm(),
        "norm_stats.json": stats,
        "cat_maps.json": {"opp_port": ports, "self_port": ports},
        "stick_clusters.json": controller.stick_clusters_json(),
        "controller_combos.json": controller.controller_combos_json(),
    }


R = 64  # rows of each Er table (the published tools hard-code 1024)
# A published config.json (`ModelConfig.__dict__` + model_preset + run_name), small sizes.
PUBLISHED_CONFIG = {
    "d_model": 32, "nhead": 2, "num_layers": 2, "dim_feedforward": 64, "dropout": 0.2,
    "encoder_type": "mimic_flat", "d_intra": 256, "encoder_nlayers": 2, "k_query": 1,
    "scaled_emb": False, "max_seq_len": 16, "pos_enc": "relpos", "rope_theta": 10000.0,
    "rope_learnable_freqs": False, "xpos_scale_base": 0, "attn_variant": "standard",
    "n_kv_heads": 0, "use_rmsnorm": False, "use_swiglu": False, "use_input_gate": False,
    "stick_loss": "clusters", "btn_loss": "focal", "no_opp_inputs": True, "no_self_inputs": False,
    "head_hidden": 256, "n_stick_clusters": 37, "n_shoulder_bins": 3,
    "autoregressive_heads": True, "mimic_mode": True, "lean_features": False,
    "mimic_minimal_features": False, "mimic_controller_encoding": True, "n_controller_combos": 7,
    "hal_mode": True, "hal_minimal_features": False, "hal_controller_encoding": True,
    "num_stages": 6, "num_ports": 4, "num_characters": 27, "num_actions": 396, "num_costumes": 6,
    "num_c_dirs": 9, "num_proj_types": 103, "num_proj_subtypes": 40,
    "model_preset": "mimic", "run_name": "fox-20260420-baseline",
}  # fmt: skip
N_INPUTS = 4 + 2 * 12 + 2 * 32 + 2 * (13 + 5) + 56  # 184
LAYER_NORMS = re.compile(r"(ln_[12]|final_norm|_head\.0)\.weight$")


def random_published_state(config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Published-named weights with non-trivial values (norm gains near 1, the rest N(0, s))."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in published_shapes(config, N_INPUTS, R).items():
        noise = torch.randn(shape, generator=g)
        if LAYER_NORMS.search(name):
            state[name] = 1 + 0.2 * noise
        elif name.endswith("Er") or "_emb" in name:
            state[name] = 0.5 * noise
        else:
            state[name] = 0.2 * noise
    return state


def write_published_dir(path, state: dict, config: dict = PUBLISHED_CONFIG):
    """A per-character folder as the published tools write it (SPEC 4.7): a compiled model's
    state dict (`_orig_mod.` prefixes, causal-mask buffers), optimizer and scheduler state."""
    path.mkdir()
    model_state = {}
    for name, value in state.items():
        model_state[f"_orig_mod.{name}"] = value
        if name.endswith("self_attn.Er"):
            rows = value.shape[0]
            mask = torch.ones(rows, rows).tril().view(1, 1, rows, rows)
            model_state[f"_orig_mod.{name.removesuffix('Er')}bias"] = mask
    params = [torch.nn.Parameter(v.clone()) for v in state.values()]
    opt = torch.optim.AdamW(params, lr=3e-4, betas=(0.9, 0.999), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=32768, eta_min=1e-6)
    files = norm_files()
    stick = files["stick_clusters.json"]
    ckpt = {
        "global_step": 32768,
        "model_state_dict": model_state,
        "optimizer_state_dict": opt.state_dict(),
        "scheduler_state_dict": sched.state_dict(),
        "loss_weights": torch.ones(5),
        "norm_stats": files["norm_stats.json"],
        "config": config,
        "stick_centers": stick["stick_centers"],
        "shoulder_centers": stick["shoulder_centers"],
    }
    torch.save(ckpt, path / "model.pt")
    metadata = {
        "character": "FOX", "melee_enum": 1, "run_name": config.get("run_name"),
        "global_step": 32768, "n_params": sum(v.numel() for v in model_state.values()),
        "n_controller_combos": 7, "model_preset": "mimic", "pos_enc": "relpos",
        "val_loss": "0.7144", "best_step": 32768, "val_btn_f1": "87.7%", "val_main_f1": "55.0%",
        "val_shldr_f1": "86.0%", "val_cdir_f1": "70.0%",
    }  # fmt: skip
    files |= {"config.json": config, "metadata.json": metadata}
    for name, content in files.items():
        (path / name).write_text(json.dumps(content, indent=2))
    return path


def random_inputs(B: int = 3, T: int = 16, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """ints (B, T, 5) within the vocabularies (stage 1..6) and floats (B, T, 92), flags 0/1."""
    g = torch.Generator().manual_seed(seed)
    ints = torch.stack(
        [
            torch.randint(1, 7, (B, T), generator=g),
            torch.randint(0, 27, (B, T), generator=g),
            torch.randint(0, 27, (B, T), generator=g),
            torch.randint(0, 396, (B, T), generator=g),
            torch.randint(0, 396, (B, T), generator=g),
        ],
        dim=-1,
    ).to(torch.int16)
    floats = torch.randn(B, T, 92, generator=g)
    for start in (13, 31):
        floats[..., start : start + 5] = torch.randint(0, 2, (B, T, 5), generator=g).float()
    return ints, floats


def z(name: str, x: float):
    """`x` z-scored with the Fox norm_stats of column `name`, for comparison."""
    mean, std = FOX_STATS[name]
    return pytest.approx((x - mean) / std)


OUR_HEADS = {  # mmlib head -> the published output key
    "shoulder": "shoulder_val",
    "c": "c_dir_logits",
    "main": "main_xy",
    "button": "btn_logits",
}


@pytest.fixture(scope="module")
def published_policy(tmp_path_factory):
    state = random_published_state(PUBLISHED_CONFIG)
    path = write_published_dir(tmp_path_factory.mktemp("published") / "fox", state)
    return directory.load_policy(path), state


# --- the published directory loads and matches the reference -----------------------------------


def test_published_directory_matches_reference_forward(published_policy):
    policy, state = published_policy
    assert not policy.model.training
    assert policy.config.rel_table == R  # from the Er rows: the published config.json lacks it
    assert (policy.config.d_model, policy.config.n_layers, policy.config.n_heads) == (32, 2, 2)
    assert policy.schema == directory.PUBLISHED_SCHEMA  # metadata.json names no feature_schema
    assert policy.metadata["val_loss"] == "0.7144"
    ints, floats = random_inputs()
    reference = published_logits(state, PUBLISHED_CONFIG, ints, floats)
    with torch.no_grad():
        ours, losses = policy.model(ints, floats)
        ours_plain, _ = policy.model(ints, floats, reference=True)
    assert losses is None
    for name, key in OUR_HEADS.items():
        assert ours[name].shape == reference[key].shape
        assert reference[key].std() > 0.1  # the random weights make the comparison sensitive
        torch.testing.assert_close(ours[name], reference[key], atol=1e-5, rtol=0)
        torch.testing.assert_close(ours_plain[name], reference[key], atol=1e-5, rtol=0)


def test_reference_reads_only_the_last_rows_of_er(published_policy):
    """With T frames only rows R-T..R-1 of Er are used; row R-1 (distance 0) matters."""
    _, state = published_policy
    ints, floats = random_inputs(T=16)
    base = published_logits(state, PUBLISHED_CONFIG, ints, floats)["main_xy"]
    unused = dict(state)
    unused["blocks.0.self_attn.Er"] = state["blocks.0.self_attn.Er"].clone()
    unused["blocks.0.self_attn.Er"][: R - 16] = 9.0
    assert torch.equal(published_logits(unused, PUBLISHED_CONFIG, ints, floats)["main_xy"], base)
    used = dict(state)
    used["blocks.0.self_attn.Er"] = state["blocks.0.self_attn.Er"].clone()
    used["blocks.0.self_attn.Er"][R - 1] += 1.0
    changed = published_logits(used, PUBLISHED_CONFIG, ints, floats)["main_xy"]
    assert (changed - base).abs().max() > 1e-3


def test_published_directory_features_fall_back_to_zscore(published_policy):
    """The old mimic_norm.json lacks the 7 newer entries: those columns are z-scored with
    norm_stats.json (SPEC 3.5), the others keep their transform, in the policy's feature path."""
    policy, _ = published_policy
    assert "speed_y_self" not in policy.norm.mimic_norm["features"]
    values = {  # raw values of one frame, both players
        "pos_x": 10.0, "pos_y": 0.0, "percent": 76.095, "stock": 4.0, "jumps_left": 2.0,
        "speed_air_x_self": 2.5, "speed_ground_x_self": 0.0, "speed_x_attack": 0.0,
        "speed_y_attack": 0.0, "speed_y_self": 2.5, "hitlag_left": 10.0, "hitstun_left": 30.0,
        "shield_strength": 60.0,
    }  # fmt: skip
    raw = {"stage": np.array([2])}
    for p in ("self_", "opp_"):
        raw |= {f"{p}{k}": np.array([v], np.float32) for k, v in values.items()}
        raw |= {f"{p}character": np.array([1]), f"{p}action": np.array([75])}  # DAMAGE_HIGH_1
        raw |= {f"{p}prev_action": np.array([75])}
        raw |= {f"{p}{f}": np.array([1.0], np.float32) for f in ("on_ground", "facing")}
        raw[f"{p}invulnerable"] = np.array([0.0], np.float32)
    for k in ("main_x", "main_y", "c_x", "c_y"):
        raw[f"self_{k}"] = np.array([0.5], np.float32)
    for k in ("a", "b", "z", "jump", "trig", "shoulder"):
        raw[f"self_{k}"] = np.array([0.0], np.float32)
    _, floats = build.pack(build.features(raw, policy.schema, policy.norm))
    got = dict(zip(build.float_columns(policy.schema), floats[0].tolist(), strict=True))
    assert got["self_speed_y_self"] == z("speed_y_self", 2.5)  # 2.2551, not tanh(0.5) = 0.462
    assert got["opp_speed_air_x_self"] == z("speed_air_x_self", 2.5)
    assert got["self_hitlag_left"] == z("hitlag_left", 10.0)  # 9.847, not 10 / 20
    assert got["opp_hitstun_left"] == z("hitstun_left", 30.0)  # 2.556, not log_max = 0.71
    assert got["self_percent"] == pytest.approx(0.0, abs=1e-6)  # normalize: midpoint of 0..152.19
    assert got["self_shield_strength"] == pytest.approx(-1.0)  # invert_normalize: full shield
    assert got["self_pos_x"] == z("pos_x", 10.0)  # standardize, from mimic_norm itself
    # the same through normalize_columns directly, one missing column
    y = transforms.normalize_columns(
        np.array([[2.5]]), ["self_speed_y_self"], policy.norm.mimic_norm, policy.norm.norm_stats
    )
    assert y[0, 0] == pytest.approx(2.2551, abs=1e-4)


# --- our own directories ------------------------------------------------------------------------


def test_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = BCTransformer(preset("tiny")).eval()
    with torch.no_grad():  # weights away from the init, so the comparison is sensitive
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    norm_dir = tmp_path / "norm"
    norm_dir.mkdir()
    for name, content in norm_files().items():
        (norm_dir / name).write_text(json.dumps(content))
    norm = build.Norm(old_mimic_norm(), norm_files()["norm_stats.json"])
    ckpt = directory.model_checkpoint(model, 123, norm, "tiny", optimizer_state_dict={"state": {}})
    out = tmp_path / "policy"
    meta = {"character": "fox", "global_step": 123}
    directory.save_policy(out, ckpt, meta, norm_dir, directory.PUBLISHED_SCHEMA)
    directory.save_policy(out, ckpt, meta, norm_dir, directory.PUBLISHED_SCHEMA)  # replaces it

    assert sorted(os.listdir(out)) == sorted(directory.FILES)
    assert sorted(os.listdir(tmp_path)) == ["norm", "policy"]  # no temporary folder left
    saved = torch.load(out / "model.pt", weights_only=True)
    keys = list(saved["model_state_dict"])
    assert keys[0].startswith("encoder.stage_emb")
    assert set(keys) == set(published.to_published(model.state_dict()))
    assert saved["global_step"] == 123 and saved["optimizer_state_dict"] == {"state": {}}
    config = json.loads((out / "config.json").read_text())
    assert config["pos_enc"] == "relpos" and config["nhead"] == 2
    assert config["mmlib"] == preset("tiny").to_dict()

    policy = directory.load_policy(out)
    assert policy.config == preset("tiny")
    assert policy.metadata["feature_schema"]["numeric"] == list(directory.PUBLISHED_SCHEMA.numeric)
    assert policy.norm == norm
    ints, floats = random_inputs(B=2, T=16, seed=5)
    with torch.no_grad():
        before, _ = model(ints, floats)
        after, _ = policy.model(ints, floats)
    for name in OUR_HEADS:
        assert torch.equal(before[name], after[name])


# --- the key table ------------------------------------------------------------------------------


def meta_model(name: str) -> BCTransformer:
    """A preset's model on the meta device: shapes without memory or init time."""
    with torch.device("meta"):
        return BCTransformer(preset(name))


def test_mimic_preset_is_the_published_model():
    model = meta_model("mimic")
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 19_994_149
    state = published.to_published(model.state_dict())
    n_masks = 6 * 1 * 1 * 1024 * 1024  # blocks.i.self_attn.bias (1, 1, 1024, 1024)
    assert sum(v.numel() for v in state.values()) + n_masks == 26_285_605
    assert len(state) == 109
    spec = {  # SPEC 4.7's table, literally
        "encoder.stage_emb.weight": (6, 4),
        "encoder.char_emb.weight": (27, 12),
        "encoder.action_emb.weight": (396, 32),
        "encoder.proj.weight": (512, 184),
        "blocks.0.ln_1.weight": (512,),
        "blocks.3.self_attn.Er": (1024, 64),
        "blocks.5.self_attn.c_attn.weight": (1536, 512),
        "blocks.2.self_attn.c_proj.bias": (512,),
        "blocks.4.mlp.c_fc.weight": (2048, 512),
        "blocks.1.mlp.c_proj.weight": (512, 2048),
        "final_norm.bias": (512,),
        "heads.shoulder_head.1.weight": (256, 512),
        "heads.cdir_head.0.weight": (515,),
        "heads.cdir_head.3.weight": (9, 257),
        "heads.main_head.1.weight": (262, 524),
        "heads.btn_head.0.bias": (561,),
        "heads.btn_head.3.bias": (7,),
    }
    for name, shape in spec.items():
        assert tuple(state[name].shape) == shape, name
    mimic_config = {
        "d_model": 512, "nhead": 8, "num_layers": 6, "dim_feedforward": 2048,
        "num_stages": 6, "num_characters": 27, "num_actions": 396,
    }  # fmt: skip
    assert {k: tuple(v.shape) for k, v in state.items()} == published_shapes(mimic_config, 184)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_key_table_is_a_bijection(name):
    ours = meta_model(name).state_dict()
    theirs = published.to_published(ours)
    assert len(set(theirs)) == len(ours)
    back = published.from_published(theirs, "test")
    assert list(back) == list(ours)


def test_wrapper_prefixes_and_mask_buffers_are_dropped():
    state = published.to_published(meta_model("tiny").state_dict())
    wrapped = {f"module._orig_mod.{k}": v for k, v in state.items()}  # DDP around compile
    wrapped["module._orig_mod.blocks.1.self_attn.bias"] = torch.ones(1, 1, 32, 32)
    assert list(published.from_published(wrapped, "test")) == list(meta_model("tiny").state_dict())
    assert published.rel_table_rows(wrapped) == 32


# --- one-line errors ----------------------------------------------------------------------------


def load_error(path) -> str:
    with pytest.raises(UsageError) as e:
        directory.load_policy(path)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_missing_directory(tmp_path):
    assert "nowhere" in load_error(tmp_path / "nowhere")


def test_missing_config_json(tmp_path):
    path = write_published_dir(tmp_path / "fox", random_published_state(PUBLISHED_CONFIG))
    (path / "config.json").unlink()
    message = load_error(path)
    assert "config.json" in message and str(path) in message


def test_missing_config_field(tmp_path):
    config = {k: v for k, v in PUBLISHED_CONFIG.items() if k != "d_model"}
    path = write_published_dir(tmp_path / "fox", random_published_state(PUBLISHED_CONFIG), config)
    message = load_error(path)
    assert "config.json" in message and "'d_model'" in message


def test_model_pt_not_a_torch_file(tmp_path):
    path = write_published_dir(tmp_path / "fox", random_published_state(PUBLISHED_CONFIG))
    (path / "model.pt").write_bytes(b"\x00\xffnot a torch checkpoint" * 10)
    message = load_error(path)
    assert "model.pt" in message and "not a readable torch checkpoint" in message


def test_unknown_state_dict_key(tmp_path):
    state = random_published_state(PUBLISHED_CONFIG)
    state["blocks.0.self_attn.rotary.inv_freq"] = torch.ones(8)
    message = load_error(write_published_dir(tmp_path / "fox", state))
    assert "model.pt" in message and "blocks.0.self_attn.rotary.inv_freq" in message


def test_22_column_checkpoint(tmp_path):
    state = random_published_state(PUBLISHED_CONFIG)
    state["encoder.proj.weight"] = torch.randn(32, 202)  # 22 numeric columns per player
    message = load_error(write_published_dir(tmp_path / "fox", state))
    assert "model.pt" in message and "encoder.proj.weight" in message
    assert "(32, 202)" in message and "(32, 184)" in message


def test_rope_checkpoint(tmp_path):
    config = PUBLISHED_CONFIG | {"pos_enc": "rope"}
    path = write_published_dir(tmp_path / "fox", random_published_state(config), config)
    message = load_error(path)
    assert "config.json" in message and "pos_enc" in message and "rope" in message
