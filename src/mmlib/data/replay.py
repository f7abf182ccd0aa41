"""Read one .slp replay into a clean long frame table (schema.py), or say exactly why not.

peppi-py 0.8.6's dataclass view drops the item list, so mmlib reads peppi's raw Arrow struct
(`peppi_py._peppi.read_slippi`, the function the public wrapper calls) and flattens it itself.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmlib.data import decode
from mmlib.data.schema import FRAME_SCHEMA, RAW_COLUMNS, Version

FIRST_FRAME = -123  # frame id of the first frame of every game
FIRST_PLAYABLE_FRAME = -39  # players can act from here on (earlier frames are the countdown)
ALIGNED_NULLS_SINCE = (2, 2, 0)  # before 2.2 peppi shifts a stream's rows after a mid-game absence


class Rejected(Exception):
    """A replay mmlib will not ingest. `reason` is a short class, the message says the detail."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# peppi maps every Rust-side error to OSError; its message prefix says what went wrong (SPEC 1.6).
_OSERROR_REASONS = [
    ("invalid data: invalid game end method", "not_vs_mode"),  # Target Test (6), Home-Run (9)
    ("invalid data: expected: [123, 85, 3, 114, 97, 119", "not_slippi"),  # no `{U\x03raw` header
    ("I/O error", "io_error"),  # truncated, still in progress, or payloads shorter than declared
    ("invalid data", "corrupt"),
]


def classify(exc: BaseException) -> Rejected:
    """The rejection for an exception raised while parsing (Rust panics included)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, Rejected):
        return exc
    if type(exc).__name__ == "PanicException":  # pyo3's, a BaseException not importable by name
        return Rejected("panic", f"peppi panicked: {message}")
    if isinstance(exc, OSError):
        for prefix, reason in _OSERROR_REASONS:
            if message.startswith(prefix):
                return Rejected(reason, message)
    return Rejected("error", f"{type(exc).__name__}: {message}")


def read_raw(path: str):
    """peppi's raw game: `.start`/`.end`/`.metadata` as dicts, `.frames` as one StructArray."""
    from peppi_py import _peppi

    return _peppi.read_slippi(path, False)


def keep_last(ids: np.ndarray) -> np.ndarray | None:
    """Row indices keeping the last occurrence of each frame id (None: no rollback rows).

    Rollback re-sends a frame after re-simulating it; the last copy carries the confirmed inputs.
    """
    if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):
        return None
    _, first_in_reversed = np.unique(ids[::-1], return_index=True)
    return np.sort(len(ids) - 1 - first_in_reversed)


def keep_first(ids: np.ndarray) -> np.ndarray | None:
    """Row indices keeping the first occurrence of each frame id, as libmelee does (SPEC 1.5).

    Only for comparing with libmelee: the first copy carries predicted remote inputs.
    """
    if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):
        return None
    return np.sort(np.unique(ids, return_index=True)[1])


def _flatten(array: pa.Array, prefix: str, out: dict[str, pa.Array]) -> None:
    if pa.types.is_struct(array.type):
        for field, child in zip(array.type, array.flatten(), strict=True):
            _flatten(child, f"{prefix}_{field.name}", out)
    else:
        out[prefix] = array


def stream_columns(
    data: pa.StructArray,
    version: Version,
    frame: pa.Array,
    port: int,
    follower: bool,
    item_count: pa.Array,
) -> dict[str, pa.Array]:
    """The key and raw columns of one stream (a port's leader or follower); raw columns the
    version does not record are all null."""
    flat: dict[str, pa.Array] = {}
    _flatten(data.field("pre"), "pre", flat)
    _flatten(data.field("post"), "post", flat)
    n = len(frame)
    cols = {
        name: flat[name] if name in flat and col.since <= version else pa.nulls(n, col.type)
        for name, col in RAW_COLUMNS.items()
    }
    cols["frame"] = frame
    cols["port"] = pa.array(np.full(n, port, np.uint8))
    cols["follower"] = pa.array(np.full(n, follower))
    cols["present"] = cols["pre_state"].is_valid()
    cols["item_count"] = item_count
    return cols


def assemble(streams: list[dict[str, pa.Array]]) -> pa.Table:
    """Stack the streams, add the decoded columns, and order the columns as FRAME_SCHEMA.

    A column without nulls in this game is marked required (non-nullable): parquet then stores
    no definition levels for it, which makes the write about a quarter faster. Read games back
    with `store.read_frames`, which restores FRAME_SCHEMA's nullable fields.
    """
    cols = {name: pa.chunked_array([s[name] for s in streams]) for name in streams[0]}
    cols["hitstun_left"] = decode.hitstun_left(cols["post_misc_as"], cols["post_state_flags_3"])
    cols.update(decode.buttons(cols["pre_buttons"], "button_"))
    cols.update(decode.buttons(cols["pre_buttons_physical"], "button_physical_"))
    fields = [f.with_nullable(cols[f.name].null_count > 0) for f in FRAME_SCHEMA]
    return pa.Table.from_arrays([cols[f.name] for f in fields], schema=pa.schema(fields))


def frames_table(
    frames: pa.StructArray, version: Version, ports: list[int], keep_copy: str = "last"
) -> tuple[pa.Table, int]:
    """All streams of a game as one table sorted by (port, follower, frame), and the number of
    rollback rows dropped (`keep_copy="first"` keeps libmelee's copy instead of the last).
    Raises Rejected when the rows cannot be trusted."""
    ids = frames.field("id").to_numpy()
    keep = {"last": keep_last, "first": keep_first}[keep_copy](ids)
    dropped = 0
    if keep is not None:
        dropped = len(ids) - len(keep)
        frames = frames.take(pa.array(keep))
        ids = ids[keep]
    if len(ids) == 0:
        raise Rejected("bad_frames", "the replay has no frames")
    if not (np.diff(ids) == 1).all():
        gap = int(np.flatnonzero(np.diff(ids) != 1)[0])
        raise Rejected("bad_frames", f"frame ids jump from {ids[gap]} to {ids[gap + 1]}")

    names = {f.name for f in frames.type}
    if "item" in names and version >= (3, 0, 0):
        item_count = pc.cast(pc.list_value_length(frames.field("item")), pa.uint8())
    else:
        item_count = pa.nulls(len(ids), pa.uint8())
    frame = frames.field("id")
    port_arrays = frames.field("ports")
    streams = []
    for port in ports:
        port_data = port_arrays.field(f"P{port}")
        roles = [f.name for f in port_data.type]
        for role in ("leader", "follower"):
            if role not in roles:
                continue
            data = port_data.field(role)
            absent = data.field("pre").field("state").null_count
            if absent and version < ALIGNED_NULLS_SINCE:
                who = f"P{port}" + (" follower" if role == "follower" else "")
                raise Rejected(
                    "misaligned",
                    f"Slippi {'.'.join(map(str, version))} < 2.2 with {who} absent on {absent} "
                    "frames: peppi-py 0.8.6 shifts the rows after an absence (SPEC 1.1)",
                )
            streams.append(
                stream_columns(data, version, frame, port, role == "follower", item_count)
            )
    return assemble(streams), dropped


def read_frames_table(path: str, keep_copy: str = "last") -> tuple[pa.Table, Version]:
    """One replay's frame table (as `frames_table`) and its Slippi version, straight from the
    file. The ingest stores the same table; this is for comparisons against other readers."""
    raw = read_raw(str(path))
    version = tuple(raw.start["slippi"]["version"])
    ports = sorted(int(p["port"][1:]) for p in raw.start["players"])
    return frames_table(raw.frames, version, ports, keep_copy)[0], version
