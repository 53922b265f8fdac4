"""policy_node's `tick_on: stamps` bookkeeping: messages held back until their tick.

Tick T is assembled, at T, from exactly the messages stamped <= T, once every required
stream has delivered one stamped >= T (restac_ros.core.ticks.StampTicker decides which
ticks are complete). Held messages are bounded per stream (the oldest goes first).
Pure logic, no ROS: the node buffers what `release` hands back and assembles the tick.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from restac_ros.core import ticks

HELD_MAX = 4096  # held-back messages per stream (500 Hz joints: ~8 s)


class StampHold:
    def __init__(self, origin_ns: int, rate_hz: float, streams: tuple[str, ...],
                 required: tuple[str, ...]) -> None:
        self.ticker = ticks.StampTicker(origin_ns, rate_hz, required)
        self.held: dict[str, deque] = {name: deque() for name in streams}

    def hold(self, stream: str, stamp_ns: int, value: Any, receipt_ns: int) -> bool:
        """Keep a message until its tick; False if the oldest one had to be dropped."""
        effective = stamp_ns or receipt_ns  # unstamped: the buffers stamp on receipt
        held = self.held[stream]
        dropped = len(held) >= HELD_MAX
        if dropped:
            held.popleft()
        held.append((effective, stamp_ns, value, receipt_ns))
        self.ticker.offer(stream, effective)
        return not dropped

    def release(self) -> Iterator[tuple[int, list[tuple[str, int, Any, int]]]]:
        """(tick_ns, [(stream, stamp_ns, value, receipt_ns), ...]) for every complete tick,
        oldest first: the messages stamped <= that tick, to buffer before assembling it."""
        for tick_ns in self.ticker.due():
            batch = []
            for name, held in self.held.items():
                while held and held[0][0] <= tick_ns:
                    _, stamp, value, receipt = held.popleft()
                    batch.append((name, stamp, value, receipt))
            yield tick_ns, batch

    def count(self) -> int:
        return sum(len(h) for h in self.held.values())

    def reset(self) -> None:
        self.ticker.reset()
        for held in self.held.values():
            held.clear()
