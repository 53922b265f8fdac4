"""chunk_executor fails closed over real DDS (issue 13 items 1, 5, 6): impossible chunks
are refused with a reason and the node keeps spinning; names are checked against the
configured joint names; a future chunk locks nothing out; NaN logvar holds; sim time
jumping back or stalling resets the executor and /diagnostics keeps flowing."""

from __future__ import annotations

import math

import numpy as np
from rosgraph_msgs.msg import Clock

from restac_ros.nodes import conversions, qos
from test.nodes.test_chunk_executor import WAIT_S, ramp
from test.ros_helpers import spin_until

S = 1_000_000_000


def _alive_and_commanding(h) -> None:
    h.commands.clear()
    h.send(ramp(np.array([0.0, 0.0, 0.5]), np.array([0.1, 0.1, 0.0])), h.now_ns())
    assert spin_until(h.executor, lambda: len(h.commands) > 5, WAIT_S), h.diag_text()
    assert h.spinner.error is None


def test_impossible_dt_is_refused_and_the_node_keeps_spinning(make_harness):
    h = make_harness()
    h.wait_matched()
    for dt in (math.inf, 1e300, math.nan, 0.0, -0.1, 5.0):  # 5 s > max_chunk_dt_s
        h.send(ramp(np.zeros(3), np.zeros(3)), h.now_ns(), dt=dt)
    h.send(ramp(np.zeros(3), np.zeros(3)), h.now_ns(), horizon=7)  # size mismatch
    h.send(np.full((20, 3), np.inf), h.now_ns())
    assert spin_until(h.executor, lambda: "rejected.invalid_chunk=8" in h.diag_text(), WAIT_S), (
        h.diag_text()
    )
    assert h.commands == [] and "chunks_accepted=0" in h.diag_text()
    _alive_and_commanding(h)


def test_names_are_checked_against_the_configured_joint_names(make_harness):
    h = make_harness()
    h.wait_matched()
    h.send(ramp(np.zeros(3), np.zeros(3)), h.now_ns(), names=["a", "b", "c"])
    assert spin_until(h.executor, lambda: "names_mismatch" in h.diag_text(), WAIT_S)
    assert h.commands == []
    _alive_and_commanding(h)  # the real chunk (configured names) is accepted afterwards


def test_chunk_from_the_future_is_refused(make_harness):
    h = make_harness()
    h.wait_matched()
    h.send(ramp(np.ones(3), np.zeros(3)), h.now_ns() + 3600 * S)
    assert spin_until(h.executor, lambda: "chunk_from_future" in h.diag_text(), WAIT_S)
    h.spin_for(0.3)
    # at most the measured state is held; the future chunk (ones) is never played
    assert all(np.allclose(p, [0.0, 0.0, 0.5]) for _, p in h.commands), h.commands[-1]
    _alive_and_commanding(h)


def test_nan_logvar_holds(make_harness):
    h = make_harness(logvar_guard=True, logvar_bound=5.0, guard_mode="hold")
    h.wait_matched()
    h.send(ramp(np.array([1.0, 1.0, 0.9]), np.ones(3)), h.now_ns(), logvar=math.nan)
    h.wait(lambda: len(h.commands) > 20 and "hold_uncertain" in h.diag_text(), "NaN hold")
    positions = np.array([p for _, p in h.commands])
    assert np.allclose(positions, [0.0, 0.0, 0.5])  # the seeded (measured) state


class SimClock:
    """Publishes /clock every 10 ms of wall time, advancing 10 ms unless paused."""

    def __init__(self, h, start_ns: int) -> None:
        self.ns, self.paused = start_ns, False
        self._pub = h.client.create_publisher(Clock, "/clock", qos.CLOCK)
        h.client.create_timer(0.01, self._tick)

    def _tick(self) -> None:
        if self.paused:
            return
        self.ns += 10_000_000
        self._pub.publish(Clock(clock=conversions.ns_to_stamp(self.ns)))


def test_sim_time_jump_back_and_stall(make_harness):
    h = make_harness(use_sim_time=True, crossfade_s=0.0, seed_from_joint_states=False,
                     clock_stall_s=1.0)
    clock = SimClock(h, 100 * S)
    h.wait_matched()
    assert spin_until(h.executor, lambda: "clock=running" in h.diag_text(), WAIT_S), h.diag_text()
    h.send(ramp(np.zeros(3), np.full(3, 0.1), horizon=50), clock.ns)
    assert spin_until(h.executor, lambda: len(h.commands) > 5, WAIT_S), h.diag_text()
    clock.ns -= 10 * S  # the bag loops
    assert spin_until(h.executor, lambda: "clock_jump_back" in h.diag_text(), WAIT_S), (
        h.diag_text()
    )
    # the executor was reset: a chunk on the new timeline is accepted, not "older"
    h.send(ramp(np.zeros(3), np.full(3, 0.1), horizon=50), clock.ns)
    assert spin_until(h.executor, lambda: "chunks_accepted=2" in h.diag_text(), WAIT_S), (
        h.diag_text()
    )
    clock.paused = True  # /clock stops: diagnostics keep flowing and say so
    assert spin_until(h.executor, lambda: "state=clock_stalled" in h.diag_text(), WAIT_S), (
        h.diag_text()
    )
    before = len(h.diags)
    h.wait(lambda: len(h.diags) >= before + 3, "/diagnostics stopped while /clock is stalled")
    assert "clock_stalled" in h.diag_text()
    assert h.spinner.error is None
