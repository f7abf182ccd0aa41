"""Values that need decoding, decoded once at ingest (SPEC 1.2). Pure functions on Arrow arrays.

- Hitstun: `misc_as` holds hitstun frames left only while the in-hitstun flag (flags_3 & 0x02)
  is set; otherwise the same bytes hold other per-action data, often small integers stored as raw
  u32 and therefore read as subnormal floats. libmelee truncates `misc_as` regardless of the flag,
  so 12% of non-hitstun frames get a non-zero value there; mmlib gates by the flag instead.
- Buttons: each named bit of the processed and physical masks becomes a boolean column.
- Sticks and the processed trigger are already floats in [-1, 1] and [0, 1] and are stored as is;
  the physical triggers before Slippi 1.2 are garbage and become null (see schema.py).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmlib.data.schema import BUTTON_BITS

IN_HITSTUN = 0x02  # bit of post_state_flags_3


def hitstun_left(misc_as: pa.Array, state_flags_3: pa.Array) -> pa.Array:
    """Hitstun frames left (float32): max(misc_as, 0) while in hitstun, else 0; null stays null."""
    in_hitstun = pc.not_equal(pc.bit_wise_and(state_flags_3, IN_HITSTUN), 0)
    frames_left = pc.max_element_wise(misc_as, pa.scalar(0.0, pa.float32()), skip_nulls=False)
    return pc.if_else(in_hitstun, frames_left, pa.scalar(0.0, pa.float32()))


def buttons(mask: pa.Array | pa.ChunkedArray, prefix: str) -> dict[str, pa.Array]:
    """One boolean column per named button, `{prefix}{name}`, from a processed or physical mask.

    All bits are tested at once in numpy and packed straight into Arrow's bit layout: one call
    per mask instead of two compute kernels per button.
    """
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    values = mask.fill_null(0).to_numpy()
    bits = np.array(list(BUTTON_BITS.values()), dtype=values.dtype)[:, None]
    packed = np.packbits((values[None, :] & bits) != 0, axis=1, bitorder="little")
    validity = pc.is_valid(mask).buffers()[1] if mask.null_count else None
    return {
        f"{prefix}{name}": pa.Array.from_buffers(
            pa.bool_(), len(mask), [validity, pa.py_buffer(packed[i])], mask.null_count
        )
        for i, name in enumerate(BUTTON_BITS)
    }
