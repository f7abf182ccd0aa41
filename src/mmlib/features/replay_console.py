"""Read a replay through libmelee's file console: the same `GameState`s live play is fed.

libmelee keeps the first copy of a rollback frame (mmlib's ingest keeps the last, SPEC 1.1) and
fills fields a replay's version does not record with fallbacks (SPEC 1.5).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


class ReplayConsole:
    """Iterate over every frame's `GameState` of a replay, as libmelee's file console gives them.

    `version` (a tuple) is known once the first frame has been read. Errors libmelee raises on
    odd replays propagate.
    """

    def __init__(self, path: Path | str):
        import melee  # heavy; only the paths that read through libmelee need it

        self.path = Path(path)
        self._console = melee.Console(is_dolphin=False, path=str(path), allow_old_version=True)
        self._console.connect()

    @property
    def version(self) -> tuple[int, int, int]:
        return tuple(int(p) for p in str(self._console.slp_version).split("."))

    def __iter__(self) -> Iterator:
        while (state := self._console.step()) is not None:
            yield state
