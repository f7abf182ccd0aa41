"""Errors a user can cause: the command line prints their message as one line, exit status 2."""

from __future__ import annotations

from pathlib import Path


class UsageError(Exception):
    """A mistake in what the user asked for (a path, a params file, a kernel name, ...)."""


class ReplayError(UsageError):
    """libmelee cannot read a replay: `path`, libmelee's error as `Type: message` and, where
    mmlib can tell, what is wrong with the file (`what`)."""

    def __init__(self, path: Path | str, error: str, what: str | None = None):
        super().__init__(path, error, what)  # args kept, so the error pickles
        self.path, self.error, self.what = Path(path), error, what

    @property
    def finding(self) -> str:
        """The error without the path, as the audit lists it: `Type: message (what)`."""
        return self.error + (f" ({self.what})" if self.what else "")

    def __str__(self) -> str:
        what = f": {self.what}" if self.what else ""
        return f"{self.path}: not a readable Slippi replay{what}; libmelee: {self.error}"
