"""The behaviour-cloning model's configuration and its presets.

`mimic` is the published MIMIC recipe (SPEC 4.1): 19,994,149 trainable parameters at 184 inputs
with the published vocabularies. `small` and `tiny` are for the smoke profile and the tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mmlib.errors import UsageError
from mmlib.features import controller


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 512  # width of the residual stream
    n_layers: int = 6  # transformer blocks
    n_heads: int = 8  # attention heads; d_model // n_heads per head
    d_ff: int = 2048  # hidden width of each block's MLP
    dropout: float = 0.2  # after the input projection, on attention weights and on residuals
    max_seq_len: int = 180  # frames of context (training window and live deque)
    rel_table: int = 1024  # rows of each layer's relative-position table (published: 1024)
    n_numeric: int = 13  # numeric columns per player (the audit's schema)
    n_flags: int = 5  # 0/1 flags per player, fed to the model as 2f - 1
    n_stages: int = 6  # stage table rows; at 6, the dense stage index is shifted down by 1
    n_characters: int = 27  # character table rows (shared by both players)
    n_actions: int = 396  # action table rows (shared by both players)
    stage_dim: int = 4
    character_dim: int = 12
    action_dim: int = 32
    hold: bool = False  # heads start from "the input holds" (ControllerHeads; not published)

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise UsageError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        if self.max_seq_len > self.rel_table:
            raise UsageError(f"max_seq_len {self.max_seq_len} exceeds rel_table {self.rel_table}")

    @property
    def n_floats(self) -> int:
        """Float inputs per frame: both players' numeric and flags, then the controller one-hot."""
        return 2 * (self.n_numeric + self.n_flags) + controller.CONTROLLER_DIM

    @property
    def n_inputs(self) -> int:
        """Width of the concatenated frame vector the input projection reads (184 for mimic)."""
        return self.stage_dim + 2 * self.character_dim + 2 * self.action_dim + self.n_floats

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Build from a dict, ignoring keys that are not fields (published configs carry many)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


PRESETS: dict[str, ModelConfig] = {
    "mimic": ModelConfig(),
    "small": ModelConfig(d_model=128, n_layers=2, n_heads=4, d_ff=512, dropout=0.1, rel_table=180),
    "small-hold": ModelConfig(
        d_model=128, n_layers=2, n_heads=4, d_ff=512, dropout=0.1, rel_table=180, hold=True
    ),
    "tiny": ModelConfig(
        d_model=32, n_layers=2, n_heads=2, d_ff=64, dropout=0.0, max_seq_len=16, rel_table=32
    ),
}


def preset(name: str, **overrides) -> ModelConfig:
    """A preset by name, with fields replaced (e.g. `max_seq_len`)."""
    if name not in PRESETS:
        raise UsageError(f"no model preset {name!r}; presets: {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)
