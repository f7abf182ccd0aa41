"""Causal self-attention with Shaw relative-position keys (SPEC 4.2).

Glossary: B batch, H heads, T frames (T <= max_seq_len), D head width, R table rows.

Each layer owns one table `rel` of shape (R, D), shared by its heads. Row R - 1 - d is the key
vector of distance d = i - j >= 0, so the score of frame i on frame j is

    s[i, j] = (q_i . k_j + q_i . rel[R - 1 - (i - j)]) / sqrt(D)     for j <= i, else -inf.

`relative_scores` computes the second term with the skew trick (one (T, T) matmul, a pad and a
reshape); `relative_scores_reference` gathers the table per (i, j) pair, plainly and slowly.
Scores and softmax run in float32 even under bf16 autocast; `att @ v` runs in the autocast dtype.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def relative_scores(q: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
    """q (B, H, T, D), rel (R, D) -> (B, H, T, T) with [i, j] = q_i . rel[R-1-(i-j)] for j <= i
    (entries above the diagonal are meaningless: the causal mask removes them)."""
    T = q.shape[-2]
    qe = q @ rel[-T:].transpose(0, 1)  # (B, H, T, T): column c is distance T - 1 - c
    # Skew: pad one zero column on the left, view as (T + 1, T), drop the first row. Row i of the
    # result is row i of qe shifted right by T - 1 - i, so column j lands on distance i - j.
    qe = F.pad(qe, (1, 0))
    return qe.reshape(*qe.shape[:-2], T + 1, T)[..., 1:, :]


def relative_scores_reference(q: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
    """The same as `relative_scores`, by gathering one table row per (i, j) pair (zero above
    the diagonal)."""
    T, R = q.shape[-2], rel.shape[0]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    rows = rel[(R - 1 - (i - j)).clamp(0, R - 1)]  # (T, T, D)
    scores = torch.einsum("bhid,ijd->bhij", q, rows)
    return scores.masked_fill(j > i, 0.0)


class RelPosSelfAttention(nn.Module):
    def __init__(
        self, d_model: int, n_heads: int, rel_table: int, max_seq_len: int, dropout: float
    ):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)  # q, k, v in that order
        self.out = nn.Linear(d_model, d_model)
        self.rel = nn.Parameter(torch.randn(rel_table, d_model // n_heads))
        self.attn_drop = nn.Dropout(dropout)
        self.resid_drop = nn.Dropout(dropout)
        causal = torch.ones(max_seq_len, max_seq_len, dtype=torch.bool).tril()
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, x: torch.Tensor, reference: bool = False) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C). `reference` uses the plain relative-score gather."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))
        with torch.autocast(x.device.type, enabled=False):
            qf, kf, rel = q.float(), k.float(), self.rel.float()
            rel_scores = (relative_scores_reference if reference else relative_scores)(qf, rel)
            scores = (qf @ kf.transpose(-2, -1) + rel_scores) / math.sqrt(q.shape[-1])
            scores = scores.masked_fill(~self.causal[:T, :T], float("-inf"))
            att = scores.softmax(dim=-1)
        att = self.attn_drop(att)
        y = att.to(v.dtype) @ v  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_drop(self.out(y))
