"""The BC figures of a pipeline run as the tables a note quotes: one row per policy (data size,
the summed loss beside the calibrated copy-last and class-frequency losses, each head's accuracy
against copy-last and its change-frame accuracy, with 95 % intervals over validation games and
the verdicts), the learning curve, and the policies driven through replays (play).

    python studies/bc_tables.py [REPORTS]   # default: reports (e.g. experiments/cpu/reports)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmlib.train.evaluate import HEAD_NAMES
from mmlib.train.intervals import cell


def policy_rows(reports: Path) -> list[str]:
    """One markdown row per `reports/bc/<character>/metrics.json`."""
    head = " | ".join(f"{h} acc % (vs copy-last) | {h} change acc %" for h in HEAD_NAMES)
    lines = [
        f"| policy | train games (rows) | val games (frames) | loss | calibrated copy-last "
        f"| class frequency | {head} |",
        "|" + "---|" * (6 + 2 * len(HEAD_NAMES)),
    ]
    for path in sorted((reports / "bc").glob("*/metrics.json")):
        m = json.loads(path.read_text())
        s, t = m["held_out"], m["held_out"]["total"]
        cells = [
            m["character"],
            f"{m['train_games']} ({m['train_rows']:,})",
            f"{s['n_games']} ({s['n_frames']:,})",
            f"{cell(t['loss'], 1, 3)} {t['loss_vs_copy_last']['verdict']}",
            cell(t["copy_last_loss"], 1, 3),
            cell(t["frequency_loss"], 1, 3),
        ]
        for h in HEAD_NAMES:
            f = s["heads"][h]
            cells += [
                f"{cell(f['acc'], 100, 1)} vs {f['copy_last_acc']['value'] * 100:.1f} "
                f"{f['acc_vs_copy_last']['verdict']}",
                cell(f["change_acc"], 100, 1),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def curve_rows(reports: Path) -> list[str]:
    """The learning curve (`reports/bc_curve/metrics.json`) as markdown rows."""
    path = reports / "bc_curve" / "metrics.json"
    if not path.is_file():
        return []
    m = json.loads(path.read_text())
    lines = [
        f"{m['character']}, {m['steps']} steps of {m['batch']} windows at every size, "
        f"{m['validation_games']} validation games; calibrated copy-last loss "
        f"{cell(m['copy_last_loss'], 1, 3)}",
        "",
        "| train games (rows) | loss | "
        + " | ".join(f"{h} change acc %" for h in HEAD_NAMES)
        + " |",
        "|" + "---|" * (2 + len(HEAD_NAMES)),
    ]
    for p in m["points"]:
        cells = [f"{p['train_games']} ({p['train_rows']:,})", cell(_figure(p, "loss"), 1, 3)]
        cells += [cell(_figure(p, f"{h}_change_acc"), 100, 1) for h in HEAD_NAMES]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def play_rows(reports: Path) -> list[str]:
    """Each policy driven through replays (`reports/play/<character>/metrics.json`): argmax
    agreement with the human's next input teacher-forced, beside copy-last's; the bot's presses
    per second against the human's (press_ratio), teacher-forced and free-running; the free
    run's wavedash-shaped sequences; the streaming policy's agreement with the recompute."""
    paths = sorted((reports / "play").glob("*/metrics.json"))
    if not paths:
        return []
    heads = " | ".join(f"{h} agree % (copy-last)" for h in HEAD_NAMES)
    lines = [
        f"| bot | perspectives (frames) | {heads} | press ratio teacher / free "
        "| free wavedash-shaped | streaming = recompute % |",
        "|" + "---|" * (5 + len(HEAD_NAMES)),
    ]
    for path in paths:
        m = json.loads(path.read_text())
        teach, copy = m["agreement"]["teacher"], m["copy_last_input"]
        sliding = m["drift"]["sliding"]
        cells = [path.parent.name, f"{len(m['games'])} ({m['frames']:,})"]
        cells += [f"{100 * teach[h]['argmax']:.1f} ({100 * copy[h]:.1f})" for h in HEAD_NAMES]
        cells += [
            f"{m['press_ratio']['teacher']:.2f} / {m['press_ratio']['free']:.2f}",
            str(m["health_bot"]["free"]["wavedash_shaped"]),
            f"{100 * min(sliding[h]['argmax_agreement'] for h in HEAD_NAMES):.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _figure(point: dict, name: str) -> dict:
    return {"value": point[name], "lo": point[f"{name}_lo"], "hi": point[f"{name}_hi"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="?", type=Path, default=Path("reports"))
    args = p.parse_args()
    print("\n".join(policy_rows(args.reports)))
    print()
    print("\n".join(curve_rows(args.reports)))
    print()
    print("\n".join(play_rows(args.reports)))


if __name__ == "__main__":
    main()
