"""ClockWatch (issue 13 item 5): sim time jumping back (bag loop) or stalling is detected."""

from __future__ import annotations

import pytest

from restac_ros.core.clock_watch import ClockEvent, ClockWatch

S = 1_000_000_000
MS = 1_000_000


def test_monotonic_clock_gives_no_events() -> None:
    w = ClockWatch(jump_back_tolerance_s=0.5, stall_s=1.0)
    assert [w.observe(t, t) for t in range(S, 10 * S, 100 * MS)] == [None] * 90
    assert w.state == "running"


def test_jump_back_is_reported_once_and_rebases() -> None:
    w = ClockWatch(jump_back_tolerance_s=0.5, stall_s=1.0)
    w.observe(100 * S, 0)
    w.observe(110 * S, 10 * S)
    assert w.observe(110 * S - 100 * MS, 10 * S + MS) is None  # within tolerance
    assert w.observe(100 * S, 10 * S + 2 * MS) is ClockEvent.JUMP_BACK
    assert w.jumps == 1
    assert w.observe(100 * S + 10 * MS, 10 * S + 12 * MS) is None  # runs on from the new time


def test_stall_and_resume() -> None:
    w = ClockWatch(jump_back_tolerance_s=0.5, stall_s=1.0)
    w.observe(5 * S, 0)
    assert w.observe(5 * S, 900 * MS) is None
    assert w.observe(5 * S, 1100 * MS) is ClockEvent.STALLED
    assert w.observe(5 * S, 5 * S) is None  # reported once
    assert w.state == "stalled" and w.stalls == 1
    assert w.observe(5 * S + MS, 5 * S + MS) is ClockEvent.RESUMED
    assert w.state == "running"


def test_no_clock_yet_is_a_stall() -> None:
    w = ClockWatch(jump_back_tolerance_s=0.5, stall_s=1.0)
    w.observe(0, 0)
    assert w.observe(0, 2 * S) is ClockEvent.STALLED


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError):
        ClockWatch(jump_back_tolerance_s=-1.0, stall_s=1.0)
    with pytest.raises(ValueError):
        ClockWatch(jump_back_tolerance_s=0.5, stall_s=float("nan"))
