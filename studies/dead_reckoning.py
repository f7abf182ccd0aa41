"""How far physics alone predicts the next frame's position, and where it fails (issue 19; the
note `research-notes/2026-12-06-yardsticks.md`).

On the `wm_frames` store, per split, the one-frame position error per axis (game units, both
players) of:
- copy-last-frame (nothing moves);
- dead reckoning (`worldmodel.yardsticks`: the last frame's velocity);
- dead reckoning with the *new* frame's velocity: an oracle, what a model that predicted every
  velocity exactly would get without learning anything else.
Then how much of each mean comes from errors of each size: large errors are respawns and
teleports (> 50 units), landings, ledge grabs and platform snaps (1-50).

    .venv/bin/python studies/dead_reckoning.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from mmlib.worldmodel import encoding, frame_store, yardsticks
from mmlib.worldmodel.encoding import SCALE

BINS = (0, 1, 5, 50, np.inf)  # game units


def errors(frames) -> dict[str, np.ndarray]:
    """Per rule, |error| of every (frame, player, axis), game units."""
    enc = frames.cfg
    pos = yardsticks.position_index()
    out = {"copy last frame": [], "dead reckoning": [], "oracle: the new velocity": []}
    for g in range(len(frames.md5s)):
        game = frames.game(g)
        f, i, _ = game.clip(np.zeros(1, dtype=np.int64), game.n_frames - enc.lead)
        tgt = {k: v[0].numpy() for k, v in encoding.targets(enc, f, i).items()}
        true = tgt["continuous"][:, pos]
        new_velocity = tgt["prev_velocity"] + tgt["velocity"]
        rules = {
            "copy last frame": 0 * true,
            "dead reckoning": yardsticks.continuous_delta(tgt["prev_velocity"],
                                                          tgt["prev_binary"])[:, pos],
            "oracle: the new velocity": yardsticks.continuous_delta(new_velocity,
                                                                    tgt["prev_binary"])[:, pos],
        }  # fmt: skip
        for name, guess in rules.items():
            out[name].append(np.abs(guess - true).ravel() / SCALE["x"])
    return {k: np.concatenate(v) for k, v in out.items()}


def table(frames) -> pd.DataFrame:
    rows = {}
    for name, e in errors(frames).items():
        row = {"MAE": e.mean(), "exact (< 0.001)": (e < 1e-3).mean()}
        for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
            part = (e >= lo) & (e < hi)
            row[f"from {lo}-{hi}"] = e[part].sum() / e.size
            row[f"share {lo}-{hi}"] = part.mean()
        rows[name] = row
    return pd.DataFrame(rows).T


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=Path, default=Path("artifacts/wm_frames"))
    args = ap.parse_args(argv)
    for split, frames in zip(frame_store.SPLITS, frame_store.load(args.frames), strict=True):
        print(f"\n{split}: {len(frames.md5s)} games, {frames.n_frames:,} frames\n")
        print(table(frames).to_markdown(floatfmt=".4g"))


if __name__ == "__main__":
    main()
