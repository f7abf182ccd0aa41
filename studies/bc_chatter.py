"""Button chatter: how often a teacher-forced bot presses against the human, per decoding
(issue 19; the note `research-notes/2026-12-06-yardsticks.md`).

Drives each trained policy (`artifacts/bc/<character>`) through the first `--frames` frames of
its validation games, teacher-forced (the human's inputs as history) and free-running (its own:
as in live play), once per button-head temperature, and prints per character, mode and
temperature: presses per second (bot and human, and
their ratio), TRIG presses and wavedash-shaped inputs (bot and human), and the button head's
sampled agreement with the human. The other heads keep `play.temperature`.

    .venv/bin/python studies/bc_chatter.py --temperatures 1 0.75 0.5 0.25
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import pandas as pd
import torch

from mmlib.atomic import write_text
from mmlib.checkpoint.directory import load_policy
from mmlib.config import stage_params
from mmlib.play import drive
from mmlib.play.evaluate import validation_games
from mmlib.play.policy import head_temperatures


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--temperatures", nargs="+", type=float, default=[1.0, 0.75, 0.5, 0.25])
    ap.add_argument("--characters", nargs="+", help="default: params.yaml play.characters")
    ap.add_argument("--frames", type=int, default=2400, help="fed frames per game")
    ap.add_argument("--out", type=Path, default=Path("studies/results/bc/chatter.md"))
    ap.add_argument("--modes", nargs="+", choices=("teacher", "free"), default=["teacher", "free"])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--policies", type=Path, default=Path("artifacts/bc"))
    ap.add_argument("--shards", type=Path, default=Path("artifacts/shards"))
    ap.add_argument("--games", type=Path, default=Path("artifacts/ingest/games.parquet"))
    args = ap.parse_args(argv)
    settings = stage_params("play", args.params)
    torch.set_num_threads(settings["threads"])
    base = head_temperatures(settings["temperature"])
    rows = {}
    for character in args.characters or settings["characters"]:
        policy = load_policy(args.policies / character)
        games = validation_games(args.shards / character, args.games)
        for mode, t in itertools.product(args.modes, args.temperatures):
            tables = [
                drive.drive(
                    policy,
                    g["replay"],
                    g["port"],
                    mode=mode,
                    temperature=base | {"button": t},
                    seed=settings["seed"],
                    max_frames=args.frames,
                )  # fmt: skip
                for g in games
            ]
            bot = [drive.health(x, "bot") for x in tables]
            human = [drive.health(x, "human") for x in tables]
            frames = sum(h["frames"] for h in bot)
            presses = {w: sum(h["presses_per_s"] * h["frames"] for h in hs) / frames
                       for w, hs in (("bot", bot), ("human", human))}  # fmt: skip
            agree = sum(drive.agreement(x)["button"]["sampled"] * x.num_rows for x in tables)
            rows[(character, mode, t)] = {
                "frames": frames,
                "bot presses/s": presses["bot"],
                "human presses/s": presses["human"],
                "ratio": presses["bot"] / presses["human"],
                "bot TRIG": sum(h["trig_presses"] for h in bot),
                "human TRIG": sum(h["trig_presses"] for h in human),
                "bot wavedash": sum(h["wavedash_shaped"] for h in bot),
                "human wavedash": sum(h["wavedash_shaped"] for h in human),
                "button agreement": agree / frames,
            }
            print(character, mode, t, rows[(character, mode, t)], flush=True)
    table = pd.DataFrame(rows).T
    table.index.names = ["character", "mode", "button temperature"]
    text = table.to_markdown(floatfmt=".3g")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
