"""A single background worker thread: heavy work never runs in an executor thread.

`submit(job)` hands one job over and returns False while the worker is busy
(the caller counts the skip); `kick()` asks for one more run with job None even
while busy (a drain loop over the caller's own queue then cannot miss an item queued
just as it finished). The job function runs on the worker thread and its exceptions
go to `on_error` (reported by the caller, never swallowed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Worker:
    def __init__(
        self,
        name: str,
        work: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._work = work
        self._on_error = on_error
        self._cond = threading.Condition()
        self._job: Any = None
        self._has_job = False
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy or self._has_job

    def submit(self, job: Any) -> bool:
        with self._cond:
            if self._busy or self._has_job or self._stopping:
                return False
            self._job, self._has_job = job, True
            self._cond.notify()
            return True

    def kick(self) -> None:
        """Run the job function once more (job None) after this call: now if idle, else
        right after the current run. Kicks while one is pending coalesce."""
        with self._cond:
            if self._stopping or self._has_job:
                return
            self._job, self._has_job = None, True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._has_job and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job, self._job, self._has_job, self._busy = self._job, None, False, True
            try:
                self._work(job)
            except Exception as exc:  # handed to the owner, which reports it
                self._on_error(exc)
            finally:
                with self._cond:
                    self._busy = False

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Ask the worker to exit after its current job; True when it has."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=timeout_s)
        return not self._thread.is_alive()
