"""The Mamba-2 layer of the world model (SPEC 6.3.2): parameter counts, and the sequential loop,
the chunked SSD scan and the recurrent step computing the same thing in float32."""

from __future__ import annotations

import pytest
import torch

from mmlib.worldmodel.mamba2 import (
    HAS_MAMBA_SSM,
    Mamba2Block,
    Mamba2Cache,
    Mamba2Layer,
    scan_chunked,
    scan_sequential,
    segsum,
)

TOL = 1e-4
SMALL = {"d_state": 16, "headdim": 16}  # 8 heads at d_model 64


def layer(d_model: int = 64, chunk_size: int | None = None, seed: int = 0, **kw) -> Mamba2Layer:
    torch.manual_seed(seed)
    return Mamba2Layer(d_model, chunk_size=chunk_size, **(SMALL | kw)).eval()


def inputs(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def block_params(d: int, d_state: int = 64, headdim: int = 64, expand: int = 2, d_conv: int = 4):
    """The SPEC 6.3.2 count, written out from the formula."""
    d_inner = expand * d
    nheads = d_inner // headdim
    channels = d_inner + 2 * d_state
    return (
        d * (2 * d_inner + 2 * d_state + nheads)
        + channels * d_conv
        + channels
        + 3 * nheads
        + d_inner
        + d_inner * d
    )


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("d_model", "expected"), [(256, 432_024), (384, 944_164)])
def test_layer_parameter_counts(d_model, expected):
    assert n_params(Mamba2Layer(d_model)) == expected
    assert n_params(Mamba2Block(d_model)) == block_params(d_model) == expected - d_model


def test_segsum_is_the_sum_over_the_segment():
    a = inputs(3, 6)
    out = segsum(a)
    for i in range(6):
        for j in range(6):
            if i >= j:
                torch.testing.assert_close(out[:, i, j], a[:, j + 1 : i + 1].sum(-1))
            else:
                assert torch.isinf(out[:, i, j]).all() and (out[:, i, j] < 0).all()


@pytest.mark.parametrize(("L", "chunk"), [(60, 30), (10, 10), (10, 5), (23, 8), (7, 16), (61, 30)])
def test_chunked_equals_sequential(L, chunk):
    """Full-size layer (d_model 256, d_state 64, headdim 64), including L not a multiple of the
    chunk and L shorter than one chunk."""
    torch.manual_seed(0)
    m = Mamba2Layer(256, chunk_size=chunk).eval()
    u = inputs(2, L, 256)
    with torch.no_grad():
        seq, seq_cache = m(u, scan="sequential", return_cache=True)
        chk, chk_cache = m(u, scan="chunked", return_cache=True)
        assert torch.equal(m(u), chk)  # chunked is the default once chunk_size is set
    assert max_diff(seq, chk) <= TOL
    assert max_diff(seq_cache.ssm, chk_cache.ssm) <= TOL
    assert torch.equal(seq_cache.conv, chk_cache.conv)


def test_scans_agree_where_the_state_carries_across_chunks():
    """Slow decay (small A dt): the state entering a chunk matters, and the chunk pass is right."""
    g = torch.Generator().manual_seed(2)
    b, L, h, p, n = 2, 50, 4, 8, 16
    x, B, C = (torch.randn(b, L, *s, generator=g) for s in ((h, p), (n,), (n,)))
    dt = 0.05 * torch.rand(b, L, h, generator=g)
    A = -torch.linspace(0.5, 2.0, h)
    S0 = torch.randn(b, n, h, p, generator=g)
    y_seq, s_seq = scan_sequential(x, dt, A, B, C, S0)
    y_chk, s_chk = scan_chunked(x, dt, A, B, C, 16, S0)
    assert max_diff(y_seq, y_chk) <= TOL and max_diff(s_seq, s_chk) <= TOL
    # chunks scanned alone (no state passed on) would be far off
    parts = [slice(i, i + 16) for i in range(0, L, 16)]
    alone = [scan_chunked(x[:, i], dt[:, i], A, B[:, i], C[:, i], 16, S0)[0] for i in parts]
    assert max_diff(torch.cat(alone, 1), y_seq) > 100 * TOL


@pytest.mark.parametrize("scan", ["sequential", "chunked"])
def test_steps_from_zero_equal_forward(scan):
    m = layer(chunk_size=8)
    u = inputs(3, 20, 64)
    with torch.no_grad():
        full, full_cache = m(u, scan=scan, return_cache=True)
        cache = m.init_cache(3)
        ys = []
        for t in range(20):
            y, cache = m.step(u[:, t], cache)
            ys.append(y)
    assert max_diff(torch.stack(ys, 1), full) <= TOL
    assert max_diff(cache.ssm, full_cache.ssm) <= TOL
    assert max_diff(cache.conv, full_cache.conv) <= TOL


@pytest.mark.parametrize("scan", ["sequential", "chunked"])
@pytest.mark.parametrize(("L", "M"), [(13, 9), (2, 5)])  # (2, 5): fewer frames than the conv window
def test_forward_then_steps_equal_one_forward(scan, L, M):
    """Seed a rollout with L real frames in one call, continue it one frame at a time."""
    m = layer(chunk_size=4)
    u = inputs(2, L + M, 64)
    with torch.no_grad():
        whole = m(u, scan="sequential")
        seed, cache = m(u[:, :L], scan=scan, return_cache=True)
        ys = []
        for t in range(L, L + M):
            y, cache = m.step(u[:, t], cache)
            ys.append(y)
    assert max_diff(seed, whole[:, :L]) <= TOL
    assert max_diff(torch.stack(ys, 1), whole[:, L:]) <= TOL


