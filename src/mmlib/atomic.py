"""Atomic file output: write under a temporary name beside the target, then rename it into place.

A rename within one folder is atomic on POSIX, so a reader (or a re-run after a kill) sees either
the old file or the whole new one, never a partial file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` if the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, obj) -> None:
    """Stable JSON (sorted keys, fixed indent) so that equal content gives equal bytes."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_torch(path: Path, obj) -> None:
    """torch.save, atomically. Serialised in memory first: torch names the zip records after the
    file it writes, and the temporary name holds a pid, so saving to it directly would make equal
    weights differ in bytes."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
