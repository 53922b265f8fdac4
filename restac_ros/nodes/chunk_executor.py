"""chunk_executor: ActionChunk -> one command per control tick via restac_ros.core.executor.

Latency compensation, crossfade, limits, hold and the uncertainty guard are
the core's (ChunkExecutor); this node converts messages, keeps time with the
node clock (use_sim_time aware) and publishes /restac/command + /diagnostics.

Fail closed: every ActionChunk field is validated (conversions.chunk_from_msg, the
core's Chunk), names are checked against the configured `joint_names`, and every
callback is guarded: a message that cannot be used is counted with its reason on
/diagnostics and the node keeps spinning. Every chunk's verdict goes out on
`~/chunk_verdict` (std_msgs/Header: stamp = the chunk's stamp, frame_id = "accepted" or
the refusal key): what a lockstep simulator waits for (nodes/sim_node.py). The node
clock is watched on the steady clock (core.clock_watch): stalling (/clock stopped)
resets the executor, which then holds its last command until a fresh chunk comes; time
jumping back (a bag loop, a sim episode reset) starts a new timeline: the last command
is dropped too (the next chunk seeds from the measured joints again) and the control
timer restarts on the new time grid.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray, Header

from restac_ros.core.clock_watch import ClockEvent, ClockWatch
from restac_ros.core.executor import ChunkExecutor, ExecStatus, ExecutorConfig, GuardMode
from restac_ros.msg import ActionChunk
from restac_ros.nodes import conversions, diagnostics, qos
from restac_ros.nodes.params import declare
from restac_ros.nodes.policy_params import JOINTS
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
    "joint_names": (
        JOINTS,
        "Action names every chunk must carry, in this order (the joint_position joint names; "
        "x, y, z, roll, pitch, yaw, gripper for ee_pose_rpy). Other chunks are refused",
    ),
    "max_chunk_dt_s": (1.0, "Refuse chunks whose dt is not finite in (0, max_chunk_dt_s] (s)"),
    "max_chunk_lead_s": (
        0.25,
        "Refuse chunks stamped more than this after now (s): clock skew tolerance",
    ),
    "clock_jump_tolerance_s": (
        0.5,
        "Node clock going back by more than this (s; a bag loop under use_sim_time) resets "
        "the executor",
    ),
    "clock_stall_s": (
        2.0,
        "Node clock not advancing for this long (wall s; /clock stopped) resets the executor",
    ),
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

    if not 0 < p["control_rate_hz"] < float("inf"):
        raise ValueError(f"control_rate_hz must be finite and > 0, got {p['control_rate_hz']}")
    return ExecutorConfig(
        control_period_s=1.0 / p["control_rate_hz"],
        crossfade_s=p["crossfade_s"],
        position_min=limit("position_min"),
        position_max=limit("position_max"),
        max_velocity=limit("max_velocity"),
        logvar_bound=p["logvar_bound"] if p["logvar_guard"] else None,
        guard_mode=GuardMode(p["guard_mode"]),
        guard_speed_scale=p["guard_speed_scale"],
        max_chunk_lead_s=p["max_chunk_lead_s"],
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
        if not 0 < self.p["max_chunk_dt_s"] < float("inf"):
            raise ValueError(f"max_chunk_dt_s must be finite, > 0: {self.p['max_chunk_dt_s']}")
        self._names: tuple[str, ...] = tuple(self.p["joint_names"])
        self._joints: dict[str, float] = {}
        self._last_status = ExecStatus.NO_COMMAND
        self._reasons = diagnostics.ReasonLog()
        self._chunks_accepted = 0
        self._commands_sent = 0
        self._limited = 0
        self._command_rate = diagnostics.RateCounter()
        self._clock_watch = ClockWatch(self.p["clock_jump_tolerance_s"], self.p["clock_stall_s"])
        self._config_error = ""
        self._core: ChunkExecutor | None = None
        try:
            if not self._names or len(set(self._names)) != len(self._names):
                raise ValueError(f"joint_names must be non-empty and unique: {list(self._names)}")
            dim = len(self._names)
            self._core = ChunkExecutor(executor_config(self.p, dim), dim)
        except ValueError as exc:  # parameters that cannot work: report, never command
            self._config_error = str(exc)
            self._reasons.add("config_mismatch", f"{list(self._names)}: {exc}")
            self.get_logger().error(f"configuration refused: {exc}")
        self._make_publishers()
        self.create_subscription(
            ActionChunk, self.p["action_chunk_topic"], self._on_chunk, qos.OUTPUT
        )
        self.create_subscription(
            JointState, self.p["joint_states_topic"], self._on_joints, qos.SENSOR
        )
        self._control_timer = self.create_timer(1.0 / self.p["control_rate_hz"], self._on_tick)
        # /diagnostics and the clock watch on the steady clock: they run when /clock does not
        steady = diagnostics.steady_clock()
        self.create_timer(self.p["diagnostics_period_s"], self._publish_diagnostics, clock=steady)
        self.create_timer(min(0.25, self.p["clock_stall_s"] / 4), self._watch_clock, clock=steady)

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
        self._verdict_pub = self.create_publisher(Header, "~/chunk_verdict", qos.OUTPUT)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def callback_failed(self, key: str, exc: BaseException) -> None:
        self._reasons.add(key, diagnostics.exception_text(exc))
        self.get_logger().error(f"callback failed ({key}): {diagnostics.exception_text(exc)}")

    @diagnostics.guarded("callback_error")
    def _watch_clock(self) -> None:
        self._clock_now()

    def _clock_now(self) -> int:
        """The node clock, checked against the wall clock: a jump back or a stall resets."""
        now_ns = self._now_ns()
        event = self._clock_watch.observe(now_ns, time.monotonic_ns())
        if event in (ClockEvent.JUMP_BACK, ClockEvent.STALLED):
            if self._core is not None and event is ClockEvent.JUMP_BACK:
                # another timeline: nothing of the old one (last command included) plays
                self._core = ChunkExecutor(self._core.config, self._core.dim)
                self._control_timer.reset()  # ticks on the new grid, whatever rcl left
            elif self._core is not None:
                self._core.reset()
            detail = (f"node clock went back {self._clock_watch.last_jump_s:.3f}s"
                      if event is ClockEvent.JUMP_BACK
                      else f"node clock stalled for > {self.p['clock_stall_s']}s (no /clock?)")
            jumped = event is ClockEvent.JUMP_BACK
            what = "executor restarted" if jumped else "executor reset, holding"
            self._reasons.add(event.value, f"{detail}; {what}")
            self.get_logger().warning(f"{event.value}: {detail}")
        return now_ns

    @diagnostics.guarded("bad_joint_state")
    def _on_joints(self, msg: JointState) -> None:
        try:
            self._joints = conversions.joint_positions(msg)
        except conversions.ConversionError as exc:
            self._reasons.add("bad_joint_state", str(exc))

    @diagnostics.guarded("invalid_chunk")
    def _on_chunk(self, msg: ActionChunk) -> None:
        verdict = self._take_chunk(msg)
        self._verdict_pub.publish(Header(stamp=msg.header.stamp, frame_id=verdict))

    def _take_chunk(self, msg: ActionChunk) -> str:
        """'accepted', or the key of the reason the chunk was refused."""
        now_ns = self._clock_now()
        if self._core is None:
            self._reasons.add("config_mismatch", f"chunk refused: {self._config_error}")
            return "config_mismatch"
        names = tuple(msg.names)
        if names != self._names:
            self._reasons.add(
                "names_mismatch",
                f"chunk names {list(names)[:16]} != configured joint_names {list(self._names)}",
            )
            return "names_mismatch"
        try:
            chunk = conversions.chunk_from_msg(msg)
        except ValueError as exc:  # ConversionError is a ValueError too
            self._reasons.add("invalid_chunk", str(exc)[:300])
            return "invalid_chunk"
        if chunk.dt_s > self.p["max_chunk_dt_s"]:
            self._reasons.add("invalid_chunk", f"chunk {chunk.chunk_id}: dt {chunk.dt_s} s > "
                                               f"max_chunk_dt_s {self.p['max_chunk_dt_s']}")
            return "invalid_chunk"
        age_s = (now_ns - chunk.t0_ns) / 1e9
        if age_s > self.p["max_chunk_age_s"]:
            self._reasons.add("stale_chunk", f"chunk {chunk.chunk_id} is {age_s:.3f}s old")
            return "stale_chunk"
        if self._core.last_command is None:
            self._seed()
        verdict = self._core.add_chunk(chunk, now_ns)
        if not verdict:
            self._reasons.add(f"chunk_{verdict.reason.value}", verdict.detail)
            return f"chunk_{verdict.reason.value}"
        self._chunks_accepted += 1
        return "accepted"

    def _seed(self) -> None:
        """Hold the measured joint state before the first chunk (valid, within limits)."""
        names = self._names
        if not self.p["seed_from_joint_states"] or not all(n in self._joints for n in names):
            return
        try:
            self._core.seed(np.array([self._joints[n] for n in names]))
        except ValueError as exc:  # NaN or outside the position limits: no seed
            self._reasons.add("seed_refused", str(exc)[:300])

    @diagnostics.guarded("callback_error")
    def _on_tick(self) -> None:
        if self._core is None:
            return
        command = self._core.step(self._clock_now())
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

    @diagnostics.guarded("callback_error")
    def _publish_diagnostics(self) -> None:
        self._clock_now()
        reasons = self._reasons.snapshot()
        stalled = self._clock_watch.state == "stalled"
        state = "clock_stalled" if stalled else self._last_status.value
        holding = (
            stalled
            or self._last_status.value.startswith("hold")
            or self._last_status is ExecStatus.NO_COMMAND
        )
        recent = self._reasons.recent(diagnostics.REASON_WARN_WINDOW_S)
        level = diagnostics.WARN if holding or recent else diagnostics.OK
        if self._config_error:
            level = diagnostics.ERROR
        values = {
            "state": state,
            "clock": self._clock_watch.state,
            "clock_jumps_back": self._clock_watch.jumps,
            "clock_stalls": self._clock_watch.stalls,
            "chunks_accepted": self._chunks_accepted,
            "commands_sent": self._commands_sent,
            "command_rate_hz": self._command_rate.rate_hz(),
            "limited_ticks": self._limited,
            "names": ",".join(self._names),
        }
        for key, (count, last) in reasons.items():
            values[f"rejected.{key}"] = f"{count}: {last}"
        message = state + (f"; rejected: {', '.join(reasons)}" if reasons else "")
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