@pytest.mark.parametrize("scan", ["sequential", "chunked"])
def test_forward_continues_from_a_cache(scan):
    m = layer(chunk_size=4)
    u = inputs(2, 19, 64)
    with torch.no_grad():
        whole, whole_cache = m(u, scan="sequential", return_cache=True)
        first, cache = m(u[:, :7], scan=scan, return_cache=True)
        rest, cache = m(u[:, 7:], scan=scan, cache=cache, return_cache=True)
    assert max_diff(torch.cat([first, rest], 1), whole) <= TOL
    assert max_diff(cache.ssm, whole_cache.ssm) <= TOL


def test_step_in_place_or_not():
    """inplace (default) updates the given cache; inplace=False leaves it as it was; both give the
    same frames, and a clone branches."""
    m = layer()
    u = inputs(2, 6, 64)
    with torch.no_grad():
        _, seeded = m(u[:, :3], scan="sequential", return_cache=True)
        kept = seeded.clone()
        y_copy, c_copy = m.step(u[:, 3], seeded, inplace=False)
        assert torch.equal(seeded.ssm, kept.ssm) and torch.equal(seeded.conv, kept.conv)
        y_in, c_in = m.step(u[:, 3], seeded)
        assert c_in.ssm.data_ptr() == seeded.ssm.data_ptr()
        assert torch.equal(seeded.ssm, c_in.ssm) and not torch.equal(seeded.ssm, kept.ssm)
        y_branch, _ = m.step(u[:, 3], kept)
    assert torch.equal(y_copy, y_in) and torch.equal(y_in, y_branch)
    assert torch.equal(c_copy.ssm, c_in.ssm) and torch.equal(c_copy.conv, c_in.conv)


def test_cache_rows_and_layout():
    m = layer()
    cache = m.init_cache(5)
    assert cache.conv.shape == (5, 64 * 2 + 2 * 16, 3)
    assert cache.ssm.shape == (5, 8, 16, 16)
    assert not cache.conv.any() and not cache.ssm.any()
    u = inputs(5, 4, 64)
    with torch.no_grad():
        _, cache = m(u, scan="chunked", return_cache=True)
        rows = cache.rows(torch.tensor([4, 1]))
        assert isinstance(rows, Mamba2Cache)
        assert torch.equal(rows.ssm, cache.ssm[[4, 1]]) and torch.equal(
            rows.conv, cache.conv[[4, 1]]
        )
        # stepping a sub-batch equals stepping all rows and keeping those
        y_rows, _ = m.step(u[[4, 1], -1], rows.clone())
        y_all, _ = m.step(u[:, -1], cache.clone())
    assert max_diff(y_rows, y_all[[4, 1]]) <= TOL
    # a cache stored in the plain (b, h, p, d_state) layout is accepted too
    plain = Mamba2Cache(cache.conv.contiguous(), cache.ssm.contiguous())
    with torch.no_grad():
        y_plain, _ = m.step(u[:, -1], plain)
    assert torch.equal(y_plain, y_all)


def test_chunked_gradients_equal_sequential():
    m = layer(d_model=32, chunk_size=4, d_state=8, headdim=8)
    u = inputs(2, 11, 32).requires_grad_()
    target = inputs(2, 11, 32, seed=3)

    def grads(scan: str) -> list[torch.Tensor]:
        m.zero_grad()
        u.grad = None
        ((m(u, scan=scan) - target) ** 2).sum().backward()
        return [u.grad.clone()] + [p.grad.clone() for p in m.parameters()]

    for g_chk, g_seq in zip(grads("chunked"), grads("sequential"), strict=True):
        torch.testing.assert_close(g_chk, g_seq, atol=1e-4, rtol=1e-3)


def test_steps_can_be_trained_through_without_inplace():
    m = layer(d_model=32, d_state=8, headdim=8)
    u = inputs(2, 5, 32)
    m(u, scan="sequential").sum().backward()
    expected = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    cache = m.init_cache(2)
    total = 0
    for t in range(5):
        y, cache = m.step(u[:, t], cache, inplace=False)
        total = total + y.sum()
    total.backward()
    for got, want in zip((p.grad for p in m.parameters()), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-3)


def test_forward_is_deterministic():
    m = layer(chunk_size=5)
    u = inputs(2, 12, 64)
    with torch.no_grad():
        for scan in ("sequential", "chunked"):
            assert torch.equal(m(u, scan=scan), m(u, scan=scan))


def test_scan_choice_on_cpu():
    u = inputs(1, 3, 64)
    assert layer(chunk_size=4).block.resolve_scan("auto", u) == "chunked"
    assert layer().block.resolve_scan("auto", u) == "sequential"
    with pytest.raises(ValueError, match="unknown scan"):
        layer()(u, scan="parallel")
    if not (HAS_MAMBA_SSM and torch.cuda.is_available()):
        with pytest.raises(RuntimeError, match="fused"):
            layer()(u, scan="fused")


@pytest.mark.skipif(
    not (HAS_MAMBA_SSM and torch.cuda.is_available()), reason="needs CUDA and mamba_ssm"
)
def test_fused_equals_chunked_on_cuda():
    torch.manual_seed(0)
    m = Mamba2Layer(256, chunk_size=32).cuda().eval()
    u = inputs(4, 100, 256).cuda()
    with torch.no_grad():
        chk, chk_cache = m(u, scan="chunked", return_cache=True)
        fused, fused_cache = m(u, scan="fused", return_cache=True)
        assert m.block.resolve_scan("auto", u) == "fused"
        _, seeded = m(u[:, :60], scan="fused", return_cache=True)
        rest = m(u[:, 60:], scan="fused", cache=seeded)
    assert max_diff(fused, chk) <= 1e-3
    assert max_diff(fused_cache.ssm, chk_cache.ssm) <= 1e-3
    assert max_diff(rest, chk[:, 60:]) <= 1e-3
