"""Errors a user can cause: the command line prints their message as one line, exit status 2."""


class UsageError(Exception):
    """A mistake in what the user asked for (a path, a params file, a kernel name, ...)."""
