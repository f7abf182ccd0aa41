"""Random training windows from a shard split: fast, seeded, resumable.

Every start s of a game with at least `window` rows is equally likely (uniform over valid
starts, so long games give more windows); a batch is one vectorised gather per array from the
memory-mapped shard files (a strided view makes each window one contiguous block). The valid
starts are never listed: the k-th is found from each game's count of them (two int64 per game,
not one per start), and `starts_of(k)` equals the k-th entry of the concatenated per-game ranges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ARRAYS = ("ints", "floats", "targets", "targets_raw")


class WindowSampler:
    def __init__(
        self,
        split_dir: Path,
        window: int = 180,
        seed: int = 0,
        mmap: bool = True,
        games: np.ndarray | None = None,
    ):
        """`games`: draw only from these games (indices into the split's offsets)."""
        split_dir = Path(split_dir)
        mode = "r" if mmap else None
        self.arrays = {name: np.load(split_dir / f"{name}.npy", mmap_mode=mode) for name in ARRAYS}
        offsets = np.load(split_dir / "offsets.npy")
        self.window = window
        counts = np.maximum(np.diff(offsets) - window + 1, 0)
        if games is not None:
            counts[np.setdiff1d(np.arange(len(counts)), games)] = 0
        self._first_row = offsets[:-1][counts > 0]  # games too short for a window are skipped
        self._cumulative = np.concatenate([[0], np.cumsum(counts[counts > 0])]).astype(np.int64)
        if self._cumulative[-1] == 0:
            raise ValueError(f"no game in {split_dir} has {window} rows for one window")
        self.rng = np.random.default_rng(seed)
        # A read-only view whose item s is the window starting at row s: a batch is then one
        # gather of whole contiguous windows, about 4x faster than gathering (B, T) rows.
        self._windows = {
            name: np.lib.stride_tricks.as_strided(
                a,
                shape=(len(a) - window + 1, window, *a.shape[1:]),
                strides=(a.strides[0], *a.strides),
                writeable=False,
            )
            for name, a in self.arrays.items()
        }

    def __len__(self) -> int:
        """The number of distinct windows."""
        return int(self._cumulative[-1])

    def starts_of(self, k: np.ndarray) -> np.ndarray:
        """The first rows of the k-th valid windows (k in [0, len))."""
        game = np.searchsorted(self._cumulative, k, side="right") - 1
        return self._first_row[game] + (k - self._cumulative[game])

    def sample(self, batch: int) -> dict[str, np.ndarray]:
        """`batch` windows: each array as (batch, window, ...). The draw is the one
        `rng.choice(every_start, batch)` makes, so runs from before this layout repeat."""
        starts = self.starts_of(self.rng.integers(0, len(self), batch))
        return {name: view[starts] for name, view in self._windows.items()}

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
