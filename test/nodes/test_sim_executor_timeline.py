"""chunk_executor as the lockstep sim needs it, on a hand-driven /clock over real DDS:
a verdict per chunk on ~/chunk_verdict, and a clock jump back (a sim episode reset) that
starts a new timeline: no command of the old one plays and the control ticks land on
the new grid (rcl would keep the old timer phase). Every wait is on a condition."""

from __future__ import annotations

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from restac_ros.msg import ActionChunk
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Header

from restac_ros.nodes import conversions, qos
from restac_ros.nodes.chunk_executor import ChunkExecutorNode
from restac_ros.nodes.spin import SpinThread
from test.ros_helpers import spin_until

S = 1_000_000_000
MS = 1_000_000
STEP = [0, 3_333_333, 6_666_667]  # the sim's 1/300 s steps within 10 ms
NAMES = ["joint1", "joint2", "gripper"]
WAIT_S = 60.0


class Rig:
    def __init__(self, context) -> None:
        params = {"use_sim_time": True, "control_rate_hz": 100.0, "crossfade_s": 0.05,
                  "joint_names": NAMES, "clock_jump_tolerance_s": 1e-6,
                  "clock_stall_s": 3600.0, "diagnostics_period_s": 0.1, "max_chunk_age_s": 1.0}
        self.node = ChunkExecutorNode(
            context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.spinner = SpinThread(self.node, context).start()
        self.client = rclpy.create_node("timeline_client", context=context)
        self.clock_pub = self.client.create_publisher(Clock, "/clock", qos.CLOCK)
        self.chunk_pub = self.client.create_publisher(ActionChunk, "/restac/action_chunk",
                                                      qos.OUTPUT)
        joints = self.client.create_publisher(JointState, "/joint_states", qos.SENSOR)
        self.client.create_timer(0.02, lambda: joints.publish(
            JointState(name=NAMES, position=[0.0, 0.0, 0.0])))
        self.commands: dict[int, np.ndarray] = {}
        self.verdicts: list[tuple[int, str]] = []
        self.diag: dict[str, str] = {}
        self.diag_stamp = 0
        sub = self.client.create_subscription
        sub(JointState, "/restac/command", lambda m: self.commands.__setitem__(
            conversions.stamp_to_ns(m.header.stamp), np.array(m.position)),
            qos.keep_last(1000, qos.COMMAND.reliability))
        sub(Header, "/chunk_executor/chunk_verdict", lambda m: self.verdicts.append(
            (conversions.stamp_to_ns(m.stamp), m.frame_id)), qos.OUTPUT)
        sub(DiagnosticArray, "/diagnostics", self._on_diag, qos.DIAGNOSTICS)
        self.spin = SingleThreadedExecutor(context=context)
        self.spin.add_node(self.client)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "restac: chunk_executor":
                self.diag = {kv.key: kv.value for kv in status.values}
                self.diag_stamp = conversions.stamp_to_ns(msg.header.stamp)

    def until(self, condition) -> bool:
        return spin_until(self.spin, condition, WAIT_S)

    def clock(self, ns: int, done=None) -> None:
        """Publish /clock ns (again and again: best effort) until `done()` (default: the
        executor reported on /diagnostics at ns, i.e. it has processed that clock)."""
        done = done or (lambda: self.diag_stamp == ns)

        def published_and_done() -> bool:
            self.clock_pub.publish(Clock(clock=conversions.ns_to_stamp(ns)))
            return done()

        assert self.until(published_and_done), f"/clock {ns}: condition never held"

    def chunk(self, t0_ns: int, value: float, names=NAMES) -> str:
        count = len(self.verdicts)
        self.chunk_pub.publish(conversions.action_chunk(
            stamp_ns=t0_ns, frame_id="", chunk_id=count, names=list(names),
            actions=np.full((20, len(names)), value), dt_s=0.1, inference_ms=0.0,
            logvar=0.0, gate=0.0))
        assert self.until(lambda: len(self.verdicts) > count)
        return self.verdicts[-1]

    def close(self) -> None:
        self.spinner.stop()
        self.spin.shutdown()
        self.client.destroy_node()
        self.node.destroy_node()


def test_verdicts_and_a_new_timeline_after_a_jump_back(ros_context) -> None:
    rig = Rig(ros_context)
    try:
        assert rig.until(lambda: rig.chunk_pub.get_subscription_count() >= 1)
        t = 100 * S
        rig.clock(t)
        assert rig.chunk(t, 1.0) == (t, "accepted")
        assert rig.chunk(t, 1.0, names=["a", "b", "c"]) == (t, "names_mismatch")
        assert rig.chunk(t - 5 * S, 1.0) == (t - 5 * S, "stale_chunk")
        for k in range(1, 9):  # past the crossfade: the old timeline's command is 1.0
            rig.clock(t + k * 10 * MS, lambda k=k: t + k * 10 * MS in rig.commands)
        np.testing.assert_allclose(rig.commands[t + 80 * MS], 1.0)
        rig.clock(t + 80 * MS + STEP[1])  # off the 10 ms grid, like sim_node's reset blip
        # the reset: sim time restarts at 10 s
        back = 10 * S
        rig.clock(back)
        assert rig.until(lambda: rig.diag.get("clock_jumps_back") == "1")
        before = set(rig.commands)
        for ns in (back + STEP[1], back + STEP[2], back + 10 * MS):
            rig.clock(ns)
        assert set(rig.commands) == before  # no chunk on this timeline: nothing to send
        assert rig.chunk(back + 10 * MS, -1.0) == (back + 10 * MS, "accepted")
        for ns in (back + 10 * MS + STEP[1], back + 10 * MS + STEP[2]):
            rig.clock(ns)
        rig.clock(back + 20 * MS, lambda: back + 20 * MS in rig.commands)
        new = sorted(set(rig.commands) - before)
        assert new == [back + 20 * MS]  # on the new grid, not the old timer's phase
        # crossfading from the measured joints (0) or from nothing, never from the old 1.0
        assert rig.commands[back + 20 * MS].max() < 0
    finally:
        rig.close()
