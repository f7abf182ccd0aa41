"""The training engine on a small task of its own: a crashed run resumes to the uninterrupted
result (dropout included, so every random state must come back), on the CPU and on a GPU when
there is one (`benchmarks/gpu_checks.sh` runs this file there); loss parts are read at the
logging cadence, not every step."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mmlib import engine
from mmlib.engine import RESUME_FILE, Schedule

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    ),
]


class Crash(RuntimeError):
    """The stand-in for a killed process: raised by the batch stream mid-run."""


class Batches:
    """Seeded regression batches; the position is the whole state. `crash_at`: raise on that
    call (counted from this process's start), as a kill would stop the run there."""

    def __init__(self, crash_at: int | None = None):
        self.position, self.calls, self.crash_at = 0, 0, crash_at

    def next(self):
        self.calls += 1
        if self.calls == self.crash_at:
            raise Crash(f"killed before batch {self.position}")
        g = torch.Generator().manual_seed(self.position)
        self.position += 1
        x = torch.randn(32, 8, generator=g)
        return {"x": x, "y": x.sum(1, keepdim=True)}

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]


class Task:
    """An MLP with dropout: its masks come from the generator of the device it trains on."""

    def __init__(self, crash_at: int | None = None):
        self.crash_at = crash_at

    def build(self):
        return torch.nn.Sequential(
            torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(32, 1)
        )

    def optimizer(self, model):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))

    def batches(self, rank):
        return Batches(self.crash_at)

    def loss(self, model, batch):
        error = model(batch["x"]) - batch["y"]
        return {"total": error.square().mean(), "l1": error.abs().mean()}

    def evaluate(self, model, device, amp):
        batch = engine.to_device(Batches().next(), device)
        with torch.no_grad():
            model.eval()
            total = self.loss(model, batch)["total"].item()
            model.train()
        return {"total": total}

    def describe(self, val):
        return ""

    def identity(self):
        return {"task": "engine-test"}

    def data_identity(self):
        return b"seeded"


SCHEDULE = Schedule(steps=12, eval_every=6, log_every=3, ckpt_every=5, seed=3)


def _train(run_dir, device: str, crash_at=None, schedule=SCHEDULE):
    if device == "cuda":  # the engine puts the model on the GPU when there is one
        assert engine.device_for().type == "cuda"
    return engine.train(Task(crash_at), schedule, run_dir, log=lambda line: None)


@pytest.mark.parametrize("device", DEVICES)
def test_a_crashed_run_resumes_to_the_uninterrupted_result(tmp_path, device):
    whole = _train(tmp_path / "whole", device)
    with pytest.raises(Crash):
        _train(tmp_path / "killed", device, crash_at=8)  # after the step-5 resume file
    kept = torch.load(tmp_path / "killed" / RESUME_FILE, weights_only=False)
    assert kept["step"] == 5 and kept["history"].pending  # steps 4-5 not yet in a record
    assert ("cuda_rng" in kept) == (device == "cuda")  # a CPU run's file keeps its old layout
    resumed = _train(tmp_path / "killed", device)
    assert resumed.history.train == whole.history.train  # losses equal to the last bit
    assert resumed.history.val == whole.history.val
    for name, tensor in whole.checkpoint["model"].items():
        assert torch.equal(resumed.checkpoint["model"][name], tensor), name


def test_a_resume_without_the_random_state_would_differ(tmp_path):
    """The check above can fail: the same resume with the generator drawn on goes elsewhere."""
    whole = _train(tmp_path / "whole", "cpu")
    with pytest.raises(Crash):
        _train(tmp_path / "killed", "cpu", crash_at=8)
    resume = tmp_path / "killed" / RESUME_FILE
    kept = torch.load(resume, weights_only=False)
    torch.manual_seed(99)
    kept["torch_rng"] = [torch.get_rng_state()]
    torch.save(kept, resume)
    resumed = _train(tmp_path / "killed", "cpu")
    assert resumed.history.train[-1] != whole.history.train[-1]


class Counted(torch.Tensor):
    """A loss part that counts how often its value (or a sum made from it) is read."""

    reads = 0

    def item(self):
        Counted.reads += 1
        return super().item()


class CountedTask(Task):
    def loss(self, model, batch):
        return {k: v.as_subclass(Counted) for k, v in super().loss(model, batch).items()}


def test_loss_parts_are_read_at_the_logging_cadence(tmp_path):
    """`.item()` waits for the device: once per part per record, not per step. 12 steps, a
    record every 3, two parts, resume files written where no sums are pending (steps 6 and 12),
    two evaluations: 4 * 2 + 2 reads (the old loop read 12 * 2 + 2)."""
    Counted.reads = 0
    schedule = replace(SCHEDULE, ckpt_every=6)
    result = engine.train(CountedTask(), schedule, tmp_path, log=lambda line: None)
    assert len(result.history.train) == 4
    assert Counted.reads == 4 * 2 + 2
    assert (
        result.history.train == _train(tmp_path / "plain", "cpu", schedule=schedule).history.train
    )
