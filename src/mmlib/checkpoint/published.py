"""The published MIMIC checkpoint vocabulary: state-dict key names and `config.json` fields.

mmlib's module names are its own; `KEYS` is the one table between them and the names of the
published `FramePredictor` (erickfm/MIMIC `mimic/model.py`, SPEC 4.7). We write checkpoints in the
published names and read theirs through the same table. (The published loader would also want the
six causal-mask buffers, which we do not store: 24 MB of constants for the mimic preset.)
"""

from __future__ import annotations

import re

import torch

from mmlib.errors import UsageError
from mmlib.models.config import ModelConfig

# (mmlib pattern, published pattern); `{i}` is a block index.
KEYS = (
    ("encoder.stage.", "encoder.stage_emb."),
    ("encoder.character.", "encoder.char_emb."),
    ("encoder.action.", "encoder.action_emb."),
    ("encoder.proj.", "encoder.proj."),
    ("blocks.{i}.norm_attn.", "blocks.{i}.ln_1."),
    ("blocks.{i}.attn.rel", "blocks.{i}.self_attn.Er"),
    ("blocks.{i}.attn.qkv.", "blocks.{i}.self_attn.c_attn."),
    ("blocks.{i}.attn.out.", "blocks.{i}.self_attn.c_proj."),
    ("blocks.{i}.norm_mlp.", "blocks.{i}.ln_2."),
    ("blocks.{i}.mlp.up.", "blocks.{i}.mlp.c_fc."),
    ("blocks.{i}.mlp.down.", "blocks.{i}.mlp.c_proj."),
    ("norm_out.", "final_norm."),
    ("heads.shoulder.norm.", "heads.shoulder_head.0."),
    ("heads.shoulder.hidden.", "heads.shoulder_head.1."),
    ("heads.shoulder.out.", "heads.shoulder_head.3."),
    ("heads.c.norm.", "heads.cdir_head.0."),
    ("heads.c.hidden.", "heads.cdir_head.1."),
    ("heads.c.out.", "heads.cdir_head.3."),
    ("heads.main.norm.", "heads.main_head.0."),
    ("heads.main.hidden.", "heads.main_head.1."),
    ("heads.main.out.", "heads.main_head.3."),
    ("heads.button.norm.", "heads.btn_head.0."),
    ("heads.button.hidden.", "heads.btn_head.1."),
    ("heads.button.out.", "heads.btn_head.3."),
    ("heads.hold", "heads.mmlib_hold"),  # ours (ModelConfig.hold): no published model has it
)
MASK_BUFFER = re.compile(r"^blocks\.\d+\.self_attn\.bias$")  # the published causal mask
PREFIXES = ("_orig_mod.", "module.")  # torch.compile and DDP wrappers


def _rules(src: int, dst: int) -> list[tuple[re.Pattern, str]]:
    rules = []
    for pair in KEYS:
        pattern = re.escape(pair[src]).replace(r"\{i\}", r"(\d+)")
        rules.append((re.compile("^" + pattern), pair[dst].replace("{i}", r"\1")))
    return rules


_TO, _FROM = _rules(0, 1), _rules(1, 0)


def _rename(key: str, rules) -> str | None:
    for pattern, repl in rules:
        if pattern.match(key):
            return pattern.sub(repl, key, count=1)
    return None


def published_name(key: str) -> str:
    """The published name of an mmlib parameter name."""
    name = _rename(key, _TO)
    if name is None:
        raise KeyError(f"no published name for {key!r}")
    return name


def to_published(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {published_name(k): v for k, v in state.items()}


def strip_prefixes(key: str) -> str:
    """A state-dict key without its wrapper prefixes, in any order (e.g. `module._orig_mod.`)."""
    while key.startswith(PREFIXES):
        for prefix in PREFIXES:
            key = key.removeprefix(prefix)
    return key


def rel_table_rows(state: dict[str, torch.Tensor]) -> int | None:
    """Rows of the relative-position table in a published state dict (None without one)."""
    for key, value in state.items():
        if strip_prefixes(key) == "blocks.0.self_attn.Er":
            return int(value.shape[0])
    return None


def from_published(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """An mmlib state dict from a published one: wrapper prefixes stripped, the causal-mask
    buffers dropped (mmlib builds its own), every other key renamed or a UsageError naming it."""
    out = {}
    for key, value in state.items():
        key = strip_prefixes(key)
        if MASK_BUFFER.match(key):
            continue
        name = _rename(key, _FROM)
        if name is None:
            raise UsageError(
                f"{source}: unknown state-dict key {key!r} (not a MIMIC mimic_flat model)"
            )
        out[name] = value
    return out


# Published `ModelConfig` field -> mmlib field.
CONFIG_FIELDS = {
    "d_model": "d_model",
    "nhead": "n_heads",
    "num_layers": "n_layers",
    "dim_feedforward": "d_ff",
    "dropout": "dropout",
    "max_seq_len": "max_seq_len",
    "num_stages": "n_stages",
    "num_characters": "n_characters",
    "num_actions": "n_actions",
}
# Published fields whose value must be this for the model to be one mmlib builds.
REQUIRED = {
    "pos_enc": "relpos",
    "encoder_type": "mimic_flat",
    "mimic_mode": True,
    "use_input_gate": False,
    "n_controller_combos": 7,
    "autoregressive_heads": True,
}


def config_to_published(cfg: ModelConfig, preset: str) -> dict:
    """`config.json` in the published field names (plus `mmlib`: our own config, complete)."""
    out = {pub: getattr(cfg, ours) for pub, ours in CONFIG_FIELDS.items()}
    out |= REQUIRED | {"model_preset": preset, "n_stick_clusters": 37, "n_shoulder_bins": 3}
    out |= {"num_c_dirs": 9, "mimic_controller_encoding": True, "no_self_inputs": False}
    return out | {"mmlib": cfg.to_dict()}


def config_from_published(d: dict, source: str, state: dict | None = None) -> ModelConfig:
    """A ModelConfig from a `config.json` (ours or the published tools'; extra fields ignored).

    The published tools hard-code the relative-position table size (1024) instead of writing it
    to `config.json`: for their configs it is read from the `Er` rows of `state` when given.
    """
    if isinstance(d.get("mmlib"), dict):
        fields = d["mmlib"]
    else:
        for field, want in REQUIRED.items():
            if field in d and d[field] != want:
                raise UsageError(f"{source}: field {field!r} is {d[field]!r}; mmlib loads {want!r}")
        missing = [f for f in ("d_model", "nhead", "num_layers", "dim_feedforward") if f not in d]
        if missing:
            raise UsageError(f"{source}: missing field {missing[0]!r}")
        fields = {ours: d[pub] for pub, ours in CONFIG_FIELDS.items() if pub in d}
        rows = None if state is None else rel_table_rows(state)
        if rows is not None:
            fields["rel_table"] = rows
    try:
        return ModelConfig.from_dict(fields)
    except UsageError as e:  # e.g. d_model not a multiple of nhead
        raise UsageError(f"{source}: {e}") from None
