"""restac_ros.core.ticks: the tick grid, the seed rule, the stamp ticker."""

from __future__ import annotations

import pytest

from restac_ros.core import ticks

T0 = 1_735_689_600 * 10**9


def test_grid_and_first_index():
    grid = ticks.tick_times(T0, T0 + 10**9, 15.0)
    assert grid[0] == T0 and grid[-1] == T0 + 10**9 and len(grid) == 16
    assert [ticks.tick_at(T0, 15.0, k) for k in range(16)] == grid.tolist()
    for t in (T0 - 5, T0, T0 + 1, int(grid[3]), int(grid[3]) + 1):
        k = ticks.first_index_at_or_after(T0, 15.0, t)
        assert ticks.tick_at(T0, 15.0, k) >= t > ticks.tick_at(T0, 15.0, k - 1)
    with pytest.raises(ValueError):
        ticks.tick_times(T0, T0, 0.0)


def test_seed_depends_on_base_and_stamp_only():
    s = ticks.tick_seed(3, T0)
    assert s == ticks.tick_seed(3, T0) and 0 <= s < 2**31
    assert s != ticks.tick_seed(4, T0) and s != ticks.tick_seed(3, T0 + 1)


def test_stamp_ticker_waits_for_every_required_stream():
    t = ticks.StampTicker(0, 5.0, ("cam", "joints"))
    t.offer("joints", T0 + 10)  # first tick: first grid point at or after the first stamp
    assert t.next_tick_ns == T0 + 200_000_000 and t.due() == []
    t.offer("joints", T0 + 450_000_000)
    assert t.due() == []  # the camera has not reached the tick yet
    t.offer("cam", T0 + 200_000_000)  # stamped exactly at the tick: complete
    assert t.due() == [T0 + 200_000_000]
    t.offer("cam", T0 + 700_000_000)
    assert t.due() == [T0 + 400_000_000]  # joints only reached 450 ms
    t.reset()
    assert t.next_tick_ns is None and t.due() == []


def test_stamp_ticker_forces_ticks_a_silent_stream_holds_up():
    t = ticks.StampTicker(0, 5.0, ("cam", "joints"), max_lag_s=0.5)
    t.offer("joints", T0)
    assert t.due() == []  # no camera yet, but not max_lag_s past the tick either
    t.offer("joints", T0 + 600_000_000)
    assert t.due() == [T0]  # forced: the camera never came
    with pytest.raises(ValueError):
        ticks.StampTicker(0, 5.0, ())
