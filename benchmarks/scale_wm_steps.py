"""A few world-model training steps on a frame store, as `worldmodel.train.train` takes them.

Part of the scale harness (benchmarks/scale.py runs it in its own process to measure memory):
the epoch's clip order is drawn over the whole store (`train.epoch_starts`, the one array of one
int64 per start), then `--steps` batches are taken, with the loss, backward and optimiser step of
training. Writes `<frames>/steps.json` with the frames the steps read.

    .venv/bin/python benchmarks/scale_wm_steps.py --frames DIR --params params.yaml [--arch mlp]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mmlib.worldmodel import frame_store, train
from mmlib.worldmodel.params import recipe


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=Path, required=True, help="a `mmlib wm-frames` store")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--arch", default="mlp", help="one of world_model.archs")
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args(argv)
    model_cfg, cfg, _ = recipe(args.params, args.arch)
    train_frames, val_frames = frame_store.load(args.frames, model_cfg.encoding)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    task = train.WorldModelTask(model_cfg, cfg, train_frames, val_frames)
    model = task.build()
    opt, _ = task.optimizer(model)
    batches = task.batches(rank=0)
    for _ in range(args.steps):
        task.loss(model, batches.next())["total"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    width = task.width
    frames = args.steps * cfg.batch * (width + model_cfg.encoding.lead)
    (args.frames / "steps.json").write_text(json.dumps({"frames": frames, "steps": args.steps}))


if __name__ == "__main__":
    main()
