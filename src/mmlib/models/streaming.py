"""Streaming inference: the BC transformer one frame at a time, with a rolling key/value cache.

mmlib defines play as sliding-window attention: at every layer each frame attends to itself and
the `window - 1` frames before it (`BCTransformer.forward(..., window=window)`). Relative positions
depend only on distance, so a layer needs nothing of a frame older than the window, and each layer
keeps the keys and values of its last `window - 1` frames. A step is then exactly the banded
forward over the whole stream, and while the window is still filling it is exactly the published
fixed-window recompute; once the window slides, deeper layers hold keys computed while older
frames were visible, so it drifts from the recompute (measured in `mmlib.play.drift`).

Glossary: B batch, H heads, D head width, W window, n new frames, m cached frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mmlib.models.attention import band, relative_scores_at
from mmlib.models.bc import BCTransformer


class KVCache:
    """Every layer's keys and values of the last `window - 1` frames.

    They live in a buffer 2W long: a step writes its frame in place, and only when the buffer is
    full do the kept frames move back to its start (one copy every ~W frames, not every frame).
    Frames [end - length, end) of the buffer are the cache.
    """

    def __init__(self, n_layers: int, window: int):
        self.n_layers, self.keep, self.capacity = n_layers, window - 1, 2 * window
        self.kv: torch.Tensor | None = None  # (2, layers, B, H, capacity, D), made on first use
        self.k: torch.Tensor | None = None  # kv[0], keys
        self.v: torch.Tensor | None = None  # kv[1], values
        self.end = self.length = 0

    def view(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached keys and values of one layer, (B, H, m, D) each, oldest first."""
        span = slice(self.end - self.length, self.end)
        return self.k[layer, :, :, span], self.v[layer, :, :, span]

    def make_room(self, like: torch.Tensor, n: int) -> None:
        """Before appending `n` frames: allocate on first use, or move the kept frames back."""
        if self.kv is None:
            B, H, _, D = like.shape
            shape = (2, self.n_layers, B, H, self.capacity, D)
            self.kv = torch.zeros(shape, dtype=like.dtype, device=like.device)
            self.k, self.v = self.kv
        if self.end + n > self.capacity:
            old = slice(self.end - self.length, self.end)
            self.k[:, :, :, : self.length] = self.k[:, :, :, old].clone()
            self.v[:, :, :, : self.length] = self.v[:, :, :, old].clone()
            self.end = self.length

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store one layer's new keys and values (B, H, n, D) after the cached ones."""
        n = k.shape[2]
        if n == 1:  # the per-frame path: room was made beforehand
            self.k[layer, :, :, self.end], self.v[layer, :, :, self.end] = k[:, :, 0], v[:, :, 0]
            return
        keep = min(n, self.keep)
        k_old, v_old = self.view(layer)
        k_all, v_all = (
            torch.cat([k_old, k[:, :, -keep:]], 2),
            torch.cat([v_old, v[:, :, -keep:]], 2),
        )
        start = max(0, k_all.shape[2] - self.keep)
        self.k[layer, :, :, : k_all.shape[2] - start] = k_all[:, :, start:]
        self.v[layer, :, :, : v_all.shape[2] - start] = v_all[:, :, start:]

    def advance(self, n: int) -> None:
        """After every layer has written `n` frames."""
        if n == 1:
            self.end += 1
            self.length = min(self.length + 1, self.keep)
        else:
            self.length = min(self.length + n, self.keep)
            self.end = self.length


