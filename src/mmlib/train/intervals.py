"""Honest figures on held-out games: per-perspective sums, a calibrated copy-last yardstick, and
95 % intervals from resampling whole games.

A game's frames are not independent (one player, one matchup, one stage), so an interval over
windows or frames is far too narrow: the unit here is the game. Every non-overlapping window of
every perspective is scored (the rows after a perspective's last whole window are not, as in
`evaluate.val_windows`), the counts are summed per perspective, the perspectives of one game (the
two players of a ditto) are added together, and games are resampled with replacement. Each ratio
is a ratio of resampled sums (sum correct / sum frames), never a mean of per-game ratios.

Yardsticks, each fitted on the training split (`train_yardsticks`):
    copy-last              predict the current input's class. It scores 0 on change frames and
                           makes no false change, by definition, so those two have no copy-last
                           column.
    calibrated copy-last   a log-loss for copying: stay with probability p_stay (the share of
                           training frames whose class stays), else move to a class by its
                           training frequency f with the current class c left out; a frame
                           costs -log(p_stay) if the class stays, else
                           -log((1 - p_stay) f[t] / (1 - f[c])) for target class t.
    class frequency        the training class frequencies, add-one smoothed, whatever the input
                           (`evaluate.frequency_baseline`).

Glossary: P perspectives, G games, H heads (`evaluate.HEAD_NAMES` order), K a head's classes,
N windows, T frames per window, B resamples.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmlib.train import evaluate

HEADS = evaluate.HEAD_NAMES
MODEL_STATS = ("correct", "change_correct", "false_change", "nll")  # need the model
STATS = (
    "frames",  # scored frames
    "correct",  # model argmax == target
    "copy_correct",  # current class == target (copy-last is right)
    "change_frames",  # target != current class
    "change_correct",  # ... and the model is right
    "held_frames",  # target == current class
    "false_change",  # ... and the model predicts another class
    "nll",  # model cross-entropy (nats)
    "copy_nll",  # calibrated copy-last
    "freq_nll",  # class frequency
)
NO_THINNING = np.iinfo(np.int64).max  # `val_windows`' limit: every window
MIN_GAMES = 10  # fewer validation games get intervals but no verdict (the floor)
TOO_FEW = "too few games"
ROUND = 4


def transition_counts(current: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) frame counts by (current class, target class)."""
    idx = current.ravel().astype(np.int64) * n_classes + target.ravel()
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def copy_last_nll(
    current: np.ndarray, target: np.ndarray, p_stay: float, freq: np.ndarray
) -> np.ndarray:
    """The calibrated copy-last cost (nats) of each frame, shaped like `target`."""
    with np.errstate(divide="ignore"):
        moved = np.log1p(-p_stay) + np.log(freq[target]) - np.log1p(-freq[current])
        return np.where(current == target, -np.log(p_stay), -moved)


@dataclass(frozen=True)
class Yardsticks:
    """What the copy-last and class-frequency yardsticks take from the training split."""

    freq: dict[str, np.ndarray]  # head -> (K,) class frequencies, add-one smoothed
    p_stay: dict[str, float]  # head -> share of frames whose class stays

    @classmethod
    def fit(cls, class_counts: dict[str, np.ndarray], transitions: dict[str, np.ndarray]):
        """From each head's target class counts (K,) and (current, target) counts (K, K)."""
        freq = {h: (c + 1) / (c + 1).sum() for h, c in class_counts.items()}
        p_stay = {h: float(np.trace(m) / m.sum()) for h, m in transitions.items()}
        return cls(freq, p_stay)

    def copy_cost(self, head: str) -> np.ndarray:
        """(K, K) calibrated copy-last cost by (current class, target class)."""
        k = np.arange(len(self.freq[head]))
        return copy_last_nll(k[:, None], k[None, :], self.p_stay[head], self.freq[head])


def train_yardsticks(split_dir: Path) -> Yardsticks:
    """Fit the yardsticks on a shard split. Within a perspective the current class of row i is
    the target of row i - 1 (targets are the next frame's controller), so p_stay counts every
    row but each perspective's first; the memory map is read in chunks."""
    targets = np.load(Path(split_dir) / "targets.npy", mmap_mode="r")
    firsts = np.load(Path(split_dir) / "offsets.npy")[:-1]
    n = len(targets)
    counts = {h: np.zeros(evaluate.N_CLASSES[h], np.int64) for h in HEADS}
    moves = {h: np.zeros((evaluate.N_CLASSES[h],) * 2, np.int64) for h in HEADS}
    for start in range(0, n, evaluate.CHUNK_ROWS):
        lo, end = max(start - 1, 0), min(start + evaluate.CHUNK_ROWS, n)
        block = np.asarray(targets[lo:end]).astype(np.int64)  # one row before the chunk
        paired = ~np.isin(np.arange(lo + 1, end), firsts)  # row i paired with row i - 1
        for i, h in enumerate(HEADS):
            counts[h] += np.bincount(block[start - lo :, i], minlength=evaluate.N_CLASSES[h])
            current, target = block[:-1, i][paired], block[1:, i][paired]
            moves[h] += transition_counts(current, target, evaluate.N_CLASSES[h])
    return Yardsticks.fit(counts, moves)


