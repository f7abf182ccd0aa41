"""The weighted loss of SPEC 6.2.2 (the weights of the GPU Mamba-2 runs, from 76f7c03).

MSE on the float groups, BCE with logits on the binaries, cross-entropy on each categorical (the
mean over both players). `change_weight` > 1 is the E010b transition weighting: a player's
action loss counts that many times on frames where the action changes (1 = off, as published
before E010b).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

WEIGHTS = {
    "continuous": 1.0,
    "velocity": 0.5,
    "dynamics": 0.5,
    "binary": 0.5,
    "action": 2.0,
    "jumps": 0.5,
    "l_cancel": 0.3,
    "hurtbox": 0.3,
    "ground": 0.3,
    "last_attack": 0.3,
    "guard": 1.0,  # ours: the shield/grab state of a subsystem model (never a monolith head)
}


def per_player(logits: torch.Tensor) -> torch.Tensor:
    """(..., 2 * V) -> (..., 2, V): a categorical head's logits for player 0 and player 1."""
    return logits.unflatten(-1, (2, -1))


def losses(
    out: dict,
    tgt: dict,
    change_weight: float = 1.0,
    scales: dict | None = None,
    float_loss: str = "mse",
) -> dict[str, torch.Tensor]:
    """Each head's loss and their weighted `total`, averaged over batch and positions. A float
    head with a scale (`readout.Heads.scales`: a scaled model) is scored in its units, with
    `float_loss` mse or huber (quadratic within 1 unit, linear beyond)."""
    parts = {}
    scales = scales or {}
    for name, pred in out.items():
        target = tgt[name]
        if name == "binary":
            parts[name] = F.binary_cross_entropy_with_logits(pred, target)
        elif name in ("continuous", "velocity", "dynamics"):
            s = scales.get(name)
            if s is not None:
                pred, target = pred / s, target / s
            if float_loss == "huber":
                parts[name] = F.smooth_l1_loss(pred, target, beta=1.0)
            else:
                parts[name] = F.mse_loss(pred, target)
        else:
            logits = per_player(pred)
            ce = F.cross_entropy(logits.flatten(0, -2), target.flatten(), reduction="none")
            if name == "action" and change_weight != 1.0:
                changed = (target != tgt["prev_action"]).flatten()
                ce = ce * (1 + (change_weight - 1) * changed.to(ce.dtype))
            parts[name] = ce.mean()
    parts["total"] = sum(WEIGHTS[n] * v for n, v in parts.items())
    return parts
