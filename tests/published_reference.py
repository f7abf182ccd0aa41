"""The published MIMIC model (`mimic_flat` encoder, relpos attention, chained heads) as one plain
function over a state dict in the published names, written from SPEC 4.1-4.3, 4.7 and 3.1/3.4.

It shares no code with `mmlib.models`: the tests load the same weights into both and compare the
logits. Everything is spelled out the slow way: the relative-position term is gathered row by row
from its definition (no skew trick), GELU is written with erf, and there is no dropout (eval).

Glossary: B batch, T frames, C d_model, H heads, D = C / H head width, R rows of `Er`.
"""

from __future__ import annotations

import math

import torch

# The float columns the encoder maps to 2f - 1: the 5 flags after each player's 13 numeric
# columns (self numeric 0-12 | self flags 13-17 | opp numeric 18-30 | opp flags 31-35 | ...).
FLAG_COLUMNS = [*range(13, 18), *range(31, 36)]
# (published head module, output key, classes), in prediction order (SPEC 4.3).
HEADS = (
    ("shoulder_head", "shoulder_val", 3),
    ("cdir_head", "c_dir_logits", 9),
    ("main_head", "main_xy", 37),
    ("btn_head", "btn_logits", 7),
)


def published_shapes(config: dict, n_inputs: int, rel_rows: int = 1024) -> dict[str, tuple]:
    """The parameter table of SPEC 4.7 (no prefix, no mask buffers): {published name: shape}."""
    C, F, n_layers = config["d_model"], config["dim_feedforward"], config["num_layers"]
    D = C // config["nhead"]
    shapes = {
        "encoder.stage_emb.weight": (config["num_stages"], 4),
        "encoder.char_emb.weight": (config["num_characters"], 12),
        "encoder.action_emb.weight": (config["num_actions"], 32),
        "encoder.proj.weight": (C, n_inputs),
        "encoder.proj.bias": (C,),
    }
    for i in range(n_layers):
        b = f"blocks.{i}."
        shapes |= {
            b + "ln_1.weight": (C,),
            b + "ln_1.bias": (C,),
            b + "self_attn.Er": (rel_rows, D),
            b + "self_attn.c_attn.weight": (3 * C, C),
            b + "self_attn.c_attn.bias": (3 * C,),
            b + "self_attn.c_proj.weight": (C, C),
            b + "self_attn.c_proj.bias": (C,),
            b + "ln_2.weight": (C,),
            b + "ln_2.bias": (C,),
            b + "mlp.c_fc.weight": (F, C),
            b + "mlp.c_fc.bias": (F,),
            b + "mlp.c_proj.weight": (C, F),
            b + "mlp.c_proj.bias": (C,),
        }
    shapes |= {"final_norm.weight": (C,), "final_norm.bias": (C,)}
    n_in = C
    for head, _, classes in HEADS:
        h = f"heads.{head}."
        shapes |= {
            h + "0.weight": (n_in,),
            h + "0.bias": (n_in,),
            h + "1.weight": (n_in // 2, n_in),
            h + "1.bias": (n_in // 2,),
            h + "3.weight": (classes, n_in // 2),
            h + "3.bias": (classes,),
        }
        n_in += classes
    return shapes


def _linear(x, state, name):
    return x @ state[name + ".weight"].T + state[name + ".bias"]


def _layer_norm(x, state, name, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased variance, as nn.LayerNorm
    return (x - mean) / torch.sqrt(var + eps) * state[name + ".weight"] + state[name + ".bias"]


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))  # exact (erf) GELU


def _attention(x, state, prefix, n_heads):
    """Causal self-attention of one block: (B, T, C) -> (B, T, C)."""
    B, T, C = x.shape
    D = C // n_heads
    q, k, v = _linear(x, state, prefix + "c_attn").split(C, dim=-1)
    q, k, v = (t.reshape(B, T, n_heads, D).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
    Er = state[prefix + "Er"]  # (R, D), shared by the heads
    R = Er.shape[0]
    # Srel[i, j] = q_i . Er[R - 1 - (i - j)] for j <= i: frame i's key vector for distance i - j.
    srel = torch.zeros(B, n_heads, T, T, dtype=q.dtype)
    for i in range(T):
        rows = Er[[R - 1 - (i - j) for j in range(i + 1)]]  # (i + 1, D)
        srel[:, :, i, : i + 1] = q[:, :, i, :] @ rows.T
    scores = (q @ k.transpose(-2, -1) + srel) / math.sqrt(D)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # j > i
    att = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
    y = (att @ v).transpose(1, 2).reshape(B, T, C)  # heads merged
    return _linear(y, state, prefix + "c_proj")


def published_logits(state: dict, config: dict, ints, floats) -> dict[str, torch.Tensor]:
    """The published model's four head outputs in eval mode.

    Args:
        state: published state dict (`_orig_mod.` prefixes and mask buffers allowed).
        config: published `config.json` fields (d_model, nhead, num_layers, num_stages, ...).
        ints: (B, T, 5) stage, self character, opp character, self action, opp action (dense).
        floats: (B, T, F) self numeric | self flags | opp numeric | opp flags | controller.
    Returns:
        {"shoulder_val": (B, T, 3), "c_dir_logits": (B, T, 9), "main_xy": (B, T, 37),
        "btn_logits": (B, T, 7)}.
    """
    state = {k.removeprefix("_orig_mod."): v for k, v in state.items()}
    ints = ints.long()
    stage = ints[..., 0]
    if config["num_stages"] == 6:  # no NO_STAGE row: FD is row 0
        stage = (stage - 1).clamp(min=0)
    floats = floats.clone()
    floats[..., FLAG_COLUMNS] = 2 * floats[..., FLAG_COLUMNS] - 1
    char, action = state["encoder.char_emb.weight"], state["encoder.action_emb.weight"]
    x = torch.cat(
        [
            state["encoder.stage_emb.weight"][stage],
            char[ints[..., 1]],
            char[ints[..., 2]],
            action[ints[..., 3]],
            action[ints[..., 4]],
            floats,
        ],
        dim=-1,
    )
    x = _linear(x, state, "encoder.proj")  # (B, T, C)
    for i in range(config["num_layers"]):
        b = f"blocks.{i}."
        h = _layer_norm(x, state, b + "ln_1")
        x = x + _attention(h, state, b + "self_attn.", config["nhead"])
        h = _layer_norm(x, state, b + "ln_2")
        x = x + _linear(_gelu(_linear(h, state, b + "mlp.c_fc")), state, b + "mlp.c_proj")
    h = _layer_norm(x, state, "final_norm")
    out = {}
    for head, key, _ in HEADS:  # each head reads h and the raw logits of the heads before it
        p = f"heads.{head}."
        hidden = _gelu(_linear(_layer_norm(h, state, p + "0"), state, p + "1"))
        out[key] = _linear(hidden, state, p + "3")
        h = torch.cat([h, out[key]], dim=-1)
    return out
