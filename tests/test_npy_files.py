"""Preallocated `.npy` files filled in place (mmlib.npy_files), and the ordered process pool."""

from __future__ import annotations

import numpy as np
import pytest

from mmlib import npy_files
from mmlib.parallel import ordered_map


def test_rows_written_in_any_order_give_the_file_np_save_writes(tmp_path):
    values = np.arange(60, dtype=np.float32).reshape(20, 3)
    npy_files.allocate(tmp_path / "a.npy", np.float32, (20, 3))
    for first, last in ((12, 20), (0, 5), (5, 12)):
        npy_files.write_rows(tmp_path / "a.npy", first, values[first:last])
    np.save(tmp_path / "b.npy", values)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


@pytest.mark.parametrize("shape", [(17,), (9, 2, 3)])
def test_rows_of_one_or_three_dimensions_give_np_save_bytes(tmp_path, shape):
    values = np.random.default_rng(0).integers(-99, 99, shape).astype(np.int16)
    npy_files.allocate(tmp_path / "a.npy", np.int16, shape)
    npy_files.write_rows(tmp_path / "a.npy", 4, values[4:])
    npy_files.write_rows(tmp_path / "a.npy", 0, values[:4])
    np.save(tmp_path / "b.npy", values)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


def test_an_empty_array_is_a_plain_npy_file(tmp_path):
    npy_files.allocate(tmp_path / "e.npy", np.int16, (0, 4))
    npy_files.write_rows(tmp_path / "e.npy", 0, np.zeros((0, 4), np.int16))
    assert np.load(tmp_path / "e.npy").shape == (0, 4)


def test_rows_of_another_shape_or_past_the_end_are_refused(tmp_path):
    npy_files.allocate(tmp_path / "a.npy", np.int16, (10, 2))
    with pytest.raises(ValueError, match="int16"):
        npy_files.write_rows(tmp_path / "a.npy", 0, np.zeros((3, 2), np.int32))
    with pytest.raises(ValueError, match="of 10"):
        npy_files.write_rows(tmp_path / "a.npy", 8, np.zeros((3, 2), np.int16))


def _square_or_fail(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x * x


def test_the_pool_keeps_the_order_of_the_items_and_passes_errors_on():
    items = list(range(7))
    assert list(ordered_map(_square_or_fail, items, workers=2)) == [x * x for x in items]
    assert list(ordered_map(_square_or_fail, items, workers=1)) == [x * x for x in items]
    with pytest.raises(ValueError, match="seven"):
        list(ordered_map(_square_or_fail, range(12), workers=2))
