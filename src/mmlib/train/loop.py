"""The training loop: sampled windows -> AdamW steps, validation passes, early stopping, and a
resume checkpoint that makes a killed run continue where it stopped.

Runs alone or under `torchrun` (DistributedDataParallel; gloo on CPU, NCCL on CUDA): each process
samples its own windows, gradients are averaged, every process runs the same validation pass on
its own replica, and only rank 0 writes. Given a seed, a CPU run is deterministic, and a resumed
run gives the losses the uninterrupted run would have given.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from mmlib import cpu_kernels
from mmlib.atomic import atomic_path
from mmlib.features.sampler import WindowSampler
from mmlib.models.bc import BCTransformer, losses
from mmlib.models.config import ModelConfig
from mmlib.train import evaluate, optim
from mmlib.train.config import TrainConfig

RESUME_FILE = "last.pt"


@dataclass
class History:
    """Everything a run records; saved in the resume checkpoint, written out as the curves."""

    train: list[dict] = field(default_factory=list)  # {step, lr, total, <head>...}
    val: list[dict] = field(default_factory=list)  # {step, total, <head>..., acc_<head>...}
    best_loss: float = math.inf
    best_step: int = 0
    evals_since_best: int = 0
    stopped_early: bool = False
    pending: dict = field(default_factory=dict)  # loss sums since the last training record


@dataclass
class Result:
    history: History
    best_state: dict  # the best model's state dict (mmlib names), on CPU
    step: int  # the last step trained
    checkpoint: dict  # the whole resume checkpoint (optimizer, scheduler, ...)
    rank: int = 0  # this process's rank under torchrun


def fingerprint(cfg: TrainConfig, model_cfg: ModelConfig, data: Path) -> str:
    """What a resume checkpoint must match to be continued: the recipe, the model, the data,
    torch's version, the CPU-kernel pin and the source of the code that trains (so an edited
    model starts over)."""
    h = hashlib.sha256(json.dumps([cfg.to_dict(), model_cfg.to_dict()], sort_keys=True).encode())
    h.update((Path(data) / "manifest.json").read_bytes())
    h.update(torch.__version__.encode())
    h.update(cpu_kernels.setting().encode())
    package = Path(__file__).resolve().parents[1]
    for source in sorted([*package.glob("models/*.py"), *package.glob("train/*.py")]):
        h.update(source.read_bytes())
    h.update((package / "features" / "sampler.py").read_bytes())
    return h.hexdigest()[:16]


def _distributed() -> tuple[int, int]:
    """(rank, world size); starts the process group when run under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _device(rank: int) -> torch.device:
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _batch(arrays: dict[str, np.ndarray], device) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(arrays[k]).to(device) for k in ("ints", "floats", "targets"))


def _save(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    data: Path,
    run_dir: Path,
    log=print,
    progress: bool = False,
) -> Result:
    """Train on `data` (a character's shard folder with train/ and val/) and keep the resume
    state in `run_dir/last.pt`; continue from it when it is there and matches this run."""
    rank, world = _distributed()
    device = _device(rank)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    amp = torch.bfloat16 if use_bf16 else None

    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = BCTransformer(model_cfg).to(device)
    opt = optim.optimizer(model, cfg)
    sched = optim.scheduler(opt, cfg)
    sampler = WindowSampler(Path(data) / "train", model_cfg.max_seq_len, seed=cfg.seed)
    sampler.rng = np.random.default_rng([cfg.seed, rank])  # each rank draws its own windows
    torch.manual_seed(cfg.seed * 1000 + rank)  # dropout differs per rank
    windows = evaluate.val_windows(Path(data) / "val", model_cfg.max_seq_len, cfg.eval_windows)

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = fingerprint(cfg, model_cfg, data)
    history, best_state, step = History(), None, 0
    resume = run_dir / RESUME_FILE
    if resume.is_file():
        ckpt = torch.load(resume, map_location="cpu", weights_only=False)
        if ckpt.get("fingerprint") == key and ckpt.get("world") == world:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            sampler.load_state_dict(ckpt["sampler"][rank])
            torch.set_rng_state(ckpt["torch_rng"][rank])
            history, best_state, step = ckpt["history"], ckpt["best_state"], ckpt["step"]
            log(f"resuming from step {step} ({resume})")
        else:
            log(f"{resume} is from a different recipe, model, data or world size; starting over")

    net = model
    if cfg.compile:
        net = torch.compile(net)
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )

    def checkpoint() -> dict:
        states = [(sampler.state_dict(), torch.get_rng_state())]
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, states[0])
            states = gathered
        return {
            "fingerprint": key,
            "world": world,
            "step": step,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "sampler": [s for s, _ in states],
            "torch_rng": [r for _, r in states],
            "history": history,
            "best_state": best_state,
            "finished": done,
        }

    bar = None
    if progress and rank == 0:
        from tqdm import tqdm  # not tqdm.auto: its warning writes a path into a notebook

        bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step")
    done = step >= cfg.steps or history.stopped_early
    sums = history.pending
    net.train()
    while not done:
        ints, floats, targets = _batch(sampler.sample(cfg.batch), device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits, _ = net(ints, floats)
        parts = losses(logits, targets)
        parts["total"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        if torch.isfinite(parts["total"]) and torch.isfinite(grad_norm):
            opt.step()  # a non-finite step is skipped; the schedule still advances
        opt.zero_grad(set_to_none=True)
        lr = sched.get_last_lr()[0]
        sched.step()
        step += 1
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.item()
        if bar is not None:
            bar.update(1)
        if step % cfg.log_every == 0 or (step == cfg.steps and sums):
            n = step % cfg.log_every or cfg.log_every  # a run's last record may cover fewer steps
            history.train.append({"step": step, "lr": lr} | {k: v / n for k, v in sums.items()})
            sums.clear()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            val, preds = evaluate.predict(model, windows, cfg.batch, device, amp)
            targets_np = evaluate.targets_by_head(windows)
            acc = {f"acc_{h}": float((preds[h] == targets_np[h]).mean()) for h in preds}
            history.val.append({"step": step} | val | acc)
            if val["total"] < history.best_loss:
                history.best_loss, history.best_step = val["total"], step
                history.evals_since_best = 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                history.evals_since_best += 1
            heads = " ".join(f"{h} {val[h]:.3f}" for h in evaluate.HEAD_NAMES)
            log(
                f"step {step}: val {val['total']:.4f} (best {history.best_loss:.4f} at "
                f"{history.best_step}); {heads}"
            )
            if cfg.patience and history.evals_since_best >= cfg.patience:
                history.stopped_early = True
                log(f"stopping early: {cfg.patience} passes without a new best")
        done = step >= cfg.steps or history.stopped_early
        if step % cfg.ckpt_every == 0 or done:
            state = checkpoint()
            if rank == 0:
                _save(resume, state)
    if bar is not None:
        bar.close()
    state = checkpoint()
    if world > 1:
        dist.barrier()
    best = best_state if best_state is not None else state["model"]
    return Result(history, best, step, state, rank)
