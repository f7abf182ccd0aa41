"""One training engine for every model mmlib trains (behaviour cloning, world models).

The engine owns what is the same for any model: the device (CUDA when there is one), bf16
autocast, optional `torch.compile`, DistributedDataParallel under `torchrun` (gloo on CPU, NCCL on
CUDA), gradient clipping, the optimizer and schedule steps, the evaluation cadence, early stopping,
the history, and a resume file (`last.pt`, written atomically) from which a killed run continues
exactly where it stopped. A `Task` supplies the rest: its model, optimizer and schedule, a batch
stream with a resumable state, `loss(model, batch) -> {name: tensor}` and a validation pass.

Given a seed, a run is deterministic (on CUDA as far as torch offers deterministic kernels), and a
resumed run gives the losses the uninterrupted run would have given: the resume file keeps every
random state a step draws from (the CPU generator's and, on a GPU, the device's). Loss parts add up
on the device and are read only when a training record is written, so a step does not wait for
the GPU to report its loss (one wait per step is left: the check that skips a non-finite step).
Under torchrun each process draws its own batches, gradients are averaged, every process runs the
same validation pass on its own replica, and only rank 0 writes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist

from mmlib import cpu_kernels
from mmlib.atomic import write_text, write_torch

RESUME_FILE = "last.pt"
CURVES = ("train_curve.csv", "val_curve.csv")  # beside the resume file, rewritten every evaluation
# The resume file's layout and the meaning of the recipes it is fingerprinted on. Bump it when
# either changes in a way that makes an old resume file wrong to continue (not for edits that
# leave training the same: a comment, a metric, a plot).
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Schedule:
    """The engine's part of a recipe: how long, how often, and how each step runs."""

    steps: int
    eval_every: int
    log_every: int
    ckpt_every: int
    patience: int = 0  # stop after this many evaluations without a new best (0: never)
    grad_clip: float = 1.0  # global L2 norm
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    compile: bool = False  # torch.compile the model
    seed: int = 0  # model init; dropout draws use seed * 1000 + rank
    threads: int = 0  # torch CPU threads (0: torch's default); fixed for reproducible CPU runs


class Batches(Protocol):
    """A rank's endless stream of training batches, whose position can be saved and restored."""

    def next(self): ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class Task(Protocol):
    """What a model family gives the engine."""

    def build(self) -> torch.nn.Module: ...  # called after torch.manual_seed(schedule.seed)
    def optimizer(self, model) -> tuple[torch.optim.Optimizer, object]: ...  # (opt, schedule)
    def batches(self, rank: int) -> Batches: ...
    def loss(self, model, batch) -> dict[str, torch.Tensor]: ...  # "total" is minimised
    def evaluate(self, model, device, amp) -> dict[str, float]: ...  # "total" picks the best
    def describe(self, val: dict) -> str: ...  # the tail of an evaluation's log line
    def identity(self) -> dict: ...  # the recipe and model config (JSON-able)
    def data_identity(self) -> bytes: ...  # the data it trains on (e.g. a manifest)


@dataclass
class History:
    """Everything a run records; saved in the resume file, written out as the curves."""

    train: list[dict] = field(default_factory=list)  # {step, lr, total, <loss>...}
    val: list[dict] = field(default_factory=list)  # {step, total, <figure>...}
    best_loss: float = math.inf
    best_step: int = 0
    evals_since_best: int = 0
    stopped_early: bool = False
    pending: dict = field(default_factory=dict)  # loss sums since the last training record


@dataclass
class Result:
    history: History
    best_state: dict  # the best model's state dict, on CPU
    step: int  # the last step trained
    checkpoint: dict  # the whole resume file (optimizer, scheduler, ...)
    rank: int = 0  # this process's rank under torchrun


def curve_csv(rows: list[dict]) -> str:
    """History records as CSV (floats to 6 significant figures)."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def fingerprint(task: Task, schedule: Schedule) -> str:
    """What a resume file must match to be continued: the format version, the recipe and model,
    the schedule, the data, torch's version and the CPU-kernel pin. Not the source: editing a
    comment must not throw away a long run's resume state (bump FORMAT_VERSION instead)."""
    recipe = [FORMAT_VERSION, task.identity(), asdict(schedule)]
    h = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    h.update(task.data_identity())
    h.update(torch.__version__.encode())
    h.update(cpu_kernels.setting().encode())
    return h.hexdigest()[:16]


def distributed() -> tuple[int, int]:
    """(rank, world size); starts the process group when run under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def device_for(rank: int = 0) -> torch.device:
    """This process's GPU under torchrun (LOCAL_RANK), the GPU alone, or the CPU."""
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def to_device(batch, device: torch.device):
    """Tensors and numpy arrays in a (nested) dict, tuple or list, moved to `device`."""
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(v, device) for v in batch)
    if isinstance(batch, np.ndarray):
        batch = torch.from_numpy(batch)
    return batch.to(device, non_blocking=True) if isinstance(batch, torch.Tensor) else batch


def deterministic(device: torch.device) -> None:
    """Deterministic kernels: all of them on the CPU; on CUDA wherever torch has one (warn_only:
    an op without one, such as a fused scan's atomics, warns instead of stopping the run)."""
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
        return
    # cuBLAS reads this when it first starts; without it, deterministic mode refuses matmuls.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.backends.cuda.matmul.allow_tf32 = True  # TF32 is deterministic, only less precise
    torch.backends.cudnn.allow_tf32 = True


