"""chunk_executor over real DDS: continuity at chunk boundaries, limits, hold, guard."""

from __future__ import annotations

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from restac_ros.msg import ActionChunk
from sensor_msgs.msg import JointState

from restac_ros.nodes import conversions, qos
from restac_ros.nodes.chunk_executor import ChunkExecutorNode
from restac_ros.nodes.spin import SpinThread
from test.ros_helpers import spin_until

NAMES = ["joint1", "joint2", "gripper"]
DT = 0.1
RATE = 50.0
S = 1_000_000_000
# The node publishes commands keep-last-1; the test listens with a deep queue so a slow
# test spin (loaded machine) does not lose commands between two it does see.
COMMAND_LISTEN = qos.keep_last(1000, qos.COMMAND.reliability)
WAIT_S = 30.0  # bounds every wait on a condition (seconds on an idle machine)


class ExecutorHarness:
    def __init__(self, context, **params) -> None:
        merged = {
            "control_rate_hz": RATE,
            "crossfade_s": 0.2,
            "max_chunk_age_s": 1.0,
            "diagnostics_period_s": 0.2,
            "joint_names": NAMES,
            **params,
        }
        self.node = ChunkExecutorNode(
            context=context, parameter_overrides=[Parameter(k, value=v) for k, v in merged.items()]
        )
        self.spinner = SpinThread(self.node, context).start()
        self.client = rclpy.create_node("executor_test_client", context=context)
        self.chunk_pub = self.client.create_publisher(
            ActionChunk, "/restac/action_chunk", qos.OUTPUT
        )
        self.joint_pub = self.client.create_publisher(JointState, "/joint_states", qos.SENSOR)
        self.commands: list[tuple[int, np.ndarray]] = []
        self.diags: list[DiagnosticArray] = []
        if merged.get("command_type", "joint_state") == "joint_state":
            self.client.create_subscription(
                JointState,
                merged.get("command_topic", "/restac/command"),
                self._on_cmd,
                COMMAND_LISTEN,
            )
        self.client.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 10)
        self.client.create_timer(0.02, self._publish_joints)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.client)
        self.next_id = 0

    def _on_cmd(self, msg: JointState) -> None:
        assert list(msg.name) == NAMES
        self.commands.append((conversions.stamp_to_ns(msg.header.stamp), np.array(msg.position)))

    def _publish_joints(self) -> None:
        msg = JointState()
        msg.header.stamp = self.client.get_clock().now().to_msg()
        msg.name = NAMES
        msg.position = [0.0, 0.0, 0.5]
        self.joint_pub.publish(msg)

    def now_ns(self) -> int:
        return self.client.get_clock().now().nanoseconds

    def send(self, actions: np.ndarray, t0_ns: int, logvar: float = -5.0, **fields) -> None:
        msg = conversions.action_chunk(
            stamp_ns=t0_ns,
            frame_id="",
            chunk_id=self.next_id,
            names=NAMES,
            actions=actions,
            dt_s=DT,
            inference_ms=1.0,
            logvar=logvar,
            gate=0.5,
        )
        for key, value in fields.items():  # raw field overrides (adversarial tests)
            setattr(msg, key, value)
        self.next_id += 1
        self.chunk_pub.publish(msg)

    def spin_for(self, seconds: float) -> None:
        spin_until(self.executor, lambda: False, seconds)

    def wait(self, condition, what: str = "") -> None:
        assert spin_until(self.executor, condition, WAIT_S), f"{what}: {self.diag_text()}"

    def wait_matched(self) -> None:
        """Chunks reach the node, its commands reach us, and it holds a measured joint
        state to seed from (the seed is part of what the tests check)."""
        topic = self.node.p["command_topic"]
        commands = [p for p in self.node.publishers if p.topic_name == topic]
        seed = self.node.p["seed_from_joint_states"]
        self.wait(
            lambda: self.chunk_pub.get_subscription_count() > 0
            and all(p.get_subscription_count() > 0 for p in commands)
            and (not seed or all(n in self.node._joints for n in self.node.p["joint_names"])),
            "not matched / no joint state at the node",
        )
        assert self.commands == []

    def commands_from(self, t_ns: int) -> list[np.ndarray]:
        return [p for t, p in self.commands if t >= t_ns]

    def wait_clock(self, t_ns: int) -> None:
        """Spin until the (shared system) clock reaches t_ns."""
        self.wait(lambda: self.now_ns() >= t_ns, "clock")

    def diag_text(self) -> str:
        for array in reversed(self.diags):
            for s in array.status:
                if s.name == "restac: chunk_executor":
                    return s.message + " " + " ".join(f"{kv.key}={kv.value}" for kv in s.values)
        return ""

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.spinner.stop()
        self.client.destroy_node()
        self.node.destroy_node()


