"""Per-stream latest-message buffers keyed by header stamp, with freshness checks.

Subscription callbacks `push` into a `StreamBuffers`; the observation tick
reads the newest entries and asks whether every required stream is fresher
than its `max_age_s` relative to a given "now" (wall clock live, bag time in
replay). Thread-safe: pushes and reads may come from different threads.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

_log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """One input stream.

    history: at most this many entries are kept (newest last).
    history_s: > 0 additionally drops entries no longer needed to look back
      `history_s` from the newest stamp: the newest entry stamped at or before
      (newest - history_s) is kept, everything older goes (joints: action_prev
      needs the state one action_prev_dt_s back, see `at_or_before`).
    """

    name: str
    max_age_s: float
    required: bool = True
    history: int = 1
    history_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("stream name must be non-empty")
        if not self.max_age_s > 0:
            raise ValueError(f"stream {self.name!r}: max_age_s must be > 0, got {self.max_age_s}")
        if self.history < 1:
            raise ValueError(f"stream {self.name!r}: history must be >= 1, got {self.history}")
        if not self.history_s >= 0:
            raise ValueError(f"stream {self.name!r}: history_s must be >= 0, got {self.history_s}")


class UnstampedPolicy(enum.StrEnum):
    """What to do with a message whose header stamp is zero."""

    STAMP_ON_RECEIPT = "stamp_on_receipt"  # use the receipt time, log a warning
    REJECT = "reject"


class RejectReason(enum.StrEnum):
    UNSTAMPED = "unstamped"
    OUT_OF_ORDER = "out_of_order"  # older than the newest entry
    DUPLICATE_STAMP = "duplicate_stamp"  # same stamp as the newest entry
    FROM_FUTURE = "from_future"  # stamp further ahead of receipt than the tolerance
    TOO_OLD = "too_old"  # stamp further behind receipt than max_stamp_age_s


@dataclasses.dataclass(frozen=True)
class Stamped:
    """A buffered message: header stamp and receipt time in ns, and the payload."""

    stamp_ns: int
    receipt_ns: int
    value: Any
    stamped_on_receipt: bool = False


@dataclasses.dataclass
class StreamCounters:
    received: int = 0
    accepted: int = 0
    stamped_on_receipt: int = 0
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


@dataclasses.dataclass(frozen=True)
class StreamStatus:
    """Freshness of one stream at a given now. age_s is None when nothing was received."""

    name: str
    required: bool
    age_s: float | None
    max_age_s: float

    @property
    def missing(self) -> bool:
        return self.age_s is None

    @property
    def fresh(self) -> bool:
        return self.age_s is not None and self.age_s <= self.max_age_s


@dataclasses.dataclass(frozen=True)
class FreshnessReport:
    now_ns: int
    streams: tuple[StreamStatus, ...]

    @property
    def ok(self) -> bool:
        """True when every required stream is present and fresh."""
        return all(s.fresh for s in self.streams if s.required)

    @property
    def missing_required(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.streams if s.required and s.missing)

    @property
    def stale_required(self) -> tuple[StreamStatus, ...]:
        return tuple(s for s in self.streams if s.required and not s.missing and not s.fresh)

    def status(self, name: str) -> StreamStatus:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(f"unknown stream {name!r}")

    def describe(self) -> str:
        parts = []
        for s in self.streams:
            state = "missing" if s.missing else f"age {s.age_s:.3f}s/{s.max_age_s:.3f}s"
            flag = "ok" if s.fresh else ("STALE" if s.required else "stale(optional)")
            parts.append(f"{s.name}: {state} {flag}")
        return "; ".join(parts)


class StreamBuffers:
    """Newest messages per stream, ordered by header stamp.

    A message older than or equal to the newest buffered one is rejected
    (counted by reason) so the ring always holds strictly increasing stamps
    (`history(name)[-2:]` are two consecutive states; `at_or_before` looks back).
    Stamps must lie in a window around the receipt time: at most future_tolerance_s
    ahead and (when max_stamp_age_s is set) at most max_stamp_age_s behind; every ring
    is bounded by count (`StreamSpec.history`) and, for histories, by time (`history_s`).
    """

    def __init__(
        self,
        specs: Iterable[StreamSpec],
        unstamped_policy: UnstampedPolicy | str = UnstampedPolicy.STAMP_ON_RECEIPT,
        future_tolerance_s: float = 1.0,
        max_stamp_age_s: float | None = None,
    ) -> None:
        self._specs: dict[str, StreamSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"duplicate stream {spec.name!r}")
            self._specs[spec.name] = spec
        self.unstamped_policy = UnstampedPolicy(unstamped_policy)
        if not (math.isfinite(future_tolerance_s) and future_tolerance_s >= 0):
            raise ValueError(f"future_tolerance_s must be >= 0, got {future_tolerance_s}")
        if max_stamp_age_s is not None and not (
            math.isfinite(max_stamp_age_s) and max_stamp_age_s > 0
        ):
            raise ValueError(f"max_stamp_age_s must be > 0, got {max_stamp_age_s}")
        self._future_tolerance_ns = int(future_tolerance_s * NS_PER_S)
        self._max_age_ns = None if max_stamp_age_s is None else int(max_stamp_age_s * NS_PER_S)
        self._rings: dict[str, deque[Stamped]] = {
            n: deque(maxlen=s.history) for n, s in self._specs.items()
        }
        self._counters = {n: StreamCounters() for n in self._specs}
        self._warned_unstamped: set[str] = set()
        self._lock = threading.Lock()

    @property
    def specs(self) -> dict[str, StreamSpec]:
        return dict(self._specs)

    def _spec(self, name: str) -> StreamSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown stream {name!r}; known: {sorted(self._specs)}") from None

    def push(self, name: str, stamp_ns: int, value: Any, receipt_ns: int) -> RejectReason | None:
        """Buffer a message; returns None when accepted, else why it was rejected.

        stamp_ns == 0 means the publisher left the header unstamped.
        """
        spec = self._spec(name)
        with self._lock:
            counters = self._counters[name]
            counters.received += 1
            on_receipt = False
            if stamp_ns == 0:
                if self.unstamped_policy is UnstampedPolicy.REJECT:
                    return self._reject(counters, RejectReason.UNSTAMPED)
                stamp_ns, on_receipt = receipt_ns, True
                counters.stamped_on_receipt += 1
                if name not in self._warned_unstamped:
                    self._warned_unstamped.add(name)
                    _log.warning("stream %r: unstamped message, using receipt time", name)
            if (reason := self._outside_window(stamp_ns, receipt_ns)) is not None:
                return self._reject(counters, reason)
            ring = self._rings[name]
            if ring:
                newest = ring[-1].stamp_ns
                if stamp_ns == newest:
                    return self._reject(counters, RejectReason.DUPLICATE_STAMP)
                if stamp_ns < newest:
                    return self._reject(counters, RejectReason.OUT_OF_ORDER)
            ring.append(Stamped(int(stamp_ns), int(receipt_ns), value, on_receipt))
            if spec.history_s > 0:
                horizon = int(stamp_ns) - round(spec.history_s * NS_PER_S)
                while len(ring) > 1 and ring[1].stamp_ns <= horizon:
                    ring.popleft()
            counters.accepted += 1
            return None

    def _outside_window(self, stamp_ns: int, receipt_ns: int) -> RejectReason | None:
        if stamp_ns - receipt_ns > self._future_tolerance_ns:
            return RejectReason.FROM_FUTURE
        if self._max_age_ns is not None and receipt_ns - stamp_ns > self._max_age_ns:
            return RejectReason.TOO_OLD
        return None

    def screen(self, name: str, stamp_ns: int, receipt_ns: int) -> RejectReason | None:
        """The checks `push` makes on the stamp alone (unstamped policy, window), for a
        caller that holds messages back before pushing them (policy_node tick_on: stamps).
        A refusal is counted (received and rejected); an accepted stamp is not: its push
        counts it."""
        self._spec(name)
        with self._lock:
            reason = None
            if stamp_ns == 0:
                if self.unstamped_policy is UnstampedPolicy.REJECT:
                    reason = RejectReason.UNSTAMPED
            else:
                reason = self._outside_window(stamp_ns, receipt_ns)
            if reason is not None:
                self._counters[name].received += 1
                self._reject(self._counters[name], reason)
            return reason

    @staticmethod
    def _reject(counters: StreamCounters, reason: RejectReason) -> RejectReason:
        counters.rejected[reason.value] = counters.rejected.get(reason.value, 0) + 1
        return reason

    def latest(self, name: str) -> Stamped | None:
        self._spec(name)
        with self._lock:
            ring = self._rings[name]
            return ring[-1] if ring else None

    def history(self, name: str) -> tuple[Stamped, ...]:
        """Buffered entries of a stream, oldest first (at most spec.history)."""
        self._spec(name)
        with self._lock:
            return tuple(self._rings[name])

    def at_or_before(self, name: str, stamp_ns: int) -> Stamped | None:
        """The newest buffered entry stamped at or before stamp_ns (None if none is kept)."""
        self._spec(name)
        with self._lock:
            for entry in reversed(self._rings[name]):
                if entry.stamp_ns <= stamp_ns:
                    return entry
            return None

    def freshness(self, now_ns: int) -> FreshnessReport:
        """Age of each stream's newest header stamp relative to now_ns."""
        with self._lock:
            statuses = []
            for name, spec in self._specs.items():
                ring = self._rings[name]
                age = (now_ns - ring[-1].stamp_ns) / NS_PER_S if ring else None
                statuses.append(StreamStatus(name, spec.required, age, spec.max_age_s))
        return FreshnessReport(int(now_ns), tuple(statuses))

    def counters(self) -> dict[str, StreamCounters]:
        """A snapshot of the per-stream counters (for /diagnostics)."""
        with self._lock:
            return {
                n: dataclasses.replace(c, rejected=dict(c.rejected))
                for n, c in self._counters.items()
            }

    def clear(self) -> None:
        """Drop buffered messages (e.g. on lifecycle deactivate); counters are kept."""
        with self._lock:
            for ring in self._rings.values():
                ring.clear()
