"""sim_node: restac_sim as a robot on ROS 2, in lockstep with the pipeline on /clock.

Publishes what the robot publishes (3 cameras 15 Hz, /tactile/image_raw 30 Hz,
/joint_states 100 Hz, /restac/prompt latched) plus /clock (300 Hz of sim time) and
contact ground truth; consumes chunk_executor's /restac/command (sensor_msgs/JointState,
joint1..7 + gripper gap in m). All physics, rendering and validation are
restac_ros.sim.SimEnv's; this node converts messages and gates time.

Lockstep (`lockstep: true`): sim time advances only when the pipeline has caught up,
so a slow policy stretches wall time, never results:
- chunk gate (`policy_rate_hz` > 0): the sim does not pass the first joint state at or
  after policy tick T (k-th tick at sim start + k/rate, from tick `first_gated_tick`)
  until an ActionChunk stamped >= T arrived: the policy has answered tick T. Without it
  (`policy_rate_hz: 0`) the sim runs `settle_s` and then waits for the first chunk.
- command gate, from the first chunk on: every step needs a /restac/command stamped
  within the last `command_period_s`, i.e. chunk_executor (use_sim_time) has run its
  control tick for the current /clock. Exact when the executor's period is a multiple
  of the sim's 1/300 s step (its timers then fire on the sim's stamps).
A wait longer than `lockstep_timeout_s` of wall time advances one step anyway and is
counted (`lockstep_timeouts` on /diagnostics: that run is no longer reproducible).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from geometry_msgs.msg import WrenchStamped
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String

from restac_ros.msg import ActionChunk
from restac_ros.nodes import conversions, diagnostics, qos
from restac_ros.nodes.params import declare
from restac_ros.nodes.spin import run_nodes
from restac_ros.sample_bag.writer import EPOCH_NS
from restac_ros.sim.cli import parse_shape
from restac_ros.sim.env import (
    BASE_RATE_HZ,
    JOINT_RATE_HZ,
    InvalidCommand,
    SimConfig,
    SimEnv,
    step_stamp_ns,
    validate_command,
)
from restac_ros.sim.tactile import TactileConfig
from restac_ros.sim.world import JOINT_NAMES

NODE_NAME = "sim_node"
NS = 1_000_000_000

PARAMETERS = {
    "seed": (0, "Task seed (object pose, size, mass, friction)"),
    "tactile_shape": ("128x160", "Tactile image rows x columns: 128x160 or 240x320"),
    "episode_s": (0.0, "Stop advancing after this much sim time (0 = never)"),
    "lockstep": (True, "Advance only when the pipeline has caught up (see module doc)"),
    "settle_s": (0.5, "Without the chunk gate: sim time run before the first chunk (s)"),
    "first_gated_tick": (1, "First policy tick the chunk gate waits for (tick 0 has no history)"),
    "command_period_s": (0.01, "chunk_executor control period (s); lockstep command gate"),
    "policy_rate_hz": (15.0, "Policy tick rate for the chunk gate (0 = no chunk gate)"),
    "lockstep_timeout_s": (120.0, "Wall seconds a lockstep wait may last before stepping anyway"),
    "wall_step_period_s": (1.0 / BASE_RATE_HZ, "Wall-clock period of sim steps (pacing, s)"),
    "reliable": (True, "Publish sensors reliable (lossless lockstep) instead of best effort"),
    "command_topic": ("/restac/command", "sensor_msgs/JointState commands (chunk_executor)"),
    "chunk_topic": ("/restac/action_chunk", "ActionChunk topic (policy answers, chunk gate)"),
    "joint_states_topic": ("/joint_states", "Measured joint states"),
    "tactile_topic": ("/tactile/image_raw", "GelSight-style tactile image"),
    "base_camera_topic": ("/camera/base/image_raw", "Base camera"),
    "left_wrist_camera_topic": ("/camera/left_wrist/image_raw", "Left wrist camera"),
    "right_wrist_camera_topic": ("/camera/right_wrist/image_raw", "Right wrist camera"),
    "prompt_topic": ("/restac/prompt", "Task prompt (latched)"),
    "clock_topic": ("/clock", "Sim time for use_sim_time nodes"),
    "contact_topic": ("/contact/ground_truth", "std_msgs/Bool sensing-pad contact"),
    "wrench_topic": ("/contact/wrench", "WrenchStamped: pad force (x,y shear, z normal)"),
    "slip_topic": ("/contact/slip", "std_msgs/Bool: the contact slips"),
    "diagnostics_topic": ("/diagnostics", "diagnostic_msgs/DiagnosticArray topic"),
    "diagnostics_period_s": (1.0, "Period of /diagnostics publications (s)"),
}
CAMERA_PARAMS = {
    "base": "base_camera_topic",
    "left_wrist": "left_wrist_camera_topic",
    "right_wrist": "right_wrist_camera_topic",
}


class SimNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.p = declare(self, PARAMETERS)
        self._config = SimConfig(tactile=TactileConfig(shape=parse_shape(self.p["tactile_shape"])))
        if self.p["command_period_s"] <= 0 or self.p["policy_rate_hz"] < 0:
            raise ValueError("command_period_s must be > 0 and policy_rate_hz >= 0")
        self.env = SimEnv(self._config)
        self._command: np.ndarray | None = None
        self._last_command_ns: int | None = None
        self._last_chunk_ns: int | None = None
        self._first_chunk_at_ns: int | None = None  # sim time the first chunk arrived
        self._wait_reason = ""
        self._wait_since: float | None = None
        self._timeouts = 0
        self._commands = 0
        self._reasons = diagnostics.ReasonLog()
        sensor = qos.SENSOR_RELIABLE if self.p["reliable"] else qos.SENSOR
        pub = self.create_publisher
        self._clock_pub = pub(Clock, self.p["clock_topic"], qos.CLOCK)
        self._joint_pub = pub(JointState, self.p["joint_states_topic"], sensor)
        self._tactile_pub = pub(Image, self.p["tactile_topic"], sensor)
        self._camera_pubs = {k: pub(Image, self.p[v], sensor) for k, v in CAMERA_PARAMS.items()}
        self._prompt_pub = pub(String, self.p["prompt_topic"], qos.PROMPT)
        self._contact_pub = pub(Bool, self.p["contact_topic"], qos.OUTPUT)
        self._wrench_pub = pub(WrenchStamped, self.p["wrench_topic"], qos.OUTPUT)
        self._slip_pub = pub(Bool, self.p["slip_topic"], qos.OUTPUT)
        self._diag_pub = pub(
            diagnostics.DiagnosticArray, self.p["diagnostics_topic"], qos.DIAGNOSTICS
        )
        self.create_subscription(JointState, self.p["command_topic"], self._on_command, qos.COMMAND)
        self.create_subscription(ActionChunk, self.p["chunk_topic"], self._on_chunk, qos.OUTPUT)
        steady = diagnostics.steady_clock()
        self.create_timer(self.p["wall_step_period_s"], self._on_step, clock=steady)
        self.create_timer(self.p["diagnostics_period_s"], self._publish_diagnostics, clock=steady)
        task = self.env.reset(self.p["seed"])
        self._prompt_pub.publish(String(data=task.prompt))
        self.get_logger().info(f"restac_sim seed {task.seed}: {task.as_dict()}")
        self._published = False

    def callback_failed(self, key: str, exc: BaseException) -> None:
        self._reasons.add(key, diagnostics.exception_text(exc))
        self.get_logger().error(f"callback failed ({key}): {diagnostics.exception_text(exc)}")

    # --- inputs ----------------------------------------------------------------------
    @diagnostics.guarded("invalid_command")
    def _on_command(self, msg: JointState) -> None:
        try:
            positions = conversions.joint_positions(msg)
            missing = [n for n in JOINT_NAMES if n not in positions]
            if missing:
                raise InvalidCommand(f"command lacks joints {missing}")
            command = validate_command([positions[n] for n in JOINT_NAMES])
        except (ValueError, conversions.ConversionError) as exc:
            self._reasons.add("invalid_command", str(exc))
            return
        self._command = command
        self._last_command_ns = conversions.stamp_to_ns(msg.header.stamp)
        self._commands += 1

    @diagnostics.guarded("invalid_chunk")
    def _on_chunk(self, msg: ActionChunk) -> None:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        if stamp > self._now_ns():  # would open the chunk gate for ticks not yet observed
            self._reasons.add("chunk_from_future", f"chunk stamped {stamp} > sim time")
            return
        if self._last_chunk_ns is None:
            self._first_chunk_at_ns = self._now_ns()
            self._last_chunk_ns = stamp
        self._last_chunk_ns = max(stamp, self._last_chunk_ns)

    # --- time ------------------------------------------------------------------------
    def _now_ns(self) -> int:
        return EPOCH_NS + step_stamp_ns(self.env.step_index)

    def _gate(self) -> str:
        """'' when the sim may advance one step, else what it waits for."""
        p, now = self.p, self._now_ns()
        if p["episode_s"] > 0 and now - EPOCH_NS >= round(p["episode_s"] * NS):
            return "episode over"
        if not p["lockstep"]:
            return ""
        period = round(p["command_period_s"] * NS)  # int: floats lose ns at 1.7e18
        if self._first_chunk_at_ns is None:
            if p["policy_rate_hz"] > 0:
                tick = self._answered_tick_ns(now)
                return "" if tick is None else f"chunk for policy tick {tick}"
            return "" if now - EPOCH_NS < round(p["settle_s"] * NS) else "first chunk"
        # the executor's first control tick after the first chunk is still ahead
        if now >= self._first_chunk_at_ns + period and (
            self._last_command_ns is None or self._last_command_ns <= now - period
        ):
            return f"command for {now}"
        if p["policy_rate_hz"] > 0:
            tick = self._answered_tick_ns(now)
            if tick is not None and self._last_chunk_ns < tick:
                return f"chunk for policy tick {tick}"
        return ""

    def _answered_tick_ns(self, now: int) -> int | None:
        """The newest gated policy tick whose inputs are all published by `now` (cameras and
        tactile stamped at the tick, the joint state at the next 100 Hz stamp); None if none."""
        joint_ns = NS // JOINT_RATE_HZ
        k = int((now - EPOCH_NS) * self.p["policy_rate_hz"] // NS)
        while k >= self.p["first_gated_tick"]:
            tick = EPOCH_NS + round(k * NS / self.p["policy_rate_hz"])
            if -(-(tick - EPOCH_NS) // joint_ns) * joint_ns + EPOCH_NS <= now:
                return tick
            k -= 1
        return None

    @diagnostics.guarded("step_failed")
    def _on_step(self) -> None:
        if self.env.diverged:
            self._wait_reason = "nothing: physics diverged (MuJoCo reset the state)"
            return
        if not self._published:  # the state at t = 0
            self._published = True
            self._publish_state()
            return
        reason = self._gate()
        if reason:
            if reason == "episode over":
                self._wait_reason = reason
                return
            if self._wait_since is None:
                self._wait_since = time.monotonic()
            if time.monotonic() - self._wait_since < self.p["lockstep_timeout_s"]:
                self._wait_reason = reason
                return
            self._timeouts += 1
            self._reasons.add("lockstep_timeout", f"stepped after waiting for {reason}")
        self._wait_reason, self._wait_since = "", None
        self.env.step(self._command)
        self._publish_state()

    # --- outputs ---------------------------------------------------------------------
    def _publish_state(self) -> None:
        env, now = self.env, self._now_ns()
        stamp = conversions.ns_to_stamp(now)
        self._clock_pub.publish(Clock(clock=stamp))
        due = env.streams_due()
        if due.joints:
            msg = JointState()
            msg.header.stamp = stamp
            msg.name = list(JOINT_NAMES)
            msg.position = env.joint_positions().tolist()
            msg.velocity = env.joint_velocities().tolist()
            self._joint_pub.publish(msg)
        if due.cameras:
            for name, img in env.render_cameras().items():
                self._camera_pubs[name].publish(
                    conversions.rgb_to_image(img, now, f"camera_{name}")
                )
        if due.tactile:
            contact = env.contact()
            tactile = conversions.rgb_to_image(env.render_tactile(), now, "gelsight")
            self._tactile_pub.publish(tactile)
            self._contact_pub.publish(Bool(data=contact.in_contact))
            self._slip_pub.publish(Bool(data=contact.slipping))
            wrench = WrenchStamped()
            wrench.header.stamp, wrench.header.frame_id = stamp, "gelsight"
            wrench.wrench.force.x, wrench.wrench.force.y = contact.shear_n
            wrench.wrench.force.z = contact.normal_force_n
            self._wrench_pub.publish(wrench)

    def _publish_diagnostics(self) -> None:
        reasons = self._reasons.snapshot()
        waiting = self._wait_reason
        if self.env.diverged:
            level = diagnostics.ERROR
        elif (waiting and waiting != "episode over") or reasons:
            level = diagnostics.WARN
        else:
            level = diagnostics.OK
        values = {
            "sim_time_s": (self._now_ns() - EPOCH_NS) / NS,
            "steps": self.env.step_index,
            "waiting_for": waiting or "-",
            "commands_received": self._commands,
            "lockstep_timeouts": self._timeouts,
            "success": self.env.success,
            "in_contact": self.env.contact().in_contact,
        }
        for key, (count, last) in reasons.items():
            values[f"rejected.{key}"] = f"{count}: {last}"
        message = f"waiting for {waiting}" if waiting else "running"
        self._diag_pub.publish(
            diagnostics.array(
                self._now_ns(),
                [diagnostics.status(f"restac: {NODE_NAME}", level, message, values,
                                    self.get_fully_qualified_name())],
            )
        )

    def destroy_node(self) -> None:
        self.env.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_nodes(lambda: [SimNode()], args=sys.argv if args is None else args)


if __name__ == "__main__":
    sys.exit(main())
