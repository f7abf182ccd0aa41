"""A Mamba-2 layer in pure PyTorch, the sequence mixer of the world model (SPEC 6.3.2).

Per frame the block projects its input to a gate z, a channel block xBC and one step size per
head; xBC goes through a causal depthwise conv and SiLU and splits into x (nheads x headdim), B and
C (d_state each, shared by all heads). Each head h runs the selective state-space recurrence

    state_t = exp(A_h dt_t) state_{t-1} + dt_t x_t B_t^T        (headdim x d_state)
    y_t     = state_t C_t + D_h x_t

and the output is out_proj(RMSNorm(y * silu(z))). `Mamba2Layer` wraps the block in a pre-norm
residual.

The same layer is computed three ways, which agree to float32 rounding:

- "sequential": a Python loop over time, the reference.
- "chunked": the SSD algorithm. Within a chunk the recurrence is unrolled into an attention-like
  quadratic form, (C_i . B_j) exp(A dt_{j+1} + ... + A dt_i) dt_j x_j for j <= i; across chunks
  only each chunk's final state is passed on. Batched matrix products instead of L small steps.
  "fused" runs the same SSM part through mamba_ssm's Triton kernel when it is installed and the
  input is on CUDA.
- `step`: one frame from a cache (the conv's last inputs and the SSM state). The published world
  model re-ran its whole K-frame window for every frame of a rollout; a recurrent layer carries
  everything it needs from the past in a fixed-size state, so a rollout step costs O(1) in the
  history length. Seed the cache with one chunked `forward(..., return_cache=True)` over the real
  frames, then `step`.

Glossary: b batch, l time, c chunks, t / i / j times within a chunk, h heads, p headdim,
n d_state.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined

    HAS_MAMBA_SSM = True
except ImportError:  # CPU machines: the pure-PyTorch paths only
    mamba_chunk_scan_combined = None
    HAS_MAMBA_SSM = False

Scan = Literal["auto", "sequential", "chunked", "fused"]


class Mamba2Cache(NamedTuple):
    """What a block carries from one frame to the next.

    Both tensors are stored as permuted views, for `step`: `ssm` as a contiguous (b, d_state,
    nheads, headdim), so reading the state out is one vector-matrix product per row (on CPU about
    3x faster than the matrix-vector product of the plain layout); `conv` as a contiguous
    (b, d_conv - 1, channels), so the conv's arithmetic runs along channels rather than along a
    window of 3. Other layouts are accepted and copied once.
    """

    conv: Tensor  # (b, channels, d_conv - 1): the last xBC inputs of the conv, oldest first
    ssm: Tensor  # (b, nheads, headdim, d_state)

    def rows(self, index: Tensor | slice | int | list[int]) -> Mamba2Cache:
        """The cache of some batch rows (e.g. the rollouts still running); copies for an index
        tensor or list, views for a slice."""
        return Mamba2Cache(self.conv[index], self.ssm[index])

    def clone(self) -> Mamba2Cache:
        """A copy, to branch rollouts from one cache while stepping in place."""
        return Mamba2Cache(self.conv.clone(), self.ssm.clone())  # clone keeps the layout


def segsum(a: Tensor) -> Tensor:
    """(..., T) -> (..., T, T): out[..., i, j] = a[..., j+1] + ... + a[..., i] for i >= j (0 on the
    diagonal), -inf for i < j, so exp(segsum(A dt)) is the causal decay from step j to step i.

    Masked cumulative sums rather than a difference of two cumulative sums: no cancellation
    between large partial sums.
    """
    T = a.shape[-1]
    rows = a.unsqueeze(-1).expand(*a.shape, T)  # rows[..., i, j] = a[..., i]
    ones = torch.ones(T, T, dtype=torch.bool, device=a.device)
    out = rows.masked_fill(~ones.tril(-1), 0).cumsum(-2)
    return out.masked_fill(~ones.tril(), -torch.inf)


# The scans below hold the SSM state as S (b, n, h, p), contiguous: the cache's layout. Without
# autograd they own their state and update it in place: at batch 64, d_model 256 a state is 8 MB,
# and a fresh one per step costs more in page faults than the arithmetic.


def _advance(S: Tensor, decay: Tensor, B: Tensor, xdt: Tensor, inplace: bool) -> Tensor:
    """S * decay + B^T xdt, over k frames at once: S (b, n, h, p), decay (b, 1, h, 1),
    B (b, k, n), xdt (b, k, h * p), the frames' dt x already weighted by their decay to the end."""
    b, n, h, p = S.shape
    S = S.mul_(decay) if inplace else S * decay
    S.view(b, n, h * p).baddbmm_(B.transpose(1, 2), xdt)
    return S


