"""`.npy` files allocated at their final size and filled in place, a block of rows at a time.

The stages that turn games into training arrays (shards, world-model frames) know every array's
length before they start, so they allocate it once and write each game at its own rows: memory is
one game, whatever the dataset, and readers memory-map the result as any `.npy` file. Rows are
written with plain file writes, not through a memory map, so written pages do not count in the
writer's resident memory.
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
    with open(path, "r+b") as f:
        if np.lib.format.read_magic(f) == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        if values.shape[1:] != tuple(shape[1:]) or values.dtype != dtype:
            raise ValueError(f"{path}: {values.dtype} rows of {values.shape[1:]}, not {dtype}")
        if first_row + len(values) > shape[0]:
            raise ValueError(f"{path}: rows up to {first_row + len(values)} of {shape[0]}")
        f.seek(f.tell() + first_row * values[0].nbytes)
        f.write(np.ascontiguousarray(values).tobytes())
