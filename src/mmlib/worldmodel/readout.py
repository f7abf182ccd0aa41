"""The output heads of a world model, and the priors that make its yardsticks free (issue 19).

Every head is one Linear from the trunk's hidden state. Three switches of `ModelConfig` change
what the Linear must learn, never what the model returns (a head's output is always the raw
delta, absolute or logits that `rollout.advance` and the metrics read):

- `scale`: the float heads predict their targets in units of the targets' spread on the
  training games (per column, fit once: `fit_scales`), centred on their mean, and their loss is
  taken in those units (`scales`). Without it a position delta is ~0.05 in stored units, its MSE
  ~1e-3, and the action cross-entropy (~1) decides the whole gradient. `std` is the standard
  deviation; `mad`, the mean absolute deviation, is robust to the rare huge deltas (a respawn
  moves a player ~100 units in one frame) that inflate the std until a typical frame's delta is
  ~0.01 of it.
- `residual`: x and y are predicted on top of dead reckoning from the frame the prediction
  starts from (`yardsticks`): the head learns only what the last velocity does not explain.
- `hold`: each categorical head adds a learned bonus (one scalar per head, starting at `HOLD`)
  to the logit of the class the player is in now, so "nothing changes" is where it starts; and
  the stock count is predicted as a change from the present count, in units of one stock
  (`STOCK_UNIT`). Regressed as an absolute number from the hidden state, the published way, the
  count missed by more than half a stock on 37 % of the smoke Mamba-2's validation frames
  (issue 27), so a one-frame rollout lost or gained stocks in half its starts.

With all three off, the heads are the published ones (the parameter counts are tested).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmlib.worldmodel import encoding, yardsticks
from mmlib.worldmodel.encoding import GUARD, VOCAB

FLOAT_TARGETS = ("continuous", "velocity", "dynamics")  # regression heads (MSE)
HOLD = 5.0  # the hold bonus's start: the current class wins unless a logit differs by 5 nats
STOCK_UNIT = encoding.SCALE["stocks"]  # under `hold`: one stock (the spread of its changes is ~0)
MIN_STD = 1e-3  # a column that barely varies is not blown up (stored units)


class Heads(nn.Module):
    def __init__(self, cfg, width: int):
        super().__init__()
        self.cfg = cfg
        sizes = cfg.head_sizes()
        self.out = nn.ModuleDict({n: nn.Linear(width, k) for n, k in sizes.items()})
        cols = cfg.encoding.head_columns(cfg.owns)
        self.columns = {n: cols[n] for n in sizes}  # each head's columns of the full head
        if cfg.scale != "none":
            for n in FLOAT_TARGETS:
                if n in sizes:
                    self.register_buffer(f"{n}_mean", torch.zeros(sizes[n]))
                    self.register_buffer(f"{n}_std", torch.ones(sizes[n]))
        self.categorical = [n for n in sizes if n not in (*FLOAT_TARGETS, "binary")]
        if cfg.hold and self.categorical:
            self.hold = nn.Parameter(torch.full((len(self.categorical),), HOLD))
        self.stock_columns = _stock_columns(cfg) if cfg.hold else []

    def forward(self, h, floats, ints):
        """h (..., width), and the frame each prediction starts from: floats (..., 2, F), ints
        (..., 2, I) -> head -> (..., size) raw outputs."""
        out = {name: layer(h) for name, layer in self.out.items()}
        if self.cfg.scale != "none":
            for n in FLOAT_TARGETS:
                if n in out:
                    out[n] = out[n] * getattr(self, f"{n}_std") + getattr(self, f"{n}_mean")
        if self.cfg.residual and "continuous" in out:
            out["continuous"] = out["continuous"] + self.reckoned(floats)
        if self.cfg.hold:
            for k, n in enumerate(self.categorical):
                out[n] = out[n] + self.hold[k] * self.current(n, ints, out[n].dtype)
            if self.stock_columns:
                out["dynamics"] = out["dynamics"] + self.held_stocks(floats)
        return out

    def held_stocks(self, floats):
        """What `hold` adds to the dynamics head: each player's present stock count (stored
        units) in its stock column, 0 in the others. floats (..., 2, F) -> (..., n columns)."""
        k = self.cfg.encoding.fi("stocks")
        out = floats.new_zeros(*floats.shape[:-2], len(self.columns["dynamics"]))
        for p, j in enumerate(self.stock_columns):
            out[..., j] = floats[..., p, k]
        return out

    def reckoned(self, floats):
        """Dead reckoning's continuous deltas from these frames, in this head's columns."""
        enc = self.cfg.encoding
        full = yardsticks.continuous_delta(*yardsticks.frame_columns(enc, floats))
        cols = self.columns["continuous"]
        return full if cols is None else full[..., cols]

    def current(self, name: str, ints, dtype):
        """One-hot of each player's present class of a categorical head (..., 2 * vocab)."""
        enc = self.cfg.encoding
        if name == "guard":
            now = GUARD.to(ints.device)[ints[..., enc.ii("action")].long()]
            vocab = len(encoding.GUARD_STATES)
        else:
            now, vocab = ints[..., enc.ii(name)].long(), VOCAB[name][0]
        return F.one_hot(now, vocab).to(dtype).flatten(-2)

    def scales(self) -> dict[str, torch.Tensor]:
        """Each scaled head's unit: its loss is taken in these units (none without `scale`)."""
        if self.cfg.scale == "none":
            return {}
        return {n: getattr(self, f"{n}_std") for n in FLOAT_TARGETS if n in self.out}

    @torch.no_grad()
    def set_scales(self, mean: dict[str, torch.Tensor], std: dict[str, torch.Tensor]) -> None:
        for n in self.scales():
            getattr(self, f"{n}_mean").copy_(mean[n])
            getattr(self, f"{n}_std").copy_(std[n].clamp(min=MIN_STD))


