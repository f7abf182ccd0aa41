"""The two next-frame predictors (SPEC 6.3), with the frame encoder and heads they share.

- `FrameStackMLP` (v1): the K context frames flattened, then the next controller appended,
  Linear(512) -> ReLU -> Dropout -> Linear(256) -> ReLU -> Dropout -> heads. It predicts one
  frame per window, and a rollout re-runs the window every frame.
- `FrameStackMamba2` (v2): per-frame Linear(frame -> d_model), residual Mamba-2 layers, a final
  RMSNorm, plus Linear(next controller) added (additive conditioning, as published), then the
  heads. It predicts at every position of a clip (the published multi-position training, E008c),
  so training on a clip of W frames gives W targets, and it runs as a recurrence: a rollout
  seeds a state cache with the real frames and then steps one frame at a time, whatever the
  history length (the published code re-ran the whole window from a zero state every frame).

Both return a dict head -> (B, W, size) of raw outputs (deltas, absolutes, logits), and both
run as a recurrence through one interface, so rollouts, evaluation and training never ask which
architecture they hold: `every_position` (whether a clip of W frames gives W predictions or one),
`seed(floats, ints, stage) -> state` (the real frames), `step(state, floats, ints) -> state` (one
new frame) and `predict(state, ctrl) -> heads` (the next frame given its controller).
"""

from __future__ import annotations

import torch
from torch import nn

from mmlib.worldmodel.config import ModelConfig
from mmlib.worldmodel.encoding import STAGE_VOCAB, VOCAB
from mmlib.worldmodel.mamba2 import Mamba2Layer
from mmlib.worldmodel.readout import Heads


class FrameEncoder(nn.Module):
    """(floats (..., 2, F), ints (..., 2, I), stage (...)) -> (..., frame_dim): per player its
    floats and embeddings (tables shared by both players), then the stage embedding. With
    `standard_inputs` the floats are first standardised (the stored scale makes a velocity
    ~0.01: the first layer would need huge weights to read gravity off it)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        enc = cfg.encoding
        self.embed = nn.ModuleDict({n: nn.Embedding(*VOCAB[n]) for n in enc.ints})
        self.stage = nn.Embedding(*STAGE_VOCAB) if enc.has_stage else None
        self.names = enc.ints
        self.standard = cfg.standard_inputs
        if self.standard:  # per column, both players pooled; fit with `readout.fit_inputs`
            self.register_buffer("float_mean", torch.zeros(len(enc.floats)))
            self.register_buffer("float_std", torch.ones(len(enc.floats)))

    def forward(self, floats, ints, stage):
        if self.standard:
            floats = (floats - self.float_mean) / self.float_std
        parts = [floats] + [self.embed[n](ints[..., i]) for i, n in enumerate(self.names)]
        x = torch.cat(parts, dim=-1).flatten(-2)  # (..., 2 * player_dim)
        if self.stage is not None:
            s = self.stage(stage)
            x = torch.cat([x, s.expand(*x.shape[:-1], s.shape[-1])], dim=-1)
        return x


class FrameStackMLP(nn.Module):
    """The published MLP: one prediction per K-frame window (position W - 1 of the clip)."""

    every_position = False

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        enc = cfg.encoding
        self.encoder = FrameEncoder(cfg)
        width = enc.context * enc.frame_dim + enc.ctrl_dim
        self.trunk = nn.Sequential(
            nn.Linear(width, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.trunk),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
        )
        self.heads = Heads(cfg, cfg.trunk)

    def forward(self, floats, ints, stage, ctrl=None):
        """Context (B, K, 2, F)/(B, K, 2, I), stage (B,), ctrl (B, 1, 26) -> heads (B, 1, n)."""
        x = self.encoder(floats, ints, stage[:, None]).flatten(1)
        if ctrl is not None:
            x = torch.cat([x, ctrl[:, -1]], dim=-1)
        out = self.heads(self.trunk(x), floats[:, -1], ints[:, -1])
        return {k: v[:, None] for k, v in out.items()}

    # --- recurrent use (rollouts): the state is the last K frames ---------------------------
    def seed(self, floats, ints, stage) -> dict:
        return {"floats": floats[:, -self.cfg.encoding.context :],
                "ints": ints[:, -self.cfg.encoding.context :], "stage": stage}  # fmt: skip

    def step(self, state: dict, floats, ints) -> dict:
        return state | {"floats": torch.cat([state["floats"][:, 1:], floats[:, None]], 1),
                        "ints": torch.cat([state["ints"][:, 1:], ints[:, None]], 1)}  # fmt: skip

    def predict(self, state: dict, ctrl) -> dict:
        out = self(state["floats"], state["ints"], state["stage"], ctrl[:, None])
        return {n: v[:, 0] for n, v in out.items()}


class FrameStackMamba2(nn.Module):
    every_position = True
    scan = "auto"  # the SSD path of a full pass (`mamba2.Scan`); benchmarks set it per run

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        enc = cfg.encoding
        self.encoder = FrameEncoder(cfg)
        self.proj = nn.Linear(enc.frame_dim, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            Mamba2Layer(cfg.d_model, d_state=cfg.d_state, headdim=cfg.headdim,
                        chunk_size=cfg.chunk or None)
            for _ in range(cfg.n_layers)
        )  # fmt: skip
        self.norm = nn.RMSNorm(cfg.d_model)
        self.ctrl = nn.Linear(enc.ctrl_dim, cfg.d_model) if enc.ctrl_dim else None
        self.heads = Heads(cfg, cfg.d_model)

    def _out(self, h, ctrl, floats, ints):
        h = self.norm(h)
        if self.ctrl is not None:
            h = h + self.ctrl(ctrl)
        return self.heads(h, floats, ints)

    def forward(self, floats, ints, stage, ctrl=None, scan=None):
        """Clip (B, W, 2, F)/(B, W, 2, I), stage (B,), ctrl (B, W, 26) -> heads (B, W, n).
        `scan` (default `self.scan`, "auto": fused on CUDA with mamba_ssm) picks the SSD path."""
        x = self.drop(self.proj(self.encoder(floats, ints, stage[:, None])))
        for layer in self.layers:
            x = layer(x, scan=scan or self.scan)
        return self._out(x, ctrl, floats, ints)

    # --- recurrent use (rollouts): the state is h at the last frame, the caches and that frame
    def seed(self, floats, ints, stage, scan="auto") -> dict:
        """Run the real frames (B, K, ...) into a state cache."""
        x = self.proj(self.encoder(floats, ints, stage[:, None]))
        caches = []
        for layer in self.layers:
            x, cache = layer(x, scan=scan, return_cache=True)
            caches.append(cache)
        return {"h": x[:, -1], "caches": caches, "stage": stage,
                "floats": floats[:, -1], "ints": ints[:, -1]}  # fmt: skip

    def step(self, state: dict, floats, ints) -> dict:
        """One new frame (B, 2, F)/(B, 2, I) -> the next state."""
        x = self.proj(self.encoder(floats, ints, state["stage"]))
        new = []
        for layer, cache in zip(self.layers, state["caches"], strict=True):
            x, cache = layer.step(x, cache)
            new.append(cache)
        return state | {"h": x, "caches": new, "floats": floats, "ints": ints}

    def predict(self, state: dict, ctrl) -> dict:
        """Heads for the frame after the state's, given its controller (B, 26) -> (B, n)."""
        return self._out(state["h"], ctrl, state["floats"], state["ints"])


def build(cfg: ModelConfig) -> nn.Module:
    return FrameStackMLP(cfg) if cfg.arch == "mlp" else FrameStackMamba2(cfg)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
