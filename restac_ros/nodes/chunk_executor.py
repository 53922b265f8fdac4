"""chunk_executor: ActionChunk -> one command per control tick via restac_ros.core.executor.

Latency compensation, crossfade, limits, hold and the uncertainty guard are
the core's (ChunkExecutor); this node converts messages, keeps time with the
node clock (use_sim_time aware) and publishes /restac/command + /diagnostics.
"""

from __future__ import annotations

import sys

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray

from restac_ros.core.executor import ChunkExecutor, ExecStatus, ExecutorConfig, GuardMode
from restac_ros.msg import ActionChunk
from restac_ros.nodes import conversions, diagnostics, qos
from restac_ros.nodes.params import declare
from restac_ros.nodes.spin import run_nodes

NODE_NAME = "chunk_executor"
COMMAND_TYPES = ("joint_state", "float64_multi_array", "pose_stamped")

PARAMETERS = {
    "action_chunk_topic": ("/restac/action_chunk", "ActionChunk input topic"),
    "command_topic": ("/restac/command", "Command output topic (one message per control tick)"),
    "command_type": (
        "joint_state",
        "joint_state (sensor_msgs/JointState) | float64_multi_array (ros2_control forward "
        "controllers) | pose_stamped (geometry_msgs/PoseStamped + gripper, EE action spaces)",
    ),
    "gripper_topic": ("/restac/gripper_command", "std_msgs/Float64 gripper command (pose_stamped)"),
    "ee_frame_id": ("base_link", "frame_id of PoseStamped commands"),
    "joint_states_topic": ("/joint_states", "Measured joint states (seed the held command)"),
    "seed_from_joint_states": (True, "Hold the measured joint positions before the first chunk"),
    "control_rate_hz": (100.0, "Command rate (Hz)"),
    "crossfade_s": (0.2, "Blend time from the last command into a new chunk (s)"),
    "max_chunk_age_s": (1.0, "Reject chunks whose observation stamp is older than this (s)"),
    "position_min": (
        Parameter.Type.DOUBLE_ARRAY,
        "Per-dimension lower position limit (unset = none)",
    ),
    "position_max": (
        Parameter.Type.DOUBLE_ARRAY,
        "Per-dimension upper position limit (unset = none)",
    ),
    "max_velocity": (
        Parameter.Type.DOUBLE_ARRAY,
        "Per-dimension velocity limit, units/s (unset = none)",
    ),
    "logvar_guard": (False, "Slow down or hold when a chunk's tactile logvar exceeds logvar_bound"),
    "logvar_bound": (0.0, "Tactile logvar above which the guard acts"),
    "guard_mode": ("slow", "slow | hold: what the uncertainty guard does"),
    "guard_speed_scale": (0.25, "Playback speed in guard_mode slow, (0, 1]"),
    "diagnostics_topic": ("/diagnostics", "diagnostic_msgs/DiagnosticArray topic"),
    "diagnostics_period_s": (1.0, "Period of /diagnostics publications (s)"),
}


def executor_config(p: dict, dim: int) -> ExecutorConfig:
    """Node parameters -> core ExecutorConfig for a `dim`-dimensional action space."""

    def limit(name: str) -> np.ndarray | None:
        value = p[name]
        if value is None or len(value) == 0:
            return None
        if len(value) != dim:
            raise ValueError(f"parameter {name} has {len(value)} values, chunks have {dim} dims")
        return np.asarray(value, dtype=np.float64)

    return ExecutorConfig(
        control_period_s=1.0 / p["control_rate_hz"],
        crossfade_s=p["crossfade_s"],
        position_min=limit("position_min"),
        position_max=limit("position_max"),
        max_velocity=limit("max_velocity"),
        logvar_bound=p["logvar_bound"] if p["logvar_guard"] else None,
        guard_mode=GuardMode(p["guard_mode"]),
        guard_speed_scale=p["guard_speed_scale"],
    )


class ChunkExecutorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.p = declare(self, PARAMETERS)
        if self.p["command_type"] not in COMMAND_TYPES:
            raise ValueError(
                f"command_type must be one of {COMMAND_TYPES}, got {self.p['command_type']!r}"
            )
        GuardMode(self.p["guard_mode"])
        self._core: ChunkExecutor | None = None
        self._names: tuple[str, ...] = ()
        self._joints: dict[str, float] = {}
        self._last_status = ExecStatus.NO_COMMAND
        self._reasons = diagnostics.ReasonLog()
        self._chunks_accepted = 0
        self._commands_sent = 0
        self._limited = 0
        self._command_rate = diagnostics.RateCounter()
        self._make_publishers()
        self.create_subscription(
            ActionChunk, self.p["action_chunk_topic"], self._on_chunk, qos.OUTPUT
        )
        self.create_subscription(
            JointState, self.p["joint_states_topic"], self._on_joints, qos.SENSOR
        )
        self.create_timer(1.0 / self.p["control_rate_hz"], self._on_tick)
        # /diagnostics on the steady clock: it must flow before /clock starts (use_sim_time)
        self.create_timer(
            self.p["diagnostics_period_s"],
            self._publish_diagnostics,
            clock=diagnostics.steady_clock(),
        )

    def _make_publishers(self) -> None:
        kind = self.p["command_type"]
        msg_type = {
            "joint_state": JointState,
            "float64_multi_array": Float64MultiArray,
            "pose_stamped": PoseStamped,
        }[kind]
        self._command_pub = self.create_publisher(msg_type, self.p["command_topic"], qos.COMMAND)
        self._gripper_pub = (
            self.create_publisher(Float64, self.p["gripper_topic"], qos.COMMAND)
            if kind == "pose_stamped"
            else None
        )
        self._diag_pub = self.create_publisher(
            diagnostics.DiagnosticArray, self.p["diagnostics_topic"], qos.DIAGNOSTICS
        )

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_joints(self, msg: JointState) -> None:
        try:
            self._joints = conversions.joint_positions(msg)
        except conversions.ConversionError as exc:
            self._reasons.add("bad_joint_state", str(exc))

    def _on_chunk(self, msg: ActionChunk) -> None:
        now_ns = self._now_ns()
        try:
            chunk = conversions.chunk_from_msg(msg)
        except ValueError as exc:  # ConversionError is a ValueError too
            self._reasons.add("invalid_chunk", str(exc))
            return
        age_s = (now_ns - chunk.t0_ns) / 1e9
        if age_s > self.p["max_chunk_age_s"]:
            self._reasons.add("stale_chunk", f"chunk {chunk.chunk_id} is {age_s:.3f}s old")
            return
        names = tuple(msg.names)
        if self._core is None:
            try:
                self._start_core(names)
            except ValueError as exc:  # limits sized for another action space
                self._reasons.add("config_mismatch", f"chunk {list(names)}: {exc}")
                return
        elif names != self._names:
            self._reasons.add("names_changed", f"chunk names {list(names)} != {list(self._names)}")
            return
        if self._core.add_chunk(chunk, now_ns):
            self._chunks_accepted += 1
        else:
            self._reasons.add(
                "chunk_not_used", f"chunk {chunk.chunk_id} already past or older than current"
            )

    def _start_core(self, names: tuple[str, ...]) -> None:
        core = ChunkExecutor(executor_config(self.p, len(names)), len(names))
        self._names, self._core = names, core
        if self.p["seed_from_joint_states"] and all(n in self._joints for n in names):
            seed = np.array([self._joints[n] for n in names])
            if np.all(np.isfinite(seed)):
                self._core.seed(seed)
        self.get_logger().info(f"executing chunks over {list(names)}")

    def _on_tick(self) -> None:
        if self._core is None:
            return
        command = self._core.step(self._now_ns())
        self._last_status = command.status
        if command.positions is None:
            return
        self._limited += int(command.limited)
        self._publish_command(command.t_ns, command.positions)
        self._commands_sent += 1
        self._command_rate.tick()

    def _publish_command(self, t_ns: int, positions: np.ndarray) -> None:
        kind = self.p["command_type"]
        if kind == "joint_state":
            msg = JointState()
            msg.header.stamp = conversions.ns_to_stamp(t_ns)
            msg.name = list(self._names)
            msg.position = positions.astype(np.float64)
            self._command_pub.publish(msg)
        elif kind == "float64_multi_array":
            self._command_pub.publish(conversions.float64_array(positions, "command"))
        else:
            self._command_pub.publish(
                conversions.pose_stamped(positions, t_ns, self.p["ee_frame_id"])
            )
            if len(positions) > 6:
                self._gripper_pub.publish(Float64(data=float(positions[6])))

    def _publish_diagnostics(self) -> None:
        reasons = self._reasons.snapshot()
        holding = (
            self._last_status.value.startswith("hold") or self._last_status is ExecStatus.NO_COMMAND
        )
        level = diagnostics.WARN if holding or reasons else diagnostics.OK
        values = {
            "state": self._last_status.value,
            "chunks_accepted": self._chunks_accepted,
            "commands_sent": self._commands_sent,
            "command_rate_hz": self._command_rate.rate_hz(),
            "limited_ticks": self._limited,
            "names": ",".join(self._names),
        }
        for key, (count, last) in reasons.items():
            values[f"rejected.{key}"] = f"{count}: {last}"
        message = self._last_status.value + (f"; rejected: {', '.join(reasons)}" if reasons else "")
        self._diag_pub.publish(
            diagnostics.array(
                self._now_ns(),
                [
                    diagnostics.status(
                        f"restac: {NODE_NAME}",
                        level,
                        message,
                        values,
                        self.get_fully_qualified_name(),
                    )
                ],
            )
        )


def main(args: list[str] | None = None) -> int:
    return run_nodes(lambda: [ChunkExecutorNode()], args=sys.argv if args is None else args)


if __name__ == "__main__":
    sys.exit(main())
