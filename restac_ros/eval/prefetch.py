"""Run an iterator in a background thread, a bounded number of items ahead.

Offline evaluation reads and preprocesses the bag (Python, numpy, rosbags) while
the policy computes (XLA, outside the GIL): with a producer thread both cores
work, as they do on a robot where the node's callbacks run during inference.
Errors raised by the producer are re-raised in the consumer; closing (or leaving
the `with` block, e.g. on KeyboardInterrupt) stops the producer without waiting
for the whole iterator.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1  # how often a blocked producer checks for close()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetcher(Generic[T]):
    def __init__(self, items: Iterable[T], depth: int = 4, name: str = "prefetch") -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as err:  # handed to the consumer, which re-raises it
            self._put(_Failure(err))
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the producer (after the item it is working on) and wait for it."""
        self._stop.set()
        self._thread.join(timeout=timeout_s)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