def _full_stock_columns(enc) -> list[int]:
    """Both players' stock columns in the full dynamics head (none under v1)."""
    if "stocks" not in enc.dynamics:
        return []
    return [p * len(enc.dynamics) + enc.dynamics.index("stocks") for p in (0, 1)]


def _stock_columns(model_cfg) -> list[int]:
    """Where the stock columns sit in this model's dynamics head (none: it has no stocks)."""
    cols = model_cfg.encoding.head_columns(model_cfg.owns).get("dynamics") or []
    stocks = _full_stock_columns(model_cfg.encoding)
    return [j for j, c in enumerate(cols) if c in stocks]


def fit_scales(model_cfg, frames) -> tuple[dict, dict]:
    """Mean and unit (`model_cfg.scale`: std or mean absolute deviation) of each float head's
    target on the training frames, in two passes game by game (float64 sums: memory is one
    game): what the head must predict, so under `residual` the x and y columns are the part
    dead reckoning misses."""
    heads = [n for n in FLOAT_TARGETS if n in model_cfg.head_sizes()]
    if not heads:  # a subsystem model may own no float head (action transitions)
        return {}, {}
    cols = model_cfg.encoding.head_columns(model_cfg.owns)

    def targets():
        enc = frames.cfg
        for g in range(len(frames.md5s)):
            game = frames.game(g)
            f, i, _ = game.clip(np.zeros(1, dtype=np.int64), game.n_frames - enc.lead)
            tgt = encoding.targets(enc, f, i)
            if model_cfg.residual:
                reckoned = yardsticks.continuous_delta(tgt["prev_velocity"], tgt["prev_binary"])
                tgt["continuous"] = tgt["continuous"] - reckoned
            if model_cfg.hold and "dynamics" in heads:  # the change of the stock count
                stocks = _full_stock_columns(enc)
                tgt["dynamics"][..., stocks] -= tgt["prev_dynamics"][..., stocks]
            out = {}
            for n in heads:
                y = tgt[n].flatten(0, 1).double()
                out[n] = y if cols[n] is None else y[:, cols[n]]
            yield out

    count, sums = 0, {n: 0.0 for n in heads}
    for y in targets():
        count += len(y[heads[0]])
        for n in heads:
            sums[n] = sums[n] + y[n].sum(0)
    mean = {n: sums[n] / count for n in heads}
    spread = {n: 0.0 for n in heads}
    for y in targets():
        for n in heads:
            d = y[n] - mean[n]
            spread[n] = spread[n] + (d * d if model_cfg.scale == "std" else d.abs()).sum(0)
    unit = {n: spread[n] / count for n in heads}
    if model_cfg.scale == "std":
        unit = {n: v.sqrt() for n, v in unit.items()}
    if model_cfg.hold and "dynamics" in heads:
        for j in _stock_columns(model_cfg):  # a death is one stock, not ~1000 spreads
            mean["dynamics"][j], unit["dynamics"][j] = 0.0, STOCK_UNIT
    return {n: v.float() for n, v in mean.items()}, {n: v.float() for n, v in unit.items()}


def fit_inputs(frames) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (floored at MIN_STD) of each float input column over every frame and both
    players of `frames`, game by game (float64 sums)."""
    count, total, square = 0, 0.0, 0.0
    for g in range(len(frames.md5s)):
        x = torch.tensor(np.asarray(frames.game(g).floats), dtype=torch.float64).flatten(0, 1)
        count += len(x)
        total = total + x.sum(0)
        square = square + (x * x).sum(0)
    mean = total / count
    std = (square / count - mean**2).clamp(min=0).sqrt().clamp(min=MIN_STD)
    return mean.float(), std.float()
