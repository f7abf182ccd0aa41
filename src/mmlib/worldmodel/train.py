"""Training a world model (SPEC 6.4): AdamW (weight decay 1e-5), grad-norm clip 1.0, cosine
annealing stepped once per epoch over the epochs (as published), the best model by validation
loss, and a resume file written after every epoch so a killed run continues where it stopped.

An epoch is every training clip once, in a seeded order: for the MLP every K-frame window; for
the Mamba-2, clips of `clip` frames tiled over each game from a random offset (a new offset every
epoch), each clip giving a target at every position.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmlib import cpu_kernels
from mmlib.atomic import atomic_path
from mmlib.errors import UsageError
from mmlib.worldmodel import encoding, models, readout
from mmlib.worldmodel.config import ModelConfig
from mmlib.worldmodel.data import Frames
from mmlib.worldmodel.losses import losses

RESUME_FILE = "last.pt"
MODEL_FILE = "model.pt"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 2
    batch: int = 256  # clips per step
    lr: float = 1e-3
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    clip: int = 60  # Mamba-2 training clip (frames); the MLP's clip is its context K
    change_weight: float = 1.0  # E010b transition weighting (1 = off)
    float_loss: str = "mse"  # float heads: mse (published) | huber (delta 1, in scale units)
    seed: int = 0
    threads: int = 2  # fixed, so a CPU run gives the same weights on any machine

    def __post_init__(self):
        for name in ("epochs", "batch", "clip"):
            if getattr(self, name) < 1:
                raise UsageError(
                    f"world_model.{name} must be at least 1, not {getattr(self, name)}"
                )
        if self.float_loss not in ("mse", "huber"):
            raise UsageError(f"world_model.float_loss {self.float_loss!r} is not mse or huber")

    @classmethod
    def from_params(cls, section: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - names)
        if unknown:
            raise UsageError(f"unknown world_model training keys {unknown}; known: {sorted(names)}")
        return cls(**section)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class History:
    train: list[dict] = field(default_factory=list)  # per epoch: {epoch, lr, total, <head>...}
    val: list[dict] = field(default_factory=list)  # per epoch: {epoch, total, <head>...}
    best_loss: float = math.inf
    best_epoch: int = 0


def clip_width(model_cfg: ModelConfig, cfg: TrainConfig) -> int:
    return model_cfg.encoding.context if model_cfg.arch == "mlp" else cfg.clip


def epoch_starts(frames: Frames, width: int, tiled: bool, rng: np.random.Generator):
    """The clip starts of one epoch, shuffled: every window, or tiles from a random offset."""
    if not tiled:  # every window: the order is the only array of one int64 per start
        order = rng.permutation(frames.n_starts(width))
        return frames.start_rows(width, order, out=order)
    span = width + frames.cfg.lead
    tiles = []
    for a, b in zip(frames.offsets[:-1], frames.offsets[1:], strict=True):
        first = a + int(rng.integers(width)) if b - a >= span + width else a
        tiles.append(np.arange(first, b - span + 1, width))
    starts = np.concatenate(tiles)
    return starts[rng.permutation(len(starts))]


def step_outputs(model, frames: Frames, starts, width: int):
    """(outputs, targets) of a batch of clips, positions aligned (the MLP: its last one)."""
    floats, ints, stage = frames.clip(starts, width)
    enc = frames.cfg
    tgt = encoding.targets(enc, floats, ints)
    if model.cfg.owns:
        tgt = encoding.restrict(enc, tgt, model.cfg.owns)
    ctrl = encoding.next_ctrl(enc, floats)
    out = model(floats[:, :width], ints[:, :width], stage, ctrl)
    if next(iter(out.values())).shape[1] != width:  # one prediction per window
        tgt = {k: v[:, -1:] for k, v in tgt.items()}
    return out, tgt


def validate(
    model, frames: Frames, width: int, batch: int, float_loss: str = "mse"
) -> dict[str, float]:
    """Mean losses over the validation clips (tiled without overlap, so each frame once)."""
    model.eval()
    step = 1 if isinstance(model, models.FrameStackMLP) else width
    total = frames.n_starts(width, step)
    sums, n = {}, 0
    with torch.inference_mode():
        for i in range(0, total, batch):
            starts = frames.start_rows(width, np.arange(i, min(i + batch, total)), step)
            out, tgt = step_outputs(model, frames, starts, width)
            k = len(starts)
            for name, v in losses(
                out, tgt, scales=model.heads.scales(), float_loss=float_loss
            ).items():
                sums[name] = sums.get(name, 0.0) + v.item() * k
            n += k
    model.train()
    return {name: v / n for name, v in sums.items()}


def fingerprint(model_cfg: ModelConfig, cfg: TrainConfig, train: Frames) -> str:
    """What a resume file must match: config, recipe, data, torch, the CPU-kernel pin and the
    training code."""
    h = hashlib.sha256(json.dumps([model_cfg.to_dict(), cfg.to_dict()], sort_keys=True).encode())
    h.update(json.dumps(train.md5s).encode() + torch.__version__.encode())
    h.update(cpu_kernels.setting().encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        h.update(source.read_bytes())
    return h.hexdigest()[:16]


def _save(path: Path, obj: dict) -> None:
    # Serialised in memory first: torch names the zip records after the file it writes, and the
    # temporary name holds a pid, so saving to it directly would make equal weights differ in bytes.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def train(model_cfg: ModelConfig, cfg: TrainConfig, train_frames: Frames, val_frames: Frames,
          run_dir: Path, log=print, progress=None):  # fmt: skip
    """Train, resuming from `run_dir/last.pt` when it matches; returns (best model, History)."""
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.seed)
    model = models.build(model_cfg)
    if model_cfg.scale != "none":  # before any step; a resumed run restores the same buffers
        model.heads.set_scales(*readout.fit_scales(model_cfg, train_frames))
    if model_cfg.standard_inputs:
        model.encoder.float_mean, model.encoder.float_std = readout.fit_inputs(train_frames)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    rng = np.random.default_rng(cfg.seed)
    history, best, epoch = History(), None, 0
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = fingerprint(model_cfg, cfg, train_frames)
    resume = run_dir / RESUME_FILE
    if resume.is_file():
        ckpt = torch.load(resume, map_location="cpu", weights_only=False)
        if ckpt.get("fingerprint") == key:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            rng.bit_generator.state = ckpt["rng"]
            torch.set_rng_state(ckpt["torch_rng"])
            history, best, epoch = ckpt["history"], ckpt["best"], ckpt["epoch"]
            log(f"resuming after epoch {epoch} ({resume})")
        else:
            log(f"{resume} is from a different config, recipe or data; starting over")

    width = clip_width(model_cfg, cfg)
    tiled = model_cfg.arch != "mlp"
    model.train()
    while epoch < cfg.epochs:
        starts = epoch_starts(train_frames, width, tiled, rng)
        batches = range(0, len(starts), cfg.batch)
        sums = {}
        lr = sched.get_last_lr()[0]
        for i in progress(batches, desc=f"epoch {epoch + 1}") if progress else batches:
            out, tgt = step_outputs(model, train_frames, starts[i : i + cfg.batch], width)
            parts = losses(out, tgt, cfg.change_weight, model.heads.scales(), cfg.float_loss)
            parts["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            for name, v in parts.items():
                sums[name] = sums.get(name, 0.0) + v.item()
        sched.step()
        epoch += 1
        history.train.append(
            {"epoch": epoch, "lr": lr} | {k: v / len(batches) for k, v in sums.items()}
        )
        val = validate(model, val_frames, width, cfg.batch, cfg.float_loss)
        history.val.append({"epoch": epoch} | val)
        if val["total"] < history.best_loss:
            history.best_loss, history.best_epoch = val["total"], epoch
            best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        log(f"epoch {epoch}: train {history.train[-1]['total']:.4f}, val {val['total']:.4f} "
            f"(best {history.best_loss:.4f} at epoch {history.best_epoch})")  # fmt: skip
        _save(resume, {
            "fingerprint": key, "epoch": epoch, "model": model.state_dict(),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
            "history": history, "best": best,
        })  # fmt: skip
    model.load_state_dict(best if best is not None else model.state_dict())
    return model.eval(), history


def save(path: Path, model, history: History, cfg: TrainConfig) -> None:
    """A checkpoint that carries its own config: `load` needs nothing else."""
    _save(Path(path), {
        "format": "mmlib-worldmodel-1", "config": model.cfg.to_dict(), "train": cfg.to_dict(),
        "state_dict": model.state_dict(), "best_epoch": history.best_epoch,
    })  # fmt: skip


def load(path: Path):
    """The model in a world-model checkpoint (eval mode), or a one-line UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no world-model checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (torch raises many types for a bad file)
        raise UsageError(f"{path}: not a readable torch checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "mmlib-worldmodel-1":
        raise UsageError(f"{path}: not an mmlib world-model checkpoint (no `format` key)")
    model = models.build(ModelConfig.from_dict(ckpt["config"]))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise UsageError(
            f"{path}: weights do not fit its config ({str(e).splitlines()[0]})"
        ) from None
    return model.eval()
