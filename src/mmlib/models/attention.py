"""Causal self-attention with Shaw relative-position keys (SPEC 4.2).

Glossary: B batch, H heads, T frames (T <= max_seq_len), D head width, R table rows.

Each layer owns one table `rel` of shape (R, D), shared by its heads. Row R - 1 - d is the key
vector of distance d = i - j >= 0, so the score of frame i on frame j is

    s[i, j] = (q_i . k_j + q_i . rel[R - 1 - (i - j)]) / sqrt(D)     for j <= i, else -inf.

`relative_scores` computes the second term with the skew trick (one (T, T) matmul, a pad and a
reshape); `relative_scores_reference` gathers the table per (i, j) pair, plainly and slowly;
`relative_scores_at` takes any (query, key) distance matrix (a banded stream longer than the table,
a streaming step against cached keys). Scores and softmax run in float32 even under bf16 autocast;
`att @ v` runs in the autocast (or weight) dtype.

With `window=W`, every frame attends to itself and the W - 1 frames before it (a banded causal
mask): the computation streaming play runs with a rolling key/value cache (`models/streaming.py`).
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


def relative_scores_at(q: torch.Tensor, rel: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """q (B, H, Tq, D), rel (R, D), dist (Tq, Tk) integer distances i - j -> (B, H, Tq, Tk) with
    [i, j] = q_i . rel[R-1-dist[i, j]] (distances outside 0..R-1 are clamped: mask them)."""
    R = rel.shape[0]
    per_row = q @ rel.transpose(0, 1)  # (B, H, Tq, R): column c is distance R - 1 - c
    index = (R - 1 - dist.clamp(0, R - 1)).expand(*per_row.shape[:-1], dist.shape[-1])
    return per_row.gather(-1, index)


def band(dist: torch.Tensor, window: int | None) -> torch.Tensor:
    """Which (query, key) pairs may attend: 0 <= i - j, and i - j < window when there is one."""
    return (dist >= 0) if window is None else (dist >= 0) & (dist < window)


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

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, C) -> q, k, v, each (B, H, T, D)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)
        return tuple(
            t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v)
        )

    def forward(
        self, x: torch.Tensor, reference: bool = False, window: int | None = None
    ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C). `reference` uses the plain relative-score gather; `window`
        the banded mask (any T, as long as window <= the table's rows)."""
        T = x.shape[1]
        q, k, v = self.project(x)
        if window is None and not reference:
            return self.attend(q, k, v, relative_scores, self.causal[:T, :T])
        pos = torch.arange(T, device=x.device)
        dist = pos[:, None] - pos[None, :]
        if window is None:  # reference, plain causal
            return self.attend(q, k, v, relative_scores_reference, band(dist, None))
        return self.attend(
            q, k, v, lambda q, rel: relative_scores_at(q, rel, dist), band(dist, window)
        )

    def attend(self, q, k, v, rel_scores_fn, allowed: torch.Tensor | None) -> torch.Tensor:
        """Attention of q (B, H, Tq, D) over k, v (B, H, Tk, D) where `allowed` (Tq, Tk) holds
        (None: everywhere); `rel_scores_fn(q, rel)` gives the (B, H, Tq, Tk) relative term
        (None: already added to k, as a streaming step does). -> (B, Tq, C)."""
        B, H, Tq, D = q.shape
        with torch.autocast(q.device.type, enabled=False):
            qf, kf = q.float(), k.float()
            scores = qf @ kf.transpose(-2, -1)
            if rel_scores_fn is not None:
                scores = scores + rel_scores_fn(qf, self.rel.float())
            scores = scores / math.sqrt(D)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            att = scores.softmax(dim=-1)
        att = self.attn_drop(att)
        y = att.to(v.dtype) @ v  # (B, H, Tq, D)
        return self.resid_drop(self.out(y.transpose(1, 2).reshape(B, Tq, H * D)))
