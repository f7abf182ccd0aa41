"""Training a world model (SPEC 6.4) as a task of the training engine (`mmlib.engine`): AdamW
(weight decay 1e-5), grad-norm clip 1.0, cosine annealing over the epochs with the rate held within
an epoch (as published), the best model by validation loss, evaluated once an epoch. The engine
brings the device (CUDA when present, where the Mamba-2 takes mamba_ssm's fused scan), bf16,
compile, DDP and the resume file, written every epoch.

An epoch is every training clip once, in a seeded order: for the MLP every K-frame window; for
the Mamba-2, clips of `clip` frames tiled over each game from a random offset (a new offset every
epoch), each clip giving a target at every position. The engine counts steps, so a run is
`epochs` times an epoch's nominal number of batches (`steps_per_epoch`: exact for the MLP; for the
tiled Mamba-2 the count at offset 0, which a random offset moves by at most one clip per game).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmlib import engine
from mmlib.atomic import write_torch
from mmlib.engine import RESUME_FILE, History  # noqa: F401  (the names callers use)
from mmlib.errors import UsageError
from mmlib.worldmodel import encoding, models, readout
from mmlib.worldmodel.config import ModelConfig, TrainConfig
from mmlib.worldmodel.data import Frames
from mmlib.worldmodel.losses import losses

MODEL_FILE = "model.pt"
FORMAT = "mmlib-worldmodel-1"


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


def steps_per_epoch(frames: Frames, width: int, tiled: bool, batch: int) -> int:
    """Batches in an epoch: every window's, or the tiles' at offset 0 (see the module note)."""
    if not tiled:
        return math.ceil(frames.n_starts(width) / batch)
    room = np.diff(frames.offsets) - (width + frames.cfg.lead) + 1
    tiles = int(np.sum((np.maximum(room, 0) + width - 1) // width))
    return max(math.ceil(tiles / batch), 1)


class ClipStream:
    """Epoch after epoch of shuffled clips, one batch at a time; resumable mid-epoch (the state
    is the generator's state before the epoch's draw, and the batches taken since)."""

    def __init__(self, frames: Frames, width: int, tiled: bool, batch: int, seed):
        self.frames, self.width, self.tiled, self.batch = frames, width, tiled, batch
        self.rng = np.random.default_rng(seed)
        self.before, self.starts, self.taken = None, None, 0

    def _draw(self) -> None:
        self.before = self.rng.bit_generator.state
        self.starts = epoch_starts(self.frames, self.width, self.tiled, self.rng)
        self.taken = 0

    def next(self) -> tuple[torch.Tensor, ...]:
        if self.starts is None or self.taken * self.batch >= len(self.starts):
            self._draw()
        k = self.taken * self.batch
        self.taken += 1
        return self.frames.clip(self.starts[k : k + self.batch], self.width)

    def state_dict(self) -> dict:
        rng = self.before if self.starts is not None else self.rng.bit_generator.state
        return {"rng": rng, "taken": self.taken, "drawn": self.starts is not None}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.starts = None
        if state["drawn"]:
            self._draw()
            self.taken = state["taken"]


def step_outputs(model, clip: tuple[torch.Tensor, ...], width: int, model_cfg: ModelConfig):
    """(outputs, targets) of a batch of clips (floats, ints, stage), positions aligned (a model
    that predicts once per window: its last position). `model` may be wrapped (DDP, compile)."""
    floats, ints, stage = clip
    enc = model_cfg.encoding
    tgt = encoding.targets(enc, floats, ints)
    if model_cfg.owns:
        tgt = encoding.restrict(enc, tgt, model_cfg.owns)
    ctrl = encoding.next_ctrl(enc, floats)
    out = model(floats[:, :width], ints[:, :width], stage, ctrl)
    if next(iter(out.values())).shape[1] != width:  # one prediction per window
        tgt = {k: v[:, -1:] for k, v in tgt.items()}
    return out, tgt


def _unwrap(model):
    """The model inside a DDP or compiled wrapper."""
    inner = getattr(model, "module", model)
    return getattr(inner, "_orig_mod", inner)


def validate(model, frames: Frames, width: int, batch: int, float_loss: str = "mse",
             device=None, amp=None) -> dict[str, float]:  # fmt: skip
    """Mean losses over the validation clips (tiled without overlap, so each frame once)."""
    device = device or torch.device("cpu")
    was_training = model.training
    model.eval()
    step = width if model.every_position else 1
    total = frames.n_starts(width, step)
    sums, n = {}, 0
    with torch.inference_mode():
        for i in range(0, total, batch):
            starts = frames.start_rows(width, np.arange(i, min(i + batch, total)), step)
            clip = engine.to_device(frames.clip(starts, width), device)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                out, tgt = step_outputs(model, clip, width, model.cfg)
                parts = losses(out, tgt, scales=model.heads.scales(), float_loss=float_loss)
            for name, v in parts.items():
                sums[name] = sums.get(name, 0.0) + v.item() * len(starts)
            n += len(starts)
    model.train(was_training)
    return {name: v / n for name, v in sums.items()}


@dataclass
class WorldModelTask:
    model_cfg: ModelConfig
    cfg: TrainConfig
    train_frames: Frames
    val_frames: Frames

    def __post_init__(self):
        self.width = clip_width(self.model_cfg, self.cfg)
        self.tiled = self.model_cfg.arch != "mlp"
        self.epoch_steps = steps_per_epoch(self.train_frames, self.width, self.tiled,
                                           self.cfg.batch)  # fmt: skip

    @property
    def round_steps(self) -> int:
        """Steps between evaluations, each one step of the cosine: an epoch, or under a fixed
        budget (`steps`, e.g. to match two architectures) `steps / epochs`."""
        return max(1, self.cfg.steps // self.cfg.epochs) if self.cfg.steps else self.epoch_steps

    def schedule(self) -> engine.Schedule:
        e = self.round_steps
        return engine.Schedule(
            steps=self.cfg.epochs * e, eval_every=e, log_every=e, ckpt_every=e,
            grad_clip=self.cfg.grad_clip, precision=self.cfg.precision,
            compile=self.cfg.compile, seed=self.cfg.seed, threads=self.cfg.threads,
        )  # fmt: skip

    def build(self) -> torch.nn.Module:
        model = models.build(self.model_cfg)
        if self.model_cfg.scale != "none":  # before any step; a resumed run restores the same
            model.heads.set_scales(*readout.fit_scales(self.model_cfg, self.train_frames))
        if self.model_cfg.standard_inputs:
            model.encoder.float_mean, model.encoder.float_std = readout.fit_inputs(
                self.train_frames
            )
        return model

    def optimizer(self, model):
        opt = torch.optim.AdamW(model.parameters(), lr=self.cfg.lr,
                                weight_decay=self.cfg.weight_decay)  # fmt: skip
        epochs, e = self.cfg.epochs, self.round_steps
        # cosine over the epochs, the rate held within one (CosineAnnealingLR stepped per epoch)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step // e, epochs) / epochs))
        )
        return opt, sched

    def batches(self, rank: int) -> ClipStream:
        seed = self.cfg.seed if rank == 0 else [self.cfg.seed, rank]  # each rank its own clips
        return ClipStream(self.train_frames, self.width, self.tiled, self.cfg.batch, seed)

    def loss(self, model, clip) -> dict:
        out, tgt = step_outputs(model, clip, self.width, self.model_cfg)
        scales = _unwrap(model).heads.scales()
        return losses(out, tgt, self.cfg.change_weight, scales, self.cfg.float_loss)

    def evaluate(self, model, device, amp) -> dict[str, float]:
        return validate(model, self.val_frames, self.width, self.cfg.batch, self.cfg.float_loss,
                        device, amp)  # fmt: skip

    def describe(self, val: dict) -> str:
        return ""

    def identity(self) -> dict:
        return {"world_model": self.model_cfg.to_dict(), "train": self.cfg.to_dict()}

    def data_identity(self) -> bytes:
        return repr((self.train_frames.md5s, self.val_frames.md5s)).encode()


def fingerprint(model_cfg: ModelConfig, cfg: TrainConfig, train: Frames, val: Frames) -> str:
    task = WorldModelTask(model_cfg, cfg, train, val)
    return engine.fingerprint(task, task.schedule())


def train(model_cfg: ModelConfig, cfg: TrainConfig, train_frames: Frames, val_frames: Frames,
          run_dir: Path, log=print, progress: bool = False):  # fmt: skip
    """Train, resuming from `run_dir/last.pt` when it matches; returns (the best model on the
    CPU in eval mode, engine.Result with `epoch_steps` added: an epoch's count of steps, which
    the history's steps are counted in)."""
    task = WorldModelTask(model_cfg, cfg, train_frames, val_frames)
    result = engine.train(task, task.schedule(), run_dir, log=log, progress=progress)
    result.epoch_steps = task.epoch_steps
    model = models.build(model_cfg)
    model.load_state_dict(result.best_state)
    return model.eval(), result


def save(path: Path, model, result: engine.Result, cfg: TrainConfig) -> None:
    """A checkpoint that carries its own config: `load` needs nothing else."""
    write_torch(Path(path), {
        "format": FORMAT, "config": model.cfg.to_dict(), "train": cfg.to_dict(),
        "state_dict": model.state_dict(), "best_step": result.history.best_step,
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
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UsageError(f"{path}: not an mmlib world-model checkpoint (no `format` key)")
    model = models.build(ModelConfig.from_dict(ckpt["config"]))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise UsageError(
            f"{path}: weights do not fit its config ({str(e).splitlines()[0]})"
        ) from None
    return model.eval()