def rng_states(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the CPU generator's state, this device's CUDA generator's state or None on the CPU)."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def set_rng_states(cpu: torch.Tensor, cuda: torch.Tensor | None, device: torch.device) -> None:
    """Restore what `rng_states` saved; a CUDA run resumed from a CPU-made file starts its GPU
    generator from the seed instead (the draws then differ, as they would anyway)."""
    torch.set_rng_state(cpu)
    if device.type == "cuda" and cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def autocast_dtype(schedule: Schedule, device: torch.device):
    bf16 = schedule.precision == "bf16" or (schedule.precision == "auto" and device.type == "cuda")
    return torch.bfloat16 if bf16 else None


def train(task: Task, schedule: Schedule, run_dir: Path, log=print, progress=False) -> Result:
    """Train `task` for `schedule.steps`, keeping the resume state in `run_dir/last.pt`;
    continue from it when it is there and matches this run."""
    rank, world = distributed()
    device = device_for(rank)
    if schedule.threads:
        torch.set_num_threads(schedule.threads)
    deterministic(device)
    amp = autocast_dtype(schedule, device)

    torch.manual_seed(schedule.seed)  # the same initial weights on every rank
    model = task.build().to(device)
    opt, sched = task.optimizer(model)
    batches = task.batches(rank)
    torch.manual_seed(schedule.seed * 1000 + rank)  # dropout differs per rank

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = fingerprint(task, schedule)
    history, best_state, step = History(), None, 0
    resume = run_dir / RESUME_FILE
    if resume.is_file():
        ckpt = torch.load(resume, map_location="cpu", weights_only=False)
        if ckpt.get("fingerprint") == key and ckpt.get("world") == world:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            batches.load_state_dict(ckpt["batches"][rank])
            cuda_rng = ckpt.get("cuda_rng")  # only in files made on a GPU
            set_rng_states(ckpt["torch_rng"][rank], cuda_rng and cuda_rng[rank], device)
            history, best_state, step = ckpt["history"], ckpt["best_state"], ckpt["step"]
            log(f"resuming from step {step} ({resume})")
        else:
            log(f"{resume} is from a different recipe, model, data or world size; starting over")

    net = torch.compile(model) if schedule.compile else model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )

    def checkpoint() -> dict:
        history.pending = {k: v.item() for k, v in sums.items()}  # read once per checkpoint
        states = [(batches.state_dict(), *rng_states(device))]
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, states[0])
            states = gathered
        ckpt = {
            "fingerprint": key,
            "format": FORMAT_VERSION,
            "world": world,
            "step": step,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "batches": [s for s, _, _ in states],
            "torch_rng": [r for _, r, _ in states],
            "history": history,
            "best_state": best_state,
            "finished": done,
        }
        if device.type == "cuda":  # a CPU run's file stays as it was (byte for byte)
            ckpt["cuda_rng"] = [r for _, _, r in states]
        return ckpt

    bar = None
    if progress and rank == 0:
        from tqdm import tqdm  # not tqdm.auto: its warning writes a path into a notebook

        bar = tqdm(total=schedule.steps, initial=step, desc="train", unit="step")
    done = step >= schedule.steps or history.stopped_early
    # Loss sums since the last training record, in float64 on the device (the same sums, bit for
    # bit, as Python floats would give); read only when a record or a checkpoint is written.
    sums = {
        k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in history.pending.items()
    }
    net.train()
    while not done:
        batch = to_device(batches.next(), device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            parts = task.loss(net, batch)
        parts["total"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
        if torch.isfinite(parts["total"]) and torch.isfinite(grad_norm):
            opt.step()  # a non-finite step is skipped; the schedule still advances
        opt.zero_grad(set_to_none=True)
        lr = sched.get_last_lr()[0]
        sched.step()
        step += 1
        for k, v in parts.items():
            v = v.detach().double()
            sums[k] = sums[k] + v if k in sums else v
        if bar is not None:
            bar.update(1)
        if step % schedule.log_every == 0 or (step == schedule.steps and sums):
            n = step % schedule.log_every or schedule.log_every  # the last may cover fewer steps
            history.train.append(
                {"step": step, "lr": lr} | {k: (v / n).item() for k, v in sums.items()}
            )
            sums.clear()
        if step % schedule.eval_every == 0 or step == schedule.steps:
            val = task.evaluate(model, device, amp)
            history.val.append({"step": step} | val)
            if val["total"] < history.best_loss:
                history.best_loss, history.best_step = val["total"], step
                history.evals_since_best = 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                history.evals_since_best += 1
            log(
                f"step {step}: val {val['total']:.4f} (best {history.best_loss:.4f} at "
                f"{history.best_step}){task.describe(val)}"
            )
            if rank == 0:  # the curves so far, for a person watching a long run
                for name, rows in zip(CURVES, (history.train, history.val), strict=True):
                    write_text(run_dir / name, curve_csv(rows))
            if schedule.patience and history.evals_since_best >= schedule.patience:
                history.stopped_early = True
                log(f"stopping early: {schedule.patience} passes without a new best")
        done = step >= schedule.steps or history.stopped_early
        if step % schedule.ckpt_every == 0 or done:
            state = checkpoint()
            if rank == 0:
                write_torch(resume, state)
    if bar is not None:
        bar.close()
    state = checkpoint()
    if world > 1:
        dist.barrier()
    best = best_state if best_state is not None else state["model"]
    return Result(history, best, step, state, rank)
