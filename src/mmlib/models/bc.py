"""The behaviour-cloning transformer (SPEC 4.1-4.5): frame encoder -> pre-norm blocks with
relative-position causal attention -> LayerNorm -> four autoregressive controller heads.

Glossary: B batch, T frames, C d_model. Inputs are a shard's rows: `ints` (B, T, 5) dense indices
(stage, self/opp character, self/opp action) and `floats` (B, T, F) = self numeric | self flags |
opp numeric | opp flags | previous-controller one-hot (56). Every frame predicts the next
frame's controller, so `targets` (B, T, 4) hold shoulder, c-stick, main stick and button classes.

Not done here: the published optional input gate, RoPE and other `pos_enc` variants, legacy
(non-mimic) heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.features import controller
from mmlib.models.attention import RelPosSelfAttention
from mmlib.models.config import ModelConfig

HEADS = (  # (name, classes) in prediction order; each head sees the logits of those before it
    ("shoulder", controller.N_SHOULDER),
    ("c", controller.N_C),
    ("main", controller.N_MAIN),
    ("button", controller.N_BUTTON),
)


class FrameEncoder(nn.Module):
    """(ints, floats) -> (B, T, C): embeddings and floats concatenated in the published order,
    flags mapped to +-1, then one linear projection and dropout."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.stage = nn.Embedding(cfg.n_stages, cfg.stage_dim)
        self.character = nn.Embedding(cfg.n_characters, cfg.character_dim)
        self.action = nn.Embedding(cfg.n_actions, cfg.action_dim)
        self.proj = nn.Linear(cfg.n_inputs, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        flag = torch.zeros(cfg.n_floats, dtype=torch.bool)
        per_player = cfg.n_numeric + cfg.n_flags
        for start in (cfg.n_numeric, per_player + cfg.n_numeric):
            flag[start : start + cfg.n_flags] = True
        self.register_buffer("flag", flag, persistent=False)

    def forward(self, ints: torch.Tensor, floats: torch.Tensor) -> torch.Tensor:
        ints = ints.long()
        stage = ints[..., 0]
        if self.cfg.n_stages == 6:  # the published table has no NO_STAGE row: FD is row 0
            stage = (stage - 1).clamp(min=0)
        floats = torch.where(self.flag, 2 * floats - 1, floats).to(self.stage.weight.dtype)
        x = torch.cat(
            [
                self.stage(stage),
                self.character(ints[..., 1]),
                self.character(ints[..., 2]),
                self.action(ints[..., 3]),
                self.action(ints[..., 4]),
                floats,
            ],
            dim=-1,
        )  # (B, T, n_inputs)
        return self.drop(self.proj(x))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ff)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-norm: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm_attn = nn.LayerNorm(cfg.d_model)
        self.attn = RelPosSelfAttention(
            cfg.d_model, cfg.n_heads, cfg.rel_table, cfg.max_seq_len, cfg.dropout
        )
        self.norm_mlp = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(
        self, x: torch.Tensor, reference: bool = False, window: int | None = None
    ) -> torch.Tensor:
        x = x + self.attn(self.norm_attn(x), reference, window)
        return x + self.mlp(self.norm_mlp(x))


class Head(nn.Module):
    """LayerNorm -> Linear(n, n // 2) -> GELU -> Linear(n // 2, classes)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.norm = nn.LayerNorm(n_in)
        self.hidden = nn.Linear(n_in, n_in // 2)
        self.out = nn.Linear(n_in // 2, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.hidden(self.norm(x))))


# Where each head's class of the current controller sits in the one-hot that ends `floats`.
ONE_HOT = dict(zip(("main", "c", "button", "shoulder"), controller.OFFSETS, strict=True))
HOLD = 3.0  # the hold bonus's start (nats): the current class wins unless a logit is 3 higher


class ControllerHeads(nn.ModuleDict):
    """Shoulder -> c-stick -> main stick -> buttons, each fed the hidden state and the detached
    raw logits of all earlier heads (no teacher forcing, no sampling).

    With `hold` (not in the published model), each head adds a learned bonus (one scalar per
    head, starting at HOLD) to the logit of the class the controller is in now, read off the
    input's one-hot: holding the input, right on about 80-99 % of frames, is where a head starts,
    and it learns when to change."""

    def __init__(self, d_model: int, hold: bool = False):
        super().__init__()
        n_in = d_model
        for name, classes in HEADS:
            self[name] = Head(n_in, classes)
            n_in += classes
        self.hold = nn.Parameter(torch.full((len(HEADS),), HOLD)) if hold else None

    def forward(self, h: torch.Tensor, floats: torch.Tensor) -> dict[str, torch.Tensor]:
        """h (B, T, C), floats (B, T, F) (the current controller's one-hot ends it)."""
        logits, x = {}, h
        current = floats[..., -controller.CONTROLLER_DIM :]
        for k, (name, classes) in enumerate(HEADS):
            logits[name] = self[name](x)
            if self.hold is not None:
                now = current[..., ONE_HOT[name] : ONE_HOT[name] + classes]
                logits[name] = logits[name] + self.hold[k] * now.to(logits[name].dtype)
            x = torch.cat([x, logits[name].detach()], dim=-1)
        return logits


class BCTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = FrameEncoder(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm_out = nn.LayerNorm(cfg.d_model)
        self.heads = ControllerHeads(cfg.d_model, cfg.hold)
        self.apply(self._init)
        for block in self.blocks:  # residual projections scaled down by depth (GPT-2 style)
            for w in (block.attn.out.weight, block.mlp.down.weight):
                nn.init.normal_(w, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        # LayerNorm keeps (1, 0); the relative tables keep their N(0, 1) draw

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        ints: torch.Tensor,
        floats: torch.Tensor,
        targets: torch.Tensor | None = None,
        reference: bool = False,
        window: int | None = None,
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        """ints (B, T, 5), floats (B, T, F), targets (B, T, 4) or None ->
        (logits {head: (B, T, classes)}, losses {head: (), "total": ()} or None).

        `window=W`: each frame attends to itself and the W - 1 before it, at every layer (the
        banded mask of streaming play); T may then exceed max_seq_len. None: plain causal,
        T <= max_seq_len."""
        if window is not None and not 0 < window <= self.cfg.rel_table:
            raise ValueError(f"window {window} must be in 1..{self.cfg.rel_table} (rel_table)")
        x = self.encoder(ints, floats)
        for block in self.blocks:
            x = block(x, reference, window)
        logits = self.heads(self.norm_out(x), floats)
        return logits, (None if targets is None else losses(logits, targets))


def losses(logits: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean cross-entropy per head in float32 (no smoothing, no weights) and their sum."""
    out = {
        name: F.cross_entropy(logits[name].flatten(0, -2).float(), targets[..., i].flatten().long())
        for i, (name, _) in enumerate(HEADS)
    }
    out["total"] = sum(out.values())
    return out