@torch.no_grad()
def head_outputs(
    model: torch.nn.Module, windows: dict[str, np.ndarray], batch: int, device
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each head's argmax class and cross-entropy (nats, float32 as in training) per frame, both
    (N, T)."""
    n, t = windows["targets"].shape[:2]
    out = {h: (np.zeros((n, t), np.int64), np.zeros((n, t), np.float64)) for h in HEADS}
    for i in range(0, n, batch):
        ints = torch.from_numpy(windows["ints"][i : i + batch]).to(device)
        floats = torch.from_numpy(windows["floats"][i : i + batch]).to(device)
        targets = torch.from_numpy(windows["targets"][i : i + batch]).to(device).long()
        logits, _ = model(ints, floats)
        for k, h in enumerate(HEADS):
            x = logits[h].float()
            nll = F.cross_entropy(x.flatten(0, 1), targets[..., k].flatten(), reduction="none")
            out[h][0][i : i + batch] = x.argmax(-1).cpu().numpy()
            out[h][1][i : i + batch] = nll.view(x.shape[:2]).cpu().numpy()
    return out


def perspective_counts(
    windows: dict[str, np.ndarray], outputs: dict[str, tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One perspective's model sums (len(MODEL_STATS), H) and (current, target) counts per head."""
    current, true = evaluate.previous_classes(windows), evaluate.targets_by_head(windows)
    sums = np.zeros((len(MODEL_STATS), len(HEADS)))
    moves = {}
    for k, h in enumerate(HEADS):
        pred, nll = outputs[h]
        right, changed = pred == true[h], true[h] != current[h]
        sums[:, k] = (right.sum(), (right & changed).sum(), (~right & ~changed).sum(), nll.sum())
        moves[h] = transition_counts(current[h], true[h], evaluate.N_CLASSES[h])
    return sums, moves


@dataclass(frozen=True)
class Counts:
    """Per-perspective sums over every scored frame; the yardsticks' sums follow from the
    (current, target) counts once the yardsticks are fitted (`sums`)."""

    games: list[str]  # (P,) the md5 of each perspective's game
    model: np.ndarray  # (P, len(MODEL_STATS), H)
    transitions: dict[str, np.ndarray]  # head -> (P, K, K) frames by (current, target) class

    def sums(self, yard: Yardsticks) -> dict[str, np.ndarray]:
        """Every one of STATS as (P, H)."""
        out = {s: self.model[:, i] for i, s in enumerate(MODEL_STATS)}
        cols = {s: [] for s in ("frames", "copy_correct", "copy_nll", "freq_nll")}
        for h in HEADS:
            m = self.transitions[h].astype(np.float64)
            cols["frames"].append(m.sum((1, 2)))
            cols["copy_correct"].append(np.trace(m, axis1=1, axis2=2))
            with np.errstate(invalid="ignore"):  # an impossible move (cost inf) never seen: 0
                cost = np.where(m > 0, m * yard.copy_cost(h), 0.0)
            cols["copy_nll"].append(cost.sum((1, 2)))
            cols["freq_nll"].append(m.sum(1) @ -np.log(yard.freq[h]))
        out |= {s: np.stack(v, axis=1) for s, v in cols.items()}
        out["change_frames"] = out["frames"] - out["copy_correct"]
        out["held_frames"] = out["copy_correct"]
        return out


def score(
    model: torch.nn.Module,
    perspectives: Iterable[tuple[str, dict[str, np.ndarray]]],
    batch: int,
    device,
) -> Counts:
    """Score (md5, windows) pairs, one perspective each (windows as `val_windows` gives them)."""
    was_training = model.training
    model.eval()
    games, rows, moves = [], [], {h: [] for h in HEADS}
    for md5, windows in perspectives:
        sums, m = perspective_counts(windows, head_outputs(model, windows, batch, device))
        games.append(md5)
        rows.append(sums)
        for h in HEADS:
            moves[h].append(m[h])
    model.train(was_training)
    if not rows:
        empty = {h: np.zeros((0, evaluate.N_CLASSES[h], evaluate.N_CLASSES[h])) for h in HEADS}
        return Counts([], np.zeros((0, len(MODEL_STATS), len(HEADS))), empty)
    return Counts(games, np.stack(rows), {h: np.stack(v) for h, v in moves.items()})


def split_perspectives(shards: Path, window: int, split: str = "val"):
    """(md5, every window) of each perspective of a shard split, in row order."""
    manifest = json.loads((Path(shards) / "manifest.json").read_text())
    for g, game in enumerate(manifest[split]["games"]):
        yield game["md5"], evaluate.val_windows(Path(shards) / split, window, NO_THINNING, [g])


def windows_of(rows: dict[str, np.ndarray], window: int) -> dict[str, np.ndarray]:
    """Every non-overlapping window of one perspective's rows (`val_windows` of one game)."""
    starts = np.arange(0, len(rows["targets"]) - window + 1, window)
    idx = starts[:, None] + np.arange(window)
    return {name: rows[name][idx] for name in ("ints", "floats", "targets")}


def verdict(
    lo: float | None, hi: float | None, lower_is_better: bool = False, n_games: int = MIN_GAMES
) -> str | None:
    """`beats` when the interval of (model - yardstick) lies on the good side of 0, `loses` on
    the other, else `tie`; `too few games` below MIN_GAMES, where resampling a handful of games
    (one, on the smoke set) gives an interval of almost no width that proves nothing."""
    if lo is None:
        return None
    if n_games < MIN_GAMES:
        return TOO_FEW
    if lower_is_better:
        lo, hi = -hi, -lo
    return "beats" if lo > 0 else "loses" if hi < 0 else "tie"


def _figure(point: float, draws: np.ndarray, level: float) -> dict:
    """A value and its percentile interval over the resamples (None where undefined)."""
    tail = 50 * (1 - level)
    finite = draws[np.isfinite(draws)]
    if not np.isfinite(point) or len(finite) == 0:
        return {"value": None, "lo": None, "hi": None}
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return {"value": round(float(point), ROUND), "lo": round(float(lo), ROUND),
            "hi": round(float(hi), ROUND)}  # fmt: skip


FIGURES = {  # name -> (numerator, denominator) among STATS
    "acc": ("correct", "frames"),
    "copy_last_acc": ("copy_correct", "frames"),
    "change_acc": ("change_correct", "change_frames"),
    "false_change": ("false_change", "held_frames"),
    "loss": ("nll", "frames"),
    "copy_last_loss": ("copy_nll", "frames"),
    "frequency_loss": ("freq_nll", "frames"),
}


def _resampled(sums: dict[str, np.ndarray], games: list[str], n_boot: int, seed: int):
    """Each stat summed over all games (H,) and over `n_boot` resamples of whole games (B, H):
    a seeded multinomial draw of how often each game (sorted md5) appears, so two models scored
    on the same games share their resamples."""
    md5s, owner = np.unique(np.asarray(games, dtype=str), return_inverse=True)
    n_games = len(md5s)
    per_game = {}
    for name, v in sums.items():
        per_game[name] = np.zeros((n_games, len(HEADS)))
        np.add.at(per_game[name], owner, v)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n_games, np.full(n_games, 1 / n_games), size=n_boot).astype(float)
    return {k: v.sum(0) for k, v in per_game.items()}, {k: weights @ v for k, v in per_game.items()}


