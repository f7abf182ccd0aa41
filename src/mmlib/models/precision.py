"""Reduced-precision copies of the BC transformer for play on a CPU (SPEC 5.8).

A cached play step reads every weight once per frame, so at float32 it is bound by memory
bandwidth (~80 MB per frame for mimic). `reduce(model, kind)` returns a new eval-mode copy:

    fp32   a plain copy (the reference)
    bf16   every floating weight cast to bfloat16; the frame encoder casts its inputs to the weight
           dtype and attention keeps scores and softmax in float32 (`models/attention.py`)
    int8   dynamic quantization (qint8 weights, activations quantized per call) of the Linear
           layers of the transformer blocks and of the heads' hidden layers (97% of the mimic
           parameters). Two kinds stay float32: the input projection, whose input mixes small
           embeddings with unit-scale features under one activation scale (quantized, it moves
           a trained policy's logits several times more), and the heads' output layers, a few
           classes each (a quantized call is slower there) and the logits themselves.

Agreement with float32 is measured, not assumed: tests/test_precision.py and
benchmarks/play_latency.py.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from mmlib.errors import UsageError
from mmlib.models.bc import HEADS, BCTransformer

KINDS = ("fp32", "bf16", "int8")


def reduce(model: BCTransformer, kind: str) -> BCTransformer:
    """A new eval-mode copy of `model` at precision `kind` (one of KINDS); `model` is untouched."""
    if kind not in KINDS:
        raise UsageError(f"no precision {kind!r}; kinds: {', '.join(KINDS)}")
    out = copy.deepcopy(model).eval()
    if kind == "bf16":
        return out.to(torch.bfloat16)
    if kind == "int8":
        kept = {"encoder.proj"} | {f"heads.{name}.out" for name, _ in HEADS}
        names = {n for n, m in out.named_modules() if isinstance(m, nn.Linear)} - kept
        # torch.ao.quantization (and its qint8 tensors) is deprecated in favour of torchao, the
        # successor, which is not a dependency of mmlib: its warnings are silenced here only.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"(?s).*deprecated")
            out = torch.ao.quantization.quantize_dynamic(
                out, names, dtype=torch.qint8, inplace=True
            )
    return out
