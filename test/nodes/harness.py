"""In-process policy_node harness: the node in its own spin thread, streams + listener in
another executor, all over real (loopback) DDS. Bounded waits only."""

from __future__ import annotations

from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from restac_ros.msg import ActionChunk, TactileDiagnostics
from trajectory_msgs.msg import JointTrajectory

from restac_ros.nodes import qos
from restac_ros.nodes.policy_node import PolicyNode
from restac_ros.nodes.spin import SpinThread
from test.nodes.streams import SyntheticStreams
from test.ros_helpers import spin_until

FAST = {
    "autostart": False,
    "rate_hz": 10.0,
    "camera_max_age_s": 0.5,
    "tactile_max_age_s": 0.5,
    "joint_max_age_s": 0.3,
    "diagnostics_period_s": 0.25,
}


class PolicyHarness:
    def __init__(
        self, context, checkpoint: Path, prompt: str | None = "pick up the cube",
        streams: dict | None = None, **params
    ) -> None:
        merged = {**FAST, "checkpoint_dir": str(checkpoint), **params}
        self.node = PolicyNode(
            context=context, parameter_overrides=[Parameter(k, value=v) for k, v in merged.items()]
        )
        self.spinner = SpinThread(self.node, context).start()
        self.configured = self.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        if self.configured:
            assert self.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        self.streams = SyntheticStreams(context, prompt=prompt, **(streams or {}))
        self.listener = rclpy.create_node("policy_test_listener", context=context)
        self.chunks: list[ActionChunk] = []
        self.trajectories: list[JointTrajectory] = []
        self.tactile: list[TactileDiagnostics] = []
        self.diagnostics: list[DiagnosticArray] = []
        sub = self.listener.create_subscription
        sub(ActionChunk, "/restac/action_chunk", self.chunks.append, qos.OUTPUT)
        sub(JointTrajectory, "/restac/joint_trajectory", self.trajectories.append, qos.OUTPUT)
        sub(TactileDiagnostics, "/restac/tactile/diagnostics", self.tactile.append, qos.OUTPUT)
        sub(DiagnosticArray, "/diagnostics", self.diagnostics.append, qos.DIAGNOSTICS)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.streams)
        self.executor.add_node(self.listener)

    def start_sim_clock(self, start_ns: int) -> dict:
        """Publish /clock from the listener, +10 ms every 10 ms of wall time; the returned
        dict's "ns" may be moved (a jump) and "paused" set (a stall)."""
        from rosgraph_msgs.msg import Clock

        from restac_ros.nodes import conversions

        clock = {"ns": int(start_ns), "paused": False}
        pub = self.listener.create_publisher(Clock, "/clock", qos.CLOCK)

        def tick() -> None:
            if not clock["paused"]:
                clock["ns"] += 10_000_000
                pub.publish(Clock(clock=conversions.ns_to_stamp(clock["ns"])))

        self.listener.create_timer(0.01, tick)
        return clock

    def spin_until(self, condition, timeout_s: float) -> bool:
        return spin_until(self.executor, condition, timeout_s)

    def spin_for(self, seconds: float) -> None:
        spin_until(self.executor, lambda: False, seconds)

    def policy_status(self):
        """The newest /diagnostics status of policy_node (None if none yet)."""
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == "restac: policy_node":
                    return status
        return None

    def status_text(self) -> str:
        status = self.policy_status()
        if status is None:
            return ""
        return status.message + "\n" + "\n".join(f"{kv.key}={kv.value}" for kv in status.values)

    def diagnostics_mention(self, *words: str) -> bool:
        text = self.status_text()
        return all(w in text for w in words)

    def close(self) -> None:
        if self.node.lifecycle_state == "active":
            self.node.trigger_deactivate()
        self.node.trigger_shutdown()
        self.executor.shutdown(timeout_sec=2.0)
        self.spinner.stop()
        for n in (self.streams, self.listener, self.node):
            n.destroy_node()