class Stream:
    """One stream of frames (batch B) through a model, a frame (or a block of frames) at a time.

    `extend(ints, floats)` with the next n frames returns their logits, as
    `model(all frames so far, window=window)` would give them at those positions.
    """

    def __init__(self, model: BCTransformer, window: int | None = None):
        self.model = model
        self.window = window or model.cfg.max_seq_len
        if not 0 < self.window <= model.cfg.rel_table:
            raise ValueError(f"window {self.window} must be in 1..{model.cfg.rel_table}")
        self.cache = KVCache(model.cfg.n_layers, self.window)
        self.frames = 0  # frames seen so far

    @torch.inference_mode()
    def extend(self, ints: torch.Tensor, floats: torch.Tensor) -> dict[str, torch.Tensor]:
        """ints (B, n, 5), floats (B, n, F) -> logits {head: (B, n, classes)}."""
        model, cache = self.model, self.cache
        x = model.encoder(ints, floats)
        n = x.shape[1]
        if n == 1 and not model.training:
            x = self._step(x)
        else:
            x = self._block(x)
        cache.advance(n)
        self.frames += n
        return model.heads(model.norm_out(x), floats)

    def _block(self, x: torch.Tensor) -> torch.Tensor:
        """n new frames x (B, n, C) through every layer, as the banded forward computes them."""
        model, cache = self.model, self.cache
        n = x.shape[1]
        for i, block in enumerate(model.blocks):
            attn = block.attn
            q, k, v = attn.project(block.norm_attn(x))
            if i == 0:
                cache.make_room(k, n)
            k_old, v_old = cache.view(i)
            m = k_old.shape[2]
            k_all, v_all = torch.cat([k_old, k], 2), torch.cat([v_old, v], 2)
            pos = torch.arange(m + n, device=x.device)
            dist = pos[m:, None] - pos[None, :]  # (n, m + n)
            rel_fn = lambda q, rel, dist=dist: relative_scores_at(q, rel, dist)  # noqa: E731
            y = attn.attend(q, k_all, v_all, rel_fn, band(dist, self.window))
            cache.write(i, k, v)
            x = x + y
            x = x + block.mlp(block.norm_mlp(x))
        return x

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        """One new frame x (B, 1, C) in eval mode: the same sums as `_block` in fewer ops (at
        batch 1, per-op overhead is a large part of a frame's cost). The frame's query sees the
        m cached keys and its own, at distances m .. 0: scores = q . k + q . rel[-1 - m:], the
        second one matmul per layer shared by the heads; scores and softmax in float32. Agrees
        with `_block` and the banded forward to float rounding (tests/test_play_policy.py)."""
        model, cache = self.model, self.cache
        B, _, C = x.shape
        H = model.cfg.n_heads
        D, BH = C // H, B * H
        inv_scale = 1 / math.sqrt(D)
        cache.make_room(x.view(B, H, 1, D), 1)
        end, m = cache.end, cache.length
        new = cache.kv[:, :, :, :, end]  # (2, layers, B, H, D): this frame's k and v
        keys = cache.k.narrow(3, end - m, m + 1)  # (layers, B, H, m + 1, D), the frame last
        values = cache.v.narrow(3, end - m, m + 1)
        for i, block in enumerate(model.blocks):
            attn, mlp, norm = block.attn, block.mlp, block.norm_attn
            h = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
            qkv = attn.qkv(h).view(B, 3, H, D)
            new[:, i] = qkv[:, 1:].transpose(0, 1)
            k, v = keys[i].view(BH, m + 1, D), values[i].view(BH, m + 1, D)
            q = qkv[:, 0].reshape(BH, D).float()
            rel = torch.mm(q, attn.rel[-1 - m :].float().t()).view(BH, 1, m + 1)
            # (q . rel + q . k) / sqrt(D), the scale applied by baddbmm
            q = q.view(BH, 1, D)
            scores = torch.baddbmm(
                rel, q, k.float().transpose(1, 2), beta=inv_scale, alpha=inv_scale
            )
            y = torch.bmm(scores.softmax(-1).to(v.dtype), v)  # (B H, 1, D)
            x = x + attn.out(y.view(B, 1, C))
            norm = block.norm_mlp
            h = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
            x = x + mlp.down(F.gelu(mlp.up(h)))
        return x
