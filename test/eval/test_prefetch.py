"""The evaluation's bag-reading thread: order, error forwarding, early close."""

from __future__ import annotations

import threading
import time

import pytest

from restac_ros.eval.prefetch import Prefetcher


def test_items_arrive_in_order_from_another_thread():
    seen = []

    def items():
        for i in range(50):
            seen.append(threading.current_thread().name)
            yield i

    with Prefetcher(items(), depth=3, name="reader") as p:
        assert list(p) == list(range(50))
    assert set(seen) == {"reader"}


def test_producer_errors_are_raised_in_the_consumer():
    def items():
        yield 1
        raise ValueError("truncated bag")

    with Prefetcher(items()) as p, pytest.raises(ValueError, match="truncated bag"):
        list(p)


def test_close_stops_a_producer_blocked_on_a_full_queue():
    produced = []

    def items():
        for i in range(10_000):
            produced.append(i)
            yield i

    p = Prefetcher(items(), depth=2)
    it = iter(p)
    assert next(it) == 0
    # the producer fills the queue (items 1, 2) and blocks putting item 3
    deadline = time.monotonic() + 30.0
    while len(produced) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(produced) == 4, produced
    p.close(timeout_s=30.0)  # the blocked producer sees the stop within its poll period
    assert not p._thread.is_alive()
    assert len(produced) <= 5
    with pytest.raises(ValueError):
        Prefetcher([], depth=0)
