"""diagnostic_msgs helpers: build /diagnostics statuses from plain values, count rates."""

from __future__ import annotations

import collections
import functools
import threading
import time
from collections.abc import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType

from restac_ros.nodes.conversions import ns_to_stamp

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE


def steady_clock() -> Clock:
    """Clock for /diagnostics timers: runs even when use_sim_time waits for /clock."""
    return Clock(clock_type=ClockType.STEADY_TIME)


def status(
    name: str, level: bytes, message: str, values: Mapping[str, object], hardware_id: str = ""
) -> DiagnosticStatus:
    """level: one of OK / WARN / ERROR / STALE (bytes, as diagnostic_msgs defines them)."""
    msg = DiagnosticStatus()
    msg.level = level
    msg.name = name
    msg.message = message
    msg.hardware_id = hardware_id
    msg.values = [KeyValue(key=str(k), value=_fmt(v)) for k, v in values.items()]
    return msg


def array(stamp_ns: int, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.status = statuses
    return msg


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def level_of(msg: DiagnosticStatus) -> int:
    return msg.level[0] if isinstance(msg.level, bytes | bytearray) else int(msg.level)


class RateCounter:
    """Events per second over a sliding window (thread-safe)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._window_s = window_s
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate_hz(self) -> float:
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            return len(self._times) / self._window_s

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window_s:
            self._times.popleft()


REASON_WARN_WINDOW_S = 10.0  # a rejection keeps a status at WARN this long
DETAIL_CHARS = 400  # a reason's text on /diagnostics never copies unbounded input


def bounded(text: str, limit: int = DETAIL_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


class ReasonLog:
    """Counts of rejection reasons plus the last text of each (thread-safe, bounded)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._last: dict[str, str] = {}
        self._last_mono: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, key: str, detail: str) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            self._last[key] = bounded(detail)
            self._last_mono[key] = time.monotonic()

    def snapshot(self) -> dict[str, tuple[int, str]]:
        with self._lock:
            return {k: (self._counts[k], self._last[k]) for k in self._counts}

    def recent(self, window_s: float) -> list[str]:
        """Keys added within the last `window_s` seconds (wall clock): a level reflects
        what is wrong now, the counts keep the history (one late chunk in an hour must not
        leave the status at WARN for the rest of the run)."""
        now = time.monotonic()
        with self._lock:
            return [k for k, t in self._last_mono.items() if now - t <= window_s]


def guarded(key: str):
    """Decorate a node callback: an exception is handed to the node's
    `callback_failed(key, exc)` (counted on /diagnostics, logged) and never escapes into
    the executor, so one bad message cannot stop the node spinning."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(self, *args):
            try:
                return fn(self, *args)
            except Exception as exc:  # reported by the node, never swallowed
                self.callback_failed(key, exc)
                return None

        return run

    return wrap


def exception_text(exc: BaseException, limit: int = 300) -> str:
    """Bounded one-line text of an exception (never copies a huge message)."""
    return f"{type(exc).__name__}: {str(exc)[:limit]}"
