"""Random training windows from a shard split: fast, seeded, resumable.

Every start s of a game with at least `window` rows is equally likely (uniform over valid
starts, so long games give more windows); a batch is one vectorised gather per array from the
memory-mapped shard files (a strided view makes each window one contiguous block).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ARRAYS = ("ints", "floats", "targets", "targets_raw")


class WindowSampler:
    def __init__(self, split_dir: Path, window: int = 180, seed: int = 0, mmap: bool = True):
        split_dir = Path(split_dir)
        mode = "r" if mmap else None
        self.arrays = {name: np.load(split_dir / f"{name}.npy", mmap_mode=mode) for name in ARRAYS}
        offsets = np.load(split_dir / "offsets.npy")
        self.window = window
        spans = [
            np.arange(start, end - window + 1)
            for start, end in zip(offsets[:-1], offsets[1:], strict=True)
            if end - start >= window
        ]
        self.starts = np.concatenate(spans) if spans else np.zeros(0, np.int64)
        if len(self.starts) == 0:
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
        return len(self.starts)

    def sample(self, batch: int) -> dict[str, np.ndarray]:
        """`batch` windows: each array as (batch, window, ...)."""
        starts = self.rng.choice(self.starts, batch)
        return {name: view[starts] for name, view in self._windows.items()}

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
