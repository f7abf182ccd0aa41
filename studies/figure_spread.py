"""How far the figures of the committed reports moved between two commits, by kind of figure.

Run on two commits that made the same pipeline on different processors (same code and data), it
measures the processor spread the clean-clone check's tolerances come from (tests/figure_kinds.py):

    python studies/figure_spread.py 9a57dd5 49192f0   # AMD EPYC -> Intel Xeon, 2026-12-05

For each kind: how many figures moved, the largest move, and each figure outside its tolerance.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from figure_kinds import KINDS, figures_agree, kind_of  # noqa: E402


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def moves(made, committed, where: str):
    """(where, committed, made) for every number that differs."""
    if isinstance(committed, dict) and isinstance(made, dict):
        for k in committed.keys() & made.keys():
            yield from moves(made[k], committed[k], f"{where}.{k}")
    elif isinstance(committed, list) and isinstance(made, list):
        for i, (a, b) in enumerate(zip(made, committed, strict=False)):
            yield from moves(a, b, f"{where}[{i}]")
    elif isinstance(committed, int | float) and not isinstance(committed, bool):
        if isinstance(made, int | float) and made != committed:
            yield where, committed, made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the commit whose reports are the reference")
    parser.add_argument("after", help="the commit whose reports are compared with them")
    args = parser.parse_args()
    names = _git("diff", "--name-only", args.before, args.after, "--", "reports").split()
    by_kind: dict[str, list] = {k.name: [] for k in KINDS}
    outside = []
    for path in (p for p in names if p.endswith(".json")):
        before = json.loads(_git("show", f"{args.before}:{path}"))
        after = json.loads(_git("show", f"{args.after}:{path}"))
        for where, was, now in moves(after, before, f"{path}:"):
            by_kind[kind_of(where).name].append((abs(now - was), where, was, now))
        outside += figures_agree(after, before, f"{path}:")
    for kind in KINDS:
        rows = sorted(by_kind[kind.name], reverse=True)
        top = f"largest {rows[0][2]} -> {rows[0][3]} at {rows[0][1]}" if rows else ""
        print(f"{kind.name}: {len(rows)} moved (tolerance rel {kind.rel}, abs {kind.abs}); {top}")
    print(f"{len(outside)} outside their tolerance")
    for line in outside:
        print("  " + line)


if __name__ == "__main__":
    main()
