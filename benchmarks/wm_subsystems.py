"""Subsystem models against the monolith: CPU rollout throughput (issue 7's cost column).

In one run, on real validation frames, full reconstruction every frame, batch 64 by default:
- the Mamba-2 monolith (`world_model.mamba2`'s preset): the baseline;
- each standalone subsystem model alone (the rest of the frame read from the replay);
- the five recomposed into one simulator (`rollout.merge`).
Prints frames/s, multiples of real time (60 frames/s) and each ratio to the monolith. Weights are
untrained (the cost does not depend on them); the configs are those of params.yaml.

    python benchmarks/wm_subsystems.py [--threads 1] [--batch 64] [--steps 100]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from wm_scan import median_ms  # this folder's sibling script (on sys.path when run)

from mmlib.worldmodel import data, evaluate, models, rollout
from mmlib.worldmodel.params import decompose_recipe, recipe

REAL_TIME = 60.0  # frames per second of Melee


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ingest", type=Path, default=Path("artifacts/ingest"))
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100, help="rollout frames per timing")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mono_cfg, _, settings = recipe(args.params, "mamba2")
    configs, _, _ = decompose_recipe(args.params)
    _, frames = data.split(
        args.ingest, mono_cfg.encoding, settings["val_frac"], settings["split_seed"]
    )
    starts = evaluate.rollout_starts(frames, args.steps, args.batch, 0)
    runs = {"monolith (mamba2)": (models.build(mono_cfg).eval(), False)}
    subs = {name: models.build(cfg).eval() for name, cfg in configs.items()}
    runs |= {f"{name} alone": (m, True) for name, m in subs.items()}
    runs["recomposed (5 models)"] = (list(subs.values()), False)

    print(f"rollouts of {args.steps} frames at batch {len(starts)}, {args.threads} thread(s)")
    base = None
    for name, (model, oracle) in runs.items():
        ms = median_ms(
            lambda m=model, o=oracle: rollout.rollout(m, frames, starts, args.steps, oracle=o),
            args.repeats,
        )
        fps = len(starts) * args.steps / (ms / 1e3)
        base = base or fps
        params = sum(models.n_params(m) for m in (model if isinstance(model, list) else [model]))
        print(f"{name:24s} {params:>10,} params {fps:>9,.0f} frames/s "
              f"({fps / REAL_TIME:>5.0f}x real time, {fps / base:.2f}x the monolith)")  # fmt: skip


if __name__ == "__main__":
    main()
