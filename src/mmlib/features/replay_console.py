"""Read a replay through libmelee's file console: the same `GameState`s live play is fed.

libmelee keeps the first copy of a rollback frame (mmlib's ingest keeps the last, SPEC 1.1) and
fills fields a replay's version does not record with fallbacks (SPEC 1.5).

libmelee 0.47.6 decodes the whole file (UBJSON) in `connect()`: a file that is not a replay,
empty, truncated or never finished fails there (`ubjson.DecoderException`) before any frame. A
replay whose events it cannot handle fails in `step()`, after the frames before them (e.g.
`ValueError: Whispy not initialized`, `TypeError: buffer is too small ...` on Slippi 0.1).
Both become a `ReplayError`: one line naming the file, for the command line's exit status 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mmlib.errors import ReplayError, UsageError

# A .slp file opens with the UBJSON object key "raw" and the int32 length of its event bytes.
SLP_HEADER = b"{U\x03raw[$U#l"
_EVENTS_AT = len(SLP_HEADER) + 4  # the first event byte


def describe(error: BaseException) -> str:
    """`Type: message` of an exception, on one line."""
    import ubjson

    text = error.args[0] if isinstance(error, ubjson.DecoderException) and error.args else error
    text = " ".join(str(text).split())  # ubjson's args are (message, position)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def diagnose(path: Path) -> str | None:
    """What is wrong with a file libmelee could not open, from its size and header; None
    when the header looks whole (then only libmelee's error says what is wrong)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(_EVENTS_AT)
    except OSError:
        return None
    if size == 0:
        return "the file is empty"
    if len(head) < _EVENTS_AT or not head.startswith(SLP_HEADER):
        return "it does not start with a Slippi header"
    n = int.from_bytes(head[len(SLP_HEADER) :], "big")
    if n == 0:
        return "incomplete: its header gives no length, as in a recording never finished"
    if size < _EVENTS_AT + n:
        return f"truncated, {size:,} bytes where its header gives {_EVENTS_AT + n:,} or more"
    return None


class ReplayConsole:
    """Iterate over every frame's `GameState` of a replay, as libmelee's file console gives them.

    `version` (a tuple) is known once the first frame has been read. A file libmelee cannot
    open or read to its end raises `ReplayError` (a `UsageError`, chained to libmelee's own).
    """

    def __init__(self, path: Path | str):
        import melee  # heavy; only the paths that read through libmelee need it

        self.path = Path(path)
        if not self.path.is_file():
            raise UsageError(f"no replay at {path}")
        self._console = melee.Console(is_dolphin=False, path=str(path), allow_old_version=True)
        try:
            self._console.connect()
        except Exception as e:  # noqa: BLE001 - whatever libmelee raises, the file is at fault
            raise ReplayError(path, describe(e), diagnose(self.path)) from e

    @property
    def version(self) -> tuple[int, int, int]:
        return tuple(int(p) for p in str(self._console.slp_version).split("."))

    def __iter__(self) -> Iterator:
        last = None  # the frame of the last state read
        while True:
            try:
                state = self._console.step()
            except Exception as e:  # noqa: BLE001 - an event libmelee cannot handle
                what = "no frame could be read" if last is None else f"read up to frame {last}"
                raise ReplayError(self.path, describe(e), what) from e
            if state is None:
                return
            last = int(state.frame)
            yield state
