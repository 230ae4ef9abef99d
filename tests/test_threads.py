"""Work on a few threads: results in order, few held, the rest dropped on an early stop."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs_metrics.threads import in_order, started


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=12), st.integers(1, 3))
def test_results_come_in_the_items_order_whatever_each_takes(delays, threads):
    def work(item: tuple[int, int]) -> int:
        position, delay = item
        time.sleep(delay / 1000)
        return position

    assert list(in_order(work, enumerate(delays), threads)) == list(range(len(delays)))


def test_only_a_few_items_are_started_ahead_of_the_caller():
    started: list[int] = []
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            started.append(item)
        return item

    results = in_order(work, iter(range(100)), threads=2)
    assert next(results) == 0
    time.sleep(0.05)
    # The first result taken, at most two more wait and one more is submitted: never all 100.
    assert len(started) <= 4
    results.close()
    assert len(started) <= 4


def test_an_error_stops_the_work_and_reaches_the_caller():
    started: list[int] = []

    def work(item: int) -> int:
        started.append(item)
        if item == 1:
            raise ValueError("bad block")
        return item

    with pytest.raises(ValueError, match="bad block"):
        list(in_order(work, iter(range(1000)), threads=2))
    assert len(started) < 10


def test_work_started_apart_runs_on_its_own_thread_and_gives_its_result_or_error() -> None:
    """`started` runs at once on another thread (the caller goes on meanwhile); the caller
    gets the result, or the error, when it asks."""
    release = threading.Event()
    seen: list[int] = []

    def work() -> int:
        seen.append(threading.get_ident())
        release.wait(5)
        return 42

    future = started(work)
    release.set()  # the caller was not held up: the work waited for it
    assert future.result(timeout=5) == 42
    assert seen and seen[0] != threading.get_ident()

    def failing() -> int:
        raise ValueError("no ratings")

    with pytest.raises(ValueError, match="no ratings"):
        started(failing).result(timeout=5)
