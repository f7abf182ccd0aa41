"""The BC transformer: the skew trick equals the plain gather, the fast model equals its
reference path, attention is causal, heads are chained on detached logits, the published
parameter count and decay groups, and the loss is the plain sum of four cross-entropies."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmlib.checkpoint.published import published_name
from mmlib.errors import UsageError
from mmlib.models.attention import relative_scores, relative_scores_reference
from mmlib.models.bc import HEADS, BCTransformer
from mmlib.models.config import ModelConfig, preset
from mmlib.train import optim
from mmlib.train.config import TrainConfig


def _inputs(cfg: ModelConfig, B: int, T: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ints = torch.stack(
        [
            torch.randint(1, 7, (B, T), generator=g),
            torch.randint(0, cfg.n_characters, (B, T), generator=g),
            torch.randint(0, cfg.n_characters, (B, T), generator=g),
            torch.randint(0, cfg.n_actions, (B, T), generator=g),
            torch.randint(0, cfg.n_actions, (B, T), generator=g),
        ],
        dim=-1,
    ).to(torch.int16)
    floats = torch.randn(B, T, cfg.n_floats, generator=g)
    targets = torch.stack([torch.randint(0, n, (B, T), generator=g) for _, n in HEADS], dim=-1).to(
        torch.int16
    )
    return ints, floats, targets


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 40), extra=st.integers(0, 30), D=st.integers(1, 9), seed=st.integers(0, 99))
def test_skew_equals_the_gathered_table(T, extra, D, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 3, T, D, generator=g, dtype=torch.float64)
    rel = torch.randn(T + extra, D, generator=g, dtype=torch.float64)
    fast, ref = relative_scores(q, rel), relative_scores_reference(q, rel)
    torch.testing.assert_close(fast.tril(), ref, rtol=0, atol=1e-12)


def test_fast_model_equals_its_reference_path():
    cfg = preset("tiny")
    torch.manual_seed(0)
    model = BCTransformer(cfg).eval()
    ints, floats, _ = _inputs(cfg, 3, cfg.max_seq_len)
    fast, _ = model(ints, floats)
    ref, _ = model(ints, floats, reference=True)
    for name in fast:
        torch.testing.assert_close(fast[name], ref[name], rtol=1e-5, atol=1e-6)


def test_attention_is_causal():
    cfg = preset("tiny")
    torch.manual_seed(0)
    model = BCTransformer(cfg).eval()
    ints, floats, _ = _inputs(cfg, 2, 12)
    before, _ = model(ints, floats)
    floats2, ints2 = floats.clone(), ints.clone()
    floats2[:, 7:] += 5.0
    ints2[:, 7:, 3] = 3
    after, _ = model(ints2, floats2)
    for name in before:
        torch.testing.assert_close(before[name][:, :7], after[name][:, :7])
        assert not torch.allclose(before[name][:, 7:], after[name][:, 7:])


def test_later_heads_see_detached_logits_of_earlier_ones():
    cfg = preset("tiny")
    torch.manual_seed(0)
    model = BCTransformer(cfg)
    ints, floats, targets = _inputs(cfg, 2, 8)
    logits, _ = model(ints, floats)
    F.cross_entropy(logits["button"].flatten(0, 1), targets[..., 3].flatten().long()).backward()
    for name, _ in HEADS[:3]:  # the button loss trains no earlier head
        assert all(p.grad is None for p in model.heads[name].parameters())
    assert model.heads["button"].out.weight.grad.abs().sum() > 0
    assert model.heads["button"].norm.weight.shape[0] == cfg.d_model + 3 + 9 + 37


def test_loss_is_the_sum_of_four_mean_cross_entropies():
    cfg = preset("tiny")
    model = BCTransformer(cfg)
    ints, floats, targets = _inputs(cfg, 2, 8)
    logits, parts = model(ints, floats, targets)
    for i, (name, n) in enumerate(HEADS):
        want = F.cross_entropy(logits[name].reshape(-1, n), targets[..., i].reshape(-1).long())
        torch.testing.assert_close(parts[name], want)
    torch.testing.assert_close(parts["total"], sum(parts[n] for n, _ in HEADS))
    # at initialisation each head is near uniform: total near ln 3 + ln 9 + ln 37 + ln 7
    assert parts["total"].item() == pytest.approx(math.log(3 * 9 * 37 * 7), rel=0.05)


def test_mimic_preset_has_the_published_parameter_count_and_decay_groups():
    with torch.device("meta"):
        model = BCTransformer(preset("mimic"))
    assert model.cfg.n_inputs == 184
    assert model.n_params() == 19_994_149
    decay, no_decay = optim.decay_groups(model)
    params = dict(model.named_parameters())
    assert (len(no_decay), sum(params[n].numel() for n in no_decay)) == (51, 38_551)
    assert (len(decay), sum(params[n].numel() for n in decay)) == (58, 19_955_598)
    # the published name test's quirk: block and head LayerNorm gains decay, final_norm's not
    assert "blocks.0.norm_attn.weight" in decay and "heads.main.norm.weight" in decay
    assert "norm_out.weight" in no_decay
    assert published_name("norm_out.weight") == "final_norm.weight"


def test_bf16_autocast_keeps_scores_in_float32_and_matches_fp32():
    cfg = preset("tiny")
    torch.manual_seed(0)
    model = BCTransformer(cfg).eval()
    ints, floats, _ = _inputs(cfg, 2, cfg.max_seq_len)
    want, _ = model(ints, floats)
    seen = []  # the dtype of every tensor softmax runs on
    real_softmax = torch.Tensor.softmax

    def spy(self, *a, **k):
        seen.append(self.dtype)
        return real_softmax(self, *a, **k)

    torch.Tensor.softmax = spy
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got, _ = model(ints, floats)
    finally:
        torch.Tensor.softmax = real_softmax
    assert seen and set(seen) == {torch.float32}
    for name in want:
        # measured on seeds 0-5: max |bf16 - fp32| <= 1.3% of the head's max |logit| (~0.03)
        atol = 0.04 * want[name].abs().max().item()
        torch.testing.assert_close(got[name].float(), want[name], rtol=0, atol=atol)


def test_schedule_is_cosine_from_lr_to_min_lr():
    cfg = TrainConfig(steps=100, lr=3e-4, min_lr=1e-6)
    model = BCTransformer(preset("tiny"))
    opt = optim.optimizer(model, cfg)
    sched = optim.scheduler(opt, cfg)
    lrs = []
    for _ in range(cfg.steps):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(3e-4)
    assert lrs[50] == pytest.approx(1e-6 + (3e-4 - 1e-6) / 2, rel=1e-6)
    assert sched.get_last_lr()[0] == pytest.approx(1e-6)
    cfg_w = TrainConfig(steps=100, warmup_frac=0.1)
    warm = optim.scheduler(optim.optimizer(model, cfg_w), cfg_w)
    assert warm.get_last_lr()[0] == pytest.approx(0.01 * cfg_w.lr)


def test_bad_configs_are_one_line_errors():
    with pytest.raises(UsageError, match="not a multiple"):
        ModelConfig(d_model=30, n_heads=4)
    with pytest.raises(UsageError, match="no model preset 'huge'"):
        preset("huge")
    with pytest.raises(UsageError, match=r"unknown keys \['stpes'\]"):
        TrainConfig.from_params({"stpes": 3})
    with pytest.raises(UsageError, match="precision"):
        TrainConfig(precision="fp16")


def test_hold_heads_start_from_the_current_input_and_keep_published_names():
    """With `hold`, each head adds one learned scalar to the logit of the class the input's
    one-hot holds: with the heads' own outputs zeroed, every head predicts copy-last."""
    from mmlib.checkpoint import published
    from mmlib.features import controller

    cfg = preset("tiny", hold=True)
    model = BCTransformer(cfg).eval()
    assert model.n_params() == BCTransformer(preset("tiny")).n_params() + len(HEADS)
    with torch.no_grad():
        for head in model.heads.values():
            head.out.weight.zero_()
            head.out.bias.zero_()
    ints, floats, _ = _inputs(cfg, 3, 8)
    g = torch.Generator().manual_seed(1)
    now = {name: torch.randint(0, n, (3, 8), generator=g) for name, n in HEADS}
    floats[..., -controller.CONTROLLER_DIM :] = torch.from_numpy(
        controller.one_hot(*(now[k].numpy() for k in ("main", "c", "button", "shoulder")))
    )
    logits, _ = model(ints, floats)
    for name, _ in HEADS:
        assert torch.equal(logits[name].argmax(-1), now[name]), name
    names = published.to_published(model.state_dict())
    assert "heads.mmlib_hold" in names
    assert set(published.from_published(names, "test")) == set(model.state_dict())