def _read(S: Tensor, C: Tensor) -> Tensor:
    """C S: S (b, n, h, p), C (b, k, n) -> (b, k, h, p)."""
    b, n, h, p = S.shape
    return torch.bmm(C, S.view(b, n, h * p)).view(b, -1, h, p)


def ssm_step(
    S: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, inplace: bool = False
) -> tuple[Tensor, Tensor]:
    """One step of the recurrence without the D term: S (b, n, h, p) contiguous, x (b, h, p),
    dt (b, h), A (h), B and C (b, n) -> y (b, h, p), new S (S itself when inplace)."""
    b, h, p = x.shape
    decay = torch.exp(dt * A)[:, None, :, None]
    S = _advance(S, decay, B.unsqueeze(1), (x * dt.unsqueeze(-1)).view(b, 1, h * p), inplace)
    return _read(S, C.unsqueeze(1)).view(b, h, p), S


def _owned(S: Tensor, inplace: bool) -> Tensor:
    """A given starting state as the scans need it: contiguous, and a copy if it is to be updated
    in place."""
    return S.clone(memory_format=torch.contiguous_format) if inplace else S.contiguous()


def scan_sequential(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, S: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The reference, a loop over frames: x (b, l, h, p), dt (b, l, h), A (h), B and C (b, l, n),
    S (b, n, h, p) or None for zeros -> y (b, l, h, p) without the D term, final S. The given S
    is left as it was."""
    b, L, h, p = x.shape
    inplace = not torch.is_grad_enabled()
    S = x.new_zeros(b, B.shape[-1], h, p) if S is None else _owned(S, inplace)
    # Frame-major copies, so that each frame's operands are contiguous matrices.
    decay = torch.exp(dt * A).transpose(0, 1)[:, :, None, :, None]  # (l, b, 1, h, 1)
    xdt = (x * dt.unsqueeze(-1)).reshape(b, L, 1, h * p).transpose(0, 1).contiguous()
    B = B.unsqueeze(2).transpose(0, 1).contiguous()  # (l, b, 1, n)
    C = C.unsqueeze(2).transpose(0, 1).contiguous()
    ys = []
    for t in range(L):
        S = _advance(S, decay[t], B[t], xdt[t], inplace)
        ys.append(_read(S, C[t]))
    return torch.cat(ys, 1), S


def scan_chunked(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk: int,
    S: Tensor | None = None,
    final_state: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """The SSD chunked scan; same arguments and result as `scan_sequential`, but the final state
    is None when not asked for (it costs a state update per row)."""
    b, L, h, p = x.shape
    n = B.shape[-1]
    pad = -L % chunk
    if pad:
        # Causal: appended frames cannot reach earlier outputs, and with dt = 0 they neither decay
        # nor add to the state, so the outputs and the final state are exact.
        x, dt, B, C = (F.pad(v, (0, 0) * (v.dim() - 2) + (0, pad)) for v in (x, dt, B, C))
    c = (L + pad) // chunk
    x = x.reshape(b, c, chunk, h, p)
    dt = dt.reshape(b, c, chunk, h)
    B = B.reshape(b, c, chunk, n)
    C = C.reshape(b, c, chunk, n)

    a = (dt * A).permute(0, 3, 1, 2)  # (b, h, c, t): log decay per frame
    a_cum = a.cumsum(-1)

    # Within chunks: y_i = sum_{j <= i} (C_i . B_j) exp(a_{j+1} + ... + a_i) dt_j x_j, with dt_j in
    # the (t x t) weights rather than in x.
    CB = torch.einsum("bcin,bcjn->bcij", C, B).unsqueeze(1)  # shared by the heads
    weights = CB * torch.exp(segsum(a)) * dt.permute(0, 3, 1, 2).unsqueeze(-2)
    y = torch.einsum("bhcij,bcjhp->bcihp", weights, x)

    # Across chunks, a loop over chunks (not frames): chunk k reads the state entering it, decayed
    # to frame i by exp(a_1 + ... + a_i), then passes on that state decayed over the chunk plus its
    # own frames, sum_j exp(a_{j+1} + ... + a_T) B_j (dt_j x_j)^T.
    from_start = torch.exp(a_cum).permute(0, 2, 3, 1).unsqueeze(-1)  # (b, c, t, h, 1)
    to_end = torch.exp(a_cum[..., -1:] - a_cum).permute(0, 2, 3, 1)  # (b, c, t, h)
    xw = (x * (dt * to_end).unsqueeze(-1)).reshape(b, c, chunk, h * p)
    chunk_decay = torch.exp(a_cum[..., -1]).permute(0, 2, 1)[:, :, None, :, None]  # (b, c, 1, h, 1)
    inplace = not torch.is_grad_enabled()
    if S is not None:
        S = _owned(S, inplace)
    for k in range(c):
        if S is not None:  # None: a zero state enters the first chunk
            y[:, k] += _read(S, C[:, k]) * from_start[:, k]
        if k == c - 1 and not final_state:
            S = None
        elif S is None:
            S = torch.bmm(B[:, k].transpose(1, 2), xw[:, k]).view(b, n, h, p)
        else:
            S = _advance(S, chunk_decay[:, k], B[:, k], xw[:, k], inplace)
    return y.reshape(b, c * chunk, h, p)[:, :L], S


def scan_fused(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk: int,
    S: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """mamba_ssm's Triton SSD kernel (CUDA); same arguments and result as `scan_chunked`."""
    if not HAS_MAMBA_SSM:
        raise RuntimeError('scan="fused" needs mamba_ssm (pip install ".[cuda]" on a CUDA machine)')
    if not x.is_cuda:
        raise RuntimeError('scan="fused" needs the input on CUDA')
    y, final = mamba_chunk_scan_combined(
        x.contiguous(),
        dt.contiguous(),
        A,
        B.unsqueeze(2).contiguous(),  # one group shared by all heads
        C.unsqueeze(2).contiguous(),
        chunk,
        initial_states=None if S is None else S.permute(0, 2, 3, 1).contiguous(),
        return_final_states=True,
    )
    return y, final.permute(0, 3, 1, 2).contiguous()


class Mamba2Block(nn.Module):
    """The Mamba-2 mixer: (b, l, d_model) -> (b, l, d_model), no residual.

    chunk_size: frames per chunk of the chunked scan, which becomes the default when it is set;
    None means the sequential loop by default, and one chunk over the whole sequence when the
    chunked or fused scan is asked for.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        headdim: int = 64,
        expand: int = 2,
        d_conv: int = 4,
        chunk_size: int | None = None,
    ):
        super().__init__()
        d_inner = expand * d_model
        if d_inner % headdim:
            raise ValueError(f"expand * d_model = {d_inner} is not a multiple of headdim {headdim}")
        if d_conv < 2:
            raise ValueError(f"d_conv must be at least 2, got {d_conv}")
        self.d_model, self.d_state, self.headdim, self.d_conv = d_model, d_state, headdim, d_conv
        self.d_inner, self.nheads, self.chunk_size = d_inner, d_inner // headdim, chunk_size
        self.channels = d_inner + 2 * d_state  # xBC

        self.in_proj = nn.Linear(d_model, d_inner + self.channels + self.nheads, bias=False)
        self.conv1d = nn.Conv1d(
            self.channels,
            self.channels,
            kernel_size=d_conv,
            groups=self.channels,
            padding=d_conv - 1,
            bias=True,
        )
        self.dt_bias = nn.Parameter(torch.empty(self.nheads).uniform_(-1, 1))
        self.A_log = nn.Parameter(torch.linspace(1, self.nheads, self.nheads).log())
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = nn.RMSNorm(d_inner, eps=1e-5)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def init_cache(
        self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Mamba2Cache:
        """Zeros: the cache before the first frame (device and dtype default to the weights')."""
        w = self.in_proj.weight
        kw = {"device": device or w.device, "dtype": dtype or w.dtype}
        return Mamba2Cache(
            conv=torch.zeros(batch, self.d_conv - 1, self.channels, **kw).transpose(1, 2),
            ssm=torch.zeros(batch, self.d_state, self.nheads, self.headdim, **kw).permute(
                0, 2, 3, 1
            ),
        )

    def resolve_scan(self, scan: Scan, u: Tensor) -> str:
        """The path "auto" stands for: fused on CUDA with mamba_ssm, else chunked when
        chunk_size is set, else sequential."""
        if scan in ("sequential", "chunked", "fused"):
            return scan
        if scan != "auto":
            raise ValueError(f"unknown scan {scan!r}")
        if HAS_MAMBA_SSM and u.is_cuda:
            return "fused"
        return "chunked" if self.chunk_size else "sequential"

    def forward(
        self,
        u: Tensor,
        scan: Scan = "auto",
        cache: Mamba2Cache | None = None,
        return_cache: bool = False,
    ) -> Tensor | tuple[Tensor, Mamba2Cache]:
        """u (b, l, d_model) -> (b, l, d_model), and the cache after the last frame when
        return_cache. A given cache continues from where it was taken (any scan)."""
        b, L, _ = u.shape
        path = self.resolve_scan(scan, u)
        z, xBC, dt = self.in_proj(u).split([self.d_inner, self.channels, self.nheads], -1)

        # Causal depthwise conv over [cached inputs, new inputs]; with a zero cache this is the
        # module's own left padding. Its last d_conv - 1 inputs are the next conv cache.
        if cache is None:
            past = u.new_zeros(b, self.d_conv - 1, self.channels)
        else:
            past = cache.conv.transpose(1, 2)
        window = torch.cat([past, xBC], 1)  # (b, d_conv - 1 + l, channels)
        conv_cache = window[:, -(self.d_conv - 1) :].clone().transpose(1, 2)
        xBC = F.conv1d(
            window.transpose(1, 2), self.conv1d.weight, self.conv1d.bias, groups=self.channels
        )
        xBC = F.silu(xBC.transpose(1, 2))
        x, B, C = xBC.split([self.d_inner, self.d_state, self.d_state], -1)
        x = x.reshape(b, L, self.nheads, self.headdim)

        dt = F.softplus(dt + self.dt_bias)
        A = -torch.exp(self.A_log)
        S = cache.ssm.permute(0, 3, 1, 2) if cache is not None else None
        chunk = self.chunk_size or L
        if path == "sequential":
            y, S = scan_sequential(x, dt, A, B, C, S)
        elif path == "chunked":
            y, S = scan_chunked(x, dt, A, B, C, chunk, S, final_state=return_cache)
        else:
            y, S = scan_fused(x, dt, A, B, C, chunk, S)

        y = torch.addcmul(y, x, self.D[:, None])
        out = self.out_proj(self.norm(y.reshape(b, L, self.d_inner) * F.silu(z)))
        return (out, Mamba2Cache(conv_cache, S.permute(0, 2, 3, 1))) if return_cache else out

    def step(
        self, u_t: Tensor, cache: Mamba2Cache, inplace: bool = True
    ) -> tuple[Tensor, Mamba2Cache]:
        """One frame: u_t (b, d_model) -> (b, d_model) and the cache after it.

        inplace (the fast path for rollouts): the cache's tensors are updated in place and the
        returned cache holds them (a tensor stored in another layout than `Mamba2Cache`'s is
        copied first, and the copy updated); `Mamba2Cache.clone` first to branch. It cannot be
        backpropagated through: pass inplace=False to train through steps, which leaves the given
        cache as it was.
        """
        b = u_t.shape[0]
        z, xBC, dt = self.in_proj(u_t).split([self.d_inner, self.channels, self.nheads], -1)

        # The conv at one frame: a weighted sum over the d_conv - 1 cached inputs and this one.
        # Row by row: no (b, d_conv, channels) temporaries, which cost more than the arithmetic.
        w = self.conv1d.weight[:, 0].t().contiguous()  # (d_conv, channels)
        past = cache.conv.transpose(1, 2).contiguous()  # (b, d_conv - 1, channels)
        conv = torch.addcmul(self.conv1d.bias, xBC, w[-1])
        for k in range(self.d_conv - 1):
            conv.addcmul_(past[:, k], w[k])
        if inplace:
            for k in range(self.d_conv - 2):
                past[:, k].copy_(past[:, k + 1])
            past[:, -1].copy_(xBC)
        else:
            past = torch.cat([past[:, 1:], xBC.unsqueeze(1)], 1)
        conv_cache = past.transpose(1, 2)
        x, B, C = F.silu(conv).split([self.d_inner, self.d_state, self.d_state], -1)
        x = x.reshape(b, self.nheads, self.headdim)

        dt = F.softplus(dt + self.dt_bias)
        S = cache.ssm.permute(0, 3, 1, 2).contiguous()
        y, S = ssm_step(S, x, dt, -torch.exp(self.A_log), B, C, inplace)
        y = torch.addcmul(y, x, self.D[:, None])
        out = self.out_proj(self.norm(y.view(b, self.d_inner) * F.silu(z)))
        return out, Mamba2Cache(conv_cache, S.permute(0, 2, 3, 1))


class Mamba2Layer(nn.Module):
    """x + Mamba2Block(RMSNorm(x)): the pre-norm residual layer the world model stacks."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        headdim: int = 64,
        expand: int = 2,
        d_conv: int = 4,
        chunk_size: int | None = None,
    ):
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=1e-5)
        self.block = Mamba2Block(d_model, d_state, headdim, expand, d_conv, chunk_size)

    def init_cache(
        self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Mamba2Cache:
        """See `Mamba2Block.init_cache`."""
        return self.block.init_cache(batch, device, dtype)

    def forward(
        self,
        x: Tensor,
        scan: Scan = "auto",
        cache: Mamba2Cache | None = None,
        return_cache: bool = False,
    ) -> Tensor | tuple[Tensor, Mamba2Cache]:
        """See `Mamba2Block.forward`."""
        out = self.block(self.norm(x), scan, cache, return_cache)
        if return_cache:
            return x + out[0], out[1]
        return x + out

    def step(
        self, x_t: Tensor, cache: Mamba2Cache, inplace: bool = True
    ) -> tuple[Tensor, Mamba2Cache]:
        """See `Mamba2Block.step`."""
        y, cache = self.block.step(self.norm(x_t), cache, inplace)
        return x_t + y, cache
