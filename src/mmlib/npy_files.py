"""`.npy` files allocated at their final size and filled in place, a block of rows at a time.

The stages that turn games into training arrays (shards, world-model frames) know every array's
length before they start, so they allocate it once and write each game at its own rows: memory is
one game, whatever the dataset, and readers memory-map the result as any `.npy` file. Each write
maps the file with numpy's `open_memmap` (numpy parses the header), assigns the rows, flushes and
unmaps, so written pages do not stay in the writer's resident memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def allocate(path: Path, dtype, shape: tuple[int, ...]) -> None:
    """A `.npy` file of `shape` (sparse until written); an empty array is saved as such."""
    if shape[0] == 0:  # a memory map cannot be empty
        np.save(path, np.zeros(shape, dtype))
    else:
        sized = np.lib.format.open_memmap(path, "w+", dtype, shape)
        del sized  # the header and a sparse body: rows come from write_rows


def write_rows(path: Path, first_row: int, values: np.ndarray) -> None:
    """Write `values` as rows first_row.. of an allocated `.npy` file, in place."""
    if len(values) == 0:
        return
    rows = np.lib.format.open_memmap(path, "r+")  # numpy reads the header and maps the body
    try:
        if values.shape[1:] != rows.shape[1:] or values.dtype != rows.dtype:
            raise ValueError(f"{path}: {values.dtype} rows of {values.shape[1:]}, not {rows.dtype}")
        if first_row + len(values) > len(rows):
            raise ValueError(f"{path}: rows up to {first_row + len(values)} of {len(rows)}")
        rows[first_row : first_row + len(values)] = values
        rows.flush()
    finally:
        del rows  # unmapped here: the written pages leave this process's resident memory
