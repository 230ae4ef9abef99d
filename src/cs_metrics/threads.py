"""Work on a few threads with the results kept in order, and only a few of them held at once."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

A = TypeVar("A")
T = TypeVar("T")

THREADS = 2
"""One per core of the machines this runs on: Arrow and numpy release the GIL while they work."""


def in_order(func: Callable[[A], T], items: Iterable[A], threads: int = THREADS) -> Iterator[T]:
    """`func` of each item, worked out on `threads` threads and yielded in the items' order.

    At most `threads` results wait to be taken besides the one being worked on, so a caller that
    writes each result away holds a few of them, never all. If the caller stops early (or `func`
    raises), the items not yet started are dropped, not worked out first.
    """
    pool = ThreadPoolExecutor(threads)
    running: deque[Future[T]] = deque()
    try:
        for item in items:
            running.append(pool.submit(func, item))
            if len(running) > threads:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def started(func: Callable[[], T]) -> Future[T]:
    """`func` worked out on a thread of its own, started now: its result (or its exception)
    when asked for."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(func)
    finally:
        pool.shutdown(wait=False)  # the thread ends once `func` has returned