def ramp(start: np.ndarray, slope: np.ndarray, horizon: int = 20) -> np.ndarray:
    return start[None, :] + slope[None, :] * (np.arange(horizon)[:, None] * DT)


def test_continuous_across_chunk_boundaries(make_harness):
    h = make_harness(max_velocity=[10.0, 10.0, 10.0])
    h.wait_matched()
    t1 = h.now_ns()
    h.send(ramp(np.array([0.0, 0.0, 0.5]), np.array([0.2, -0.1, 0.0])), t1)
    # the next chunk disagrees with the first by 0.15 (same slope, stamped 0.6 s later, so
    # the offset does not depend on when it arrives): the executor must blend, not jump
    h.wait_clock(t1 + 6 * S // 10)
    h.send(ramp(np.array([0.27, -0.06, 0.35]), np.array([0.2, -0.1, 0.0])), t1 + 6 * S // 10)
    h.wait_clock(t1 + 14 * S // 10)
    h.send(ramp(np.array([0.1, 0.1, 0.6]), np.array([0.0, 0.0, 0.0])), t1 + 14 * S // 10)
    h.wait(lambda: len(h.commands_from(t1 + 22 * S // 10)) > 0 and len(h.commands) > 50
           and "chunks_accepted=3" in h.diag_text(), "commands after the third chunk")
    times = np.array([t for t, _ in h.commands]) / 1e9
    positions = np.array([p for _, p in h.commands])
    assert len(positions) > 50, h.diag_text()
    # Offsets up to 0.33 between chunks, blended by a 0.2 s smoothstep (slope <= 1.5 / 0.2 s)
    # on top of the chunks' own 0.2/s: |velocity| <= 0.33 * 7.5 + 0.2 ~ 2.7/s. A step
    # discontinuity would be 0.33 in one 20 ms tick (16/s). Velocity uses the command
    # stamps, so a late tick on a loaded machine does not count as a jump.
    velocity = np.abs(np.diff(positions, axis=0)) / np.diff(times)[:, None]
    assert velocity.max() < 4.0, velocity.max()


def test_limits_respected(make_harness):
    vmax = np.array([0.5, 0.5, 0.25])
    h = make_harness(
        position_min=[-0.2, -0.2, 0.0], position_max=[0.3, 0.3, 1.0], max_velocity=vmax.tolist()
    )
    h.wait_matched()
    t0 = h.now_ns()
    h.send(ramp(np.array([0.0, -0.5, 0.5]), np.array([2.0, -1.0, 3.0])), t0)
    h.wait(lambda: len(h.commands) > 30 and h.commands_from(t0 + 15 * S // 10), "commands")
    positions = np.array([p for _, p in h.commands])
    assert np.all(positions <= np.array([0.3, 0.3, 1.0]) + 1e-9)
    assert np.all(positions >= np.array([-0.2, -0.2, 0.0]) - 1e-9)
    steps = np.abs(np.diff(positions, axis=0))
    assert np.all(steps <= vmax / RATE + 1e-9), steps.max(axis=0)


def test_holds_on_stale_chunk_and_after_chunk_end(make_harness):
    h = make_harness()
    h.wait_matched()
    h.send(ramp(np.array([1.0, 1.0, 1.0]), np.ones(3)), h.now_ns() - 5 * S)  # 5 s old
    h.wait(lambda: "stale_chunk" in h.diag_text(), "stale chunk not reported")
    assert h.commands == []  # no chunk accepted yet: nothing to command
    t0 = h.now_ns()
    h.send(ramp(np.array([0.0, 0.0, 0.5]), np.array([0.1, 0.1, 0.0]), horizon=5), t0)
    # the chunk covers 0.4 s; afterwards the executor holds its last command
    h.wait(lambda: len(h.commands_from(t0 + 4 * S // 10 + 1)) >= 20
           and "hold_chunk_end" in h.diag_text(), "20 commands after the chunk's end")
    positions = np.array([p for _, p in h.commands])
    tail = positions[-20:]
    assert np.allclose(tail, tail[-1]), tail
    assert np.allclose(tail[-1], [0.04, 0.04, 0.5], atol=1e-6)  # last action, not extrapolated


def test_logvar_guard_holds(make_harness):
    h = make_harness(logvar_guard=True, logvar_bound=0.0, guard_mode="hold")
    h.wait_matched()
    h.send(ramp(np.array([0.5, 0.5, 0.9]), np.ones(3)), h.now_ns(), logvar=1.0)
    h.wait(lambda: len(h.commands) > 10 and "hold_uncertain" in h.diag_text(), "guard hold")
    positions = np.array([p for _, p in h.commands])
    assert np.allclose(positions, [0.0, 0.0, 0.5])  # the seeded (measured) state


def test_float64_multi_array_and_pose_stamped_outputs(ros_context):
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import Float64, Float64MultiArray

    got: dict[str, list] = {"array": [], "pose": [], "gripper": []}
    h1 = ExecutorHarness(
        ros_context, command_type="float64_multi_array", command_topic="/test/forward_command"
    )
    h1.client.create_subscription(
        Float64MultiArray, "/test/forward_command", got["array"].append, qos.COMMAND
    )
    try:
        h1.wait_matched()
        h1.send(ramp(np.array([0.0, 0.0, 0.5]), np.array([0.1, 0.0, 0.0])), h1.now_ns())
        h1.wait(lambda: len(got["array"]) > 5, "Float64MultiArray commands")
        assert len(got["array"][-1].data) == 3
    finally:
        h1.close()
    ee_names = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]
    h2 = ExecutorHarness(ros_context, command_type="pose_stamped", seed_from_joint_states=False,
                         joint_names=ee_names)
    h2.client.create_subscription(PoseStamped, "/restac/command", got["pose"].append, qos.COMMAND)
    h2.client.create_subscription(
        Float64, "/restac/gripper_command", got["gripper"].append, qos.COMMAND
    )
    try:
        h2.wait_matched()
        row = np.array([0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 0.8])
        msg = conversions.action_chunk(
            stamp_ns=h2.now_ns(),
            frame_id="base_link",
            chunk_id=0,
            names=ee_names,
            actions=np.tile(row, (10, 1)),
            dt_s=DT,
            inference_ms=1.0,
            logvar=0.0,
            gate=0.0,
        )
        h2.chunk_pub.publish(msg)
        h2.wait(lambda: len(got["pose"]) > 5 and got["gripper"], "pose + gripper commands")
        pose = got["pose"][-1]
        assert pose.header.frame_id == "base_link"
        assert pose.pose.position.x == pytest.approx(0.4) and pose.pose.orientation.w == 1.0
        assert got["gripper"][-1].data == pytest.approx(0.8)
    finally:
        h2.close()


def test_chunk_not_matching_the_limits_is_reported_not_fatal(make_harness):
    h = make_harness(position_min=[-1.0] * 8, position_max=[1.0] * 8)  # 8 dims, chunks have 3
    h.wait_matched()
    h.send(ramp(np.zeros(3), np.zeros(3)), h.now_ns())
    # reported once at start-up and once for the refused chunk
    h.wait(lambda: "rejected.config_mismatch=2:" in h.diag_text(), "chunk not refused")
    assert h.commands == []
    assert h.spinner.error is None  # the executor thread is still spinning
