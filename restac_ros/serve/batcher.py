"""Micro-batching: concurrent requests -> one model call, in one worker thread.

The worker takes the oldest waiting job, then waits at most `max_wait_ms` for more
(never longer, never more than `max_batch`), and runs them as one batch. Jobs are
served strictly in arrival order; as each websocket client has at most one request in
flight (openpi's protocol is request -> reply), a busy client cannot take a second
place in the queue ahead of the others: that is the fairness rule. The queue is
bounded (`max_queue`): a full queue refuses at once instead of growing.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future


class Overloaded(RuntimeError):
    """The queue is full (more clients than the server was sized for)."""


class Batcher:
    def __init__(self, run: Callable[[list], list], *, max_batch: int, max_wait_ms: float,
                 max_queue: int = 256) -> None:
        if max_batch < 1 or max_wait_ms < 0 or max_queue < max_batch:
            raise ValueError("need max_batch >= 1, max_wait_ms >= 0, max_queue >= max_batch")
        self._run = run
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_ms) / 1e3
        self.max_queue = int(max_queue)
        self._cond = threading.Condition()
        self._queue: collections.deque[tuple[object, Future]] = collections.deque()
        self._stopping = False
        self.batches = 0
        self.jobs = 0
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        self._thread = threading.Thread(target=self._loop, name="restac-serve-batcher",
                                        daemon=True)
        self._thread.start()

    def submit(self, job) -> Future:
        fut: Future = Future()
        with self._cond:
            if self._stopping:
                raise Overloaded("server is stopping")
            if len(self._queue) >= self.max_queue:
                raise Overloaded(f"{len(self._queue)} requests already queued")
            self._queue.append((job, fut))
            self._cond.notify()
        return fut

    def _take(self) -> list[tuple[object, Future]] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            deadline = time.monotonic() + self.max_wait_s
            while len(self._queue) < self.max_batch and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(self.max_batch, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            live = [(j, f) for j, f in batch if f.set_running_or_notify_cancel()]
            if not live:
                continue
            jobs, futures = [j for j, _ in live], [f for _, f in live]
            try:
                results = self._run(jobs)
            except Exception as exc:  # the model call failed: every job of the batch learns why
                for f in futures:
                    f.set_exception(exc)
                continue
            self.batches += 1
            self.jobs += len(jobs)
            self.batch_sizes[len(jobs)] += 1
            for f, r in zip(futures, results, strict=True):
                f.set_result(r)

    def stop(self, timeout_s: float = 30.0) -> bool:
        with self._cond:
            self._stopping = True
            pending = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for _, f in pending:
            f.cancel()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()
