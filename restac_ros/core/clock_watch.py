"""Watching the node clock for jumps back (a bag loop under use_sim_time) and stalls.

A node compares its clock (ROS time: /clock under use_sim_time) with the steady wall
clock. Time going back by more than a tolerance means every buffered message, held
tick and executing chunk belongs to another timeline: the node resets them. Time not
advancing for `stall_s` of wall time (no /clock) is reported, and the node resets too:
nothing decided on the old time may play once it resumes. Pure logic, no ROS.
"""

from __future__ import annotations

import enum
import math
import threading

NS_PER_S = 1_000_000_000


class ClockEvent(enum.StrEnum):
    JUMP_BACK = "clock_jump_back"
    STALLED = "clock_stalled"
    RESUMED = "clock_resumed"


class ClockWatch:
    """`observe(now_ns, wall_ns)` on every clock read; returns an event when one happens."""

    def __init__(self, jump_back_tolerance_s: float, stall_s: float) -> None:
        if not (math.isfinite(jump_back_tolerance_s) and jump_back_tolerance_s >= 0):
            raise ValueError(f"jump_back_tolerance_s must be >= 0, got {jump_back_tolerance_s}")
        if not (math.isfinite(stall_s) and stall_s > 0):
            raise ValueError(f"stall_s must be > 0, got {stall_s}")
        self._tolerance_ns = round(jump_back_tolerance_s * NS_PER_S)
        self._stall_ns = round(stall_s * NS_PER_S)
        self._lock = threading.Lock()
        self._last_now: int | None = None
        self._last_advance_wall = 0
        self._stalled = False
        self.jumps = 0
        self.stalls = 0
        self.last_jump_s = 0.0  # how far the last jump went back

    @property
    def state(self) -> str:
        return "stalled" if self._stalled else "running"

    def observe(self, now_ns: int, wall_ns: int) -> ClockEvent | None:
        with self._lock:
            last = self._last_now
            if last is None:
                self._last_now, self._last_advance_wall = int(now_ns), int(wall_ns)
                return None
            if now_ns < last - self._tolerance_ns:
                self.jumps += 1
                self.last_jump_s = (last - now_ns) / NS_PER_S
                self._last_now, self._last_advance_wall = int(now_ns), int(wall_ns)
                self._stalled = False
                return ClockEvent.JUMP_BACK
            if now_ns > last:
                self._last_now, self._last_advance_wall = int(now_ns), int(wall_ns)
                if self._stalled:
                    self._stalled = False
                    return ClockEvent.RESUMED
                return None
            if not self._stalled and wall_ns - self._last_advance_wall > self._stall_ns:
                self._stalled = True
                self.stalls += 1
                return ClockEvent.STALLED
            return None
