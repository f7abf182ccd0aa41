"""AdamW with the published decay groups, and the cosine schedule (SPEC 4.6).

The published rule exempts from weight decay every tensor whose name ends in `bias` or contains
`norm`. Applied to its own names, that exempts the biases and `final_norm.weight` but decays the
block and head LayerNorm weights (`ln_1`, `ln_2`, `heads.*.0`). We keep that quirk by testing the
published name of each parameter.
"""

from __future__ import annotations

import torch

from mmlib.checkpoint.published import published_name
from mmlib.train.config import TrainConfig


def decay_groups(model: torch.nn.Module) -> tuple[list[str], list[str]]:
    """(names decayed, names not decayed), in mmlib's names."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        pub = published_name(name)
        (no_decay if pub.endswith("bias") or "norm" in pub else decay).append(name)
    return decay, no_decay


def optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    params = dict(model.named_parameters())
    decay, no_decay = decay_groups(model)
    groups = [
        {"params": [params[n] for n in decay], "weight_decay": cfg.weight_decay},
        {"params": [params[n] for n in no_decay], "weight_decay": 0.0},
    ]
    fused = next(model.parameters()).is_cuda  # the fused kernel is CUDA-only here
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=fused)


def scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine from lr to min_lr over all steps, after an optional linear warm-up from 1%."""
    warmup = int(cfg.warmup_frac * cfg.steps)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(cfg.steps - warmup, 1), eta_min=cfg.min_lr
    )
    if warmup == 0:
        return cosine
    linear = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(opt, [linear, cosine], milestones=[warmup])