def _ratio(num: str, den: str, x: dict) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return x[num] / x[den]


def bootstrap(
    sums: dict[str, np.ndarray],
    games: list[str],
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Every figure with its interval from `n_boot` resamples of whole games (a seeded
    multinomial draw of how often each game appears), from per-perspective `sums` (STATS ->
    (P, H)) and each perspective's game md5. Per head: accuracy, copy-last accuracy and their
    paired difference (one resample for both) with a verdict; accuracy on change frames and
    the share of held frames the model leaves (copy-last scores 0 on both by definition); the
    loss, the calibrated copy-last and class-frequency losses, and the paired loss difference
    with a verdict (lower is better). `total`: the losses summed over heads."""
    full, boot = _resampled(sums, games, n_boot, seed)
    n_games = len(set(games))
    point = {k: _ratio(*v, full) for k, v in FIGURES.items()}
    draws = {k: _ratio(*v, boot) for k, v in FIGURES.items()}
    for x in (point, draws):
        x["acc_vs_copy_last"] = x["acc"] - x["copy_last_acc"]
        x["loss_vs_copy_last"] = x["loss"] - x["copy_last_loss"]
    heads = {}
    for k, h in enumerate(HEADS):
        heads[h] = {name: _figure(point[name][k], draws[name][..., k], level) for name in point}
        heads[h]["change_frames"] = int(full["change_frames"][k])
        heads[h]["held_frames"] = int(full["held_frames"][k])
        for name, lower in (("acc_vs_copy_last", False), ("loss_vs_copy_last", True)):
            f = heads[h][name]
            f["verdict"] = verdict(f["lo"], f["hi"], lower, n_games)
    total = {}
    for name in ("loss", "copy_last_loss", "frequency_loss", "loss_vs_copy_last"):
        total[name] = _figure(point[name].sum(), draws[name].sum(-1), level)
    total["loss_vs_copy_last"]["verdict"] = verdict(
        total["loss_vs_copy_last"]["lo"], total["loss_vs_copy_last"]["hi"], True, n_games
    )
    return {
        "n_games": n_games,
        "n_perspectives": len(games),
        "n_frames": int(full["frames"][0]),
        "n_boot": n_boot,
        "seed": seed,
        "level": level,
        "heads": heads,
        "total": total,
    }


def summary(counts: Counts, yard: Yardsticks, n_boot: int = 2000, seed: int = 0) -> dict:
    """`bootstrap` of scored perspectives against fitted yardsticks, with each head's p_stay."""
    out = bootstrap(counts.sums(yard), counts.games, n_boot, seed)
    return out | {"p_stay": {h: round(yard.p_stay[h], ROUND) for h in HEADS}}


def paired(
    a: Counts, b: Counts, yard: Yardsticks, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Model `a` against model `b` scored on the same perspectives: per head the differences
    a - b in accuracy and change-frame accuracy, and the difference in summed loss, each with
    its interval from one set of resampled games and a verdict for `a` (`beats`, `tie`,
    `loses`; lower loss is better)."""
    if a.games != b.games:
        raise ValueError("paired: the two models were scored on different perspectives")
    full_a, boot_a = _resampled(a.sums(yard), a.games, n_boot, seed)
    full_b, boot_b = _resampled(b.sums(yard), b.games, n_boot, seed)
    out, n_games = {"heads": {}}, len(set(a.games))
    for name in ("acc", "change_acc"):
        point = _ratio(*FIGURES[name], full_a) - _ratio(*FIGURES[name], full_b)
        draws = _ratio(*FIGURES[name], boot_a) - _ratio(*FIGURES[name], boot_b)
        for k, h in enumerate(HEADS):
            f = _figure(point[k], draws[:, k], level)
            v = verdict(f["lo"], f["hi"], n_games=n_games)
            out["heads"].setdefault(h, {})[name] = f | {"verdict": v}
    point = (_ratio(*FIGURES["loss"], full_a) - _ratio(*FIGURES["loss"], full_b)).sum()
    draws = (_ratio(*FIGURES["loss"], boot_a) - _ratio(*FIGURES["loss"], boot_b)).sum(-1)
    f = _figure(point, draws, level)
    out["loss"] = f | {"verdict": verdict(f["lo"], f["hi"], True, n_games)}
    return out | {"n_games": n_games, "n_boot": n_boot, "seed": seed, "level": level}


def cell(f: dict, scale: float, digits: int) -> str:
    """A figure as `value [lo, hi]` (scaled, rounded), or n/a."""
    if f["value"] is None:
        return "n/a"
    v, lo, hi = (f[k] * scale for k in ("value", "lo", "hi"))
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def markdown(s: dict) -> str:
    """The summary as a markdown table, one row per head and the summed losses, each figure as
    value [lo, hi]; accuracies and shares in %, losses in nats; then a caption line."""
    columns = ["head", "acc %", "copy-last acc %", "acc - copy-last (pp)", "vs copy-last",
               "change acc %", "false change %", "loss", "calibrated copy-last loss",
               "class-frequency loss", "loss - copy-last", "vs copy-last"]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for h in HEADS:
        f = s["heads"][h]
        pct = [cell(f[k], 100, 1) for k in ("acc", "copy_last_acc", "acc_vs_copy_last")]
        shares = [cell(f[k], 100, 1) for k in ("change_acc", "false_change")]
        nats = [cell(f[k], 1, 3) for k in ("loss", "copy_last_loss", "frequency_loss")]
        diff = f["loss_vs_copy_last"]
        cells = [h, *pct, f["acc_vs_copy_last"]["verdict"] or "n/a", *shares, *nats,
                 cell(diff, 1, 3), diff["verdict"] or "n/a"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    t = s["total"]
    nats = [cell(t[k], 1, 3) for k in ("loss", "copy_last_loss", "frequency_loss")]
    diff = t["loss_vs_copy_last"]
    cells = ["total", "", "", "", "", "", "", *nats, cell(diff, 1, 3), diff["verdict"] or "n/a"]
    lines.append("| " + " | ".join(cells) + " |")
    pct = round(100 * s["level"])
    lines.append(
        f"\n{s['n_games']} games ({s['n_perspectives']} perspectives, {s['n_frames']:,} frames); "
        f"{pct} % intervals from {s['n_boot']} resamples of whole games."
    )
    return "\n".join(lines)
