"""One process pool for the data stages after the ingest (norm, shards, world-model frames).

`ordered_map` gives results in the order of the items whatever the worker count, so a stage
that combines them in that order writes the same bytes with 1 worker or 16. Workers are spawned
(not forked): a forked copy of a parent that has already started torch's or OpenMP's threads
can hang. A spawned worker takes a second to import numpy and pyarrow, so the pool of each size
is started once and kept for the life of the process. A script that calls `ordered_map` with
more than one worker needs the usual `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def worker_count(workers: int | None) -> int:
    """`workers` from params.yaml: 0 (or None) = one per CPU core."""
    return max(1, workers or os.cpu_count() or 1)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = 1) -> Iterator[R]:
    """fn(item) for every item, in order. One worker runs inline (no pool to start or debug);
    more keep at most a few items per worker in flight, so memory stays one item per worker."""
    n = worker_count(workers)
    if n == 1:
        yield from map(fn, items)
        return
    pool = _pool(n)
    pending: list = []
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * n:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()
    except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh next time
        _pool.cache_clear()
        raise
    finally:  # an error (or a consumer that stops early) leaves no job running for nobody
        for future in pending:
            future.cancel()


@functools.cache
def _pool(n: int) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))
    atexit.register(pool.shutdown, cancel_futures=True)
    return pool
