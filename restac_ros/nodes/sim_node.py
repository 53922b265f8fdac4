"""sim_node: restac_sim as a robot on ROS 2, in lockstep with the pipeline on /clock.

Publishes what the robot publishes (3 cameras 15 Hz, /tactile/image_raw 30 Hz,
/joint_states 100 Hz, /restac/prompt latched) plus /clock (300 Hz of sim time) and
contact ground truth; consumes chunk_executor's /restac/command (sensor_msgs/JointState,
joint1..7 + gripper gap in m). All physics, rendering and validation are
restac_ros.sim.SimEnv's; this node converts messages and gates time.

Episodes: `/sim/reset` (std_msgs/Int64 = world seed; std_srvs has no wheel here, and a
seed is the one argument) starts a new seeded episode; `autostart` starts `seed` at
launch. Each episode restarts sim time at EPOCH_NS (the in-process closed loop's
stamps: the same seed gives the same ticks and noise) after a one-step blip past every
clock published, so every pipeline node sees its clock jump back and starts a new
timeline (policy_node drops its inputs, chunk_executor its chunk and last command;
`clock_jump_tolerance_s` below one step, config/sim.yaml). t = 0 is published only once
every `pipeline_nodes` node reported on /diagnostics at the new clock, jump counter up,
and the sensor publishers matched `sensor_subscribers`: nothing is lost to discovery,
nothing of the old episode plays. A reset waits for a tick being answered. `/sim/episode`
(std_msgs/String, JSON, latched) reports each episode at its start and end (`episode_s`).

Lockstep (`lockstep: true`; the waits' conditions: nodes.sim_lockstep), per base step
at stamp S, so that a slow policy stretches wall time, never results (the same as
closed_loop.ClosedLoopRunner, which adds a chunk after the executor's control tick at
the step it completes):
1. /clock S (republished while waiting: it is best effort);
2. if commands are due (an accepted chunk this episode) and S is a control tick: wait
   for the command stamped S; if a policy tick completes at S: chunk_executor has seen
   /clock S (that command, or its /diagnostics stamped >= S);
3. the sensors due at S;
4. if policy tick T (k-th at EPOCH + k/`policy_rate_hz`, k >= `first_gated_tick`) has
   all its inputs by S: wait for chunk_executor's verdict on the chunk stamped T
   (`~/chunk_verdict`): the executor took it in at clock S, before its next tick;
5. step with the newest command taken. Without ticks (`policy_rate_hz: 0`) the sim runs
   `settle_s`, then waits for the first accepted chunk.
A wait longer than `lockstep_timeout_s` of wall time moves on anyway and is counted
(`lockstep_timeouts`: that run is no longer reproducible).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import WrenchStamped
from rclpy.node import Node
from rclpy.qos import QoSCompatibility, qos_check_compatible
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Header, Int64, String

from restac_ros.nodes import conversions, diagnostics, qos
from restac_ros.nodes.params import declare
from restac_ros.nodes.sim_lockstep import LockstepGate, LockstepWait
from restac_ros.nodes.sim_sync import EpisodeLog, PipelineView
from restac_ros.nodes.spin import run_nodes
from restac_ros.sample_bag.writer import EPOCH_NS
from restac_ros.sim.cli import parse_shape
from restac_ros.sim.env import (
    BASE_RATE_HZ,
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
CLOCK_REPEAT_S = 0.05  # wall seconds between /clock repeats while waiting
EPISODE_QOS = qos.PROMPT  # reliable, transient local, depth 1: late joiners get the last

PARAMETERS = {
    "seed": (0, "World seed of the episode started at launch (autostart)"),
    "autostart": (True, "Start episode `seed` at launch (false: wait for /sim/reset)"),
    "tactile_shape": ("128x160", "Tactile image rows x columns: 128x160 or 240x320"),
    "episode_s": (0.0, "Episode length in sim time; then it is reported and stops (0 = never)"),
    "lockstep": (True, "Advance only when the pipeline has caught up (see module doc)"),
    "settle_s": (0.5, "Without policy ticks: sim time run before the first chunk (s)"),
    "first_gated_tick": (2, "First policy tick waited for: the first with a valid observation"),
    "command_period_s": (0.01, "chunk_executor control period (s); a multiple of 1/300 s"),
    "policy_rate_hz": (15.0, "Policy tick rate (0 = no ticks: settle, then the first chunk)"),
    "lockstep_timeout_s": (120.0, "Wall seconds a lockstep wait may last before moving on"),
    "wall_step_period_s": (1.0 / BASE_RATE_HZ, "Wall-clock period of sim steps (pacing, s)"),
    "reliable": (True, "Publish sensors reliable (lossless lockstep) instead of best effort"),
    "pipeline_nodes": (["policy_node", "chunk_executor"],
                       "Nodes that must report the new clock on /diagnostics (and reset) "
                       "before an episode starts"),
    "executor_node": ("chunk_executor", "The pipeline node that sends /restac/command"),
    "sensor_subscribers": (["policy_node"],
                           "Nodes whose sensor subscriptions must be matched before an "
                           "episode starts"),
    "command_topic": ("/restac/command", "sensor_msgs/JointState commands (chunk_executor)"),
    "verdict_topic": ("/chunk_executor/chunk_verdict",
                      "chunk_executor's std_msgs/Header per chunk (lockstep gate)"),
    "reset_topic": ("/sim/reset", "std_msgs/Int64: start a new episode with this seed"),
    "episode_topic": ("/sim/episode", "std_msgs/String (JSON): episode start and outcome"),
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
STEP_NS = round(NS / BASE_RATE_HZ)


class SimNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.p = p = declare(self, PARAMETERS)
        self._config = SimConfig(tactile=TactileConfig(shape=parse_shape(p["tactile_shape"])))
        self._gate = LockstepGate(EPOCH_NS, p["command_period_s"], p["policy_rate_hz"],
                                  p["first_gated_tick"], p["settle_s"], p["executor_node"])
        self.env = SimEnv(self._config)
        self._pipeline = PipelineView([n for n in p["pipeline_nodes"] if n])
        self._reasons = diagnostics.ReasonLog()
        self._commands = 0
        self._episodes = 0
        self._phase = "idle"  # idle | blip | restart | running | over
        self._log: EpisodeLog | None = None
        self._last_report: dict | None = None
        self._reset_request: int | None = p["seed"] if p["autostart"] else None
        self._wait, self._last_clock_wall = LockstepWait(p["lockstep_timeout_s"]), 0.0
        self._max_clock_ns = EPOCH_NS
        self._clear_episode_state()
        sensor = qos.SENSOR_RELIABLE if p["reliable"] else qos.SENSOR
        pub = self.create_publisher
        self._clock_pub = pub(Clock, p["clock_topic"], qos.CLOCK)
        self._joint_pub = pub(JointState, p["joint_states_topic"], sensor)
        self._tactile_pub = pub(Image, p["tactile_topic"], sensor)
        self._camera_pubs = {k: pub(Image, p[v], sensor) for k, v in CAMERA_PARAMS.items()}
        self._sensor_pubs = {p["joint_states_topic"]: self._joint_pub,
                             p["tactile_topic"]: self._tactile_pub,
                             **{p[v]: self._camera_pubs[k] for k, v in CAMERA_PARAMS.items()}}
        self._prompt_pub = pub(String, p["prompt_topic"], qos.PROMPT)
        self._episode_pub = pub(String, p["episode_topic"], EPISODE_QOS)
        self._contact_pub = pub(Bool, p["contact_topic"], qos.OUTPUT)
        self._wrench_pub = pub(WrenchStamped, p["wrench_topic"], qos.OUTPUT)
        self._slip_pub = pub(Bool, p["slip_topic"], qos.OUTPUT)
        self._diag_pub = pub(DiagnosticArray, p["diagnostics_topic"], qos.DIAGNOSTICS)
        sub = self.create_subscription
        self._command_sub = sub(JointState, p["command_topic"], self._on_command, qos.COMMAND)
        self._verdict_sub = sub(Header, p["verdict_topic"], self._on_verdict, qos.OUTPUT)
        sub(Int64, p["reset_topic"], self._on_reset, qos.OUTPUT)
        sub(DiagnosticArray, p["diagnostics_topic"], self._on_diagnostics, qos.DIAGNOSTICS)
        steady = diagnostics.steady_clock()
        self.create_timer(p["wall_step_period_s"], self._on_step, clock=steady)
        self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics, clock=steady)

    def _clear_episode_state(self) -> None:
        self._stage = "clock"  # clock | sync | sensors | verdict | advance (one step)
        self._command: np.ndarray | None = None  # the command the sim holds
        self._gate.new_episode()
        self._next_record_k = 0  # next policy tick whose contact is logged
        self._jumps_before: dict[str, int] = {}

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
        self._gate.received = (conversions.stamp_to_ns(msg.header.stamp), command)
        self._commands += 1
        if not self.p["lockstep"]:
            self._command = command
        elif self._wait.reason:
            self._on_step()  # what the sim waits for may have come: no timer period lost

    @diagnostics.guarded("invalid_verdict")
    def _on_verdict(self, msg: Header) -> None:
        stamp = conversions.stamp_to_ns(msg.stamp)
        if self._phase != "running" or stamp > self._now_ns():  # another episode's
            self._reasons.add("verdict_ignored", f"verdict {msg.frame_id!r} stamped {stamp}")
            return
        if not self._gate.take_verdict(stamp, msg.frame_id == "accepted"):
            self._log.ungated_verdicts += 1  # a chunk the sim did not wait for: timing
        self._log.verdicts[msg.frame_id] += 1
        if self._wait.reason:
            self._on_step()

    @diagnostics.guarded("invalid_reset")
    def _on_reset(self, msg: Int64) -> None:
        if not 0 <= msg.data < 2**32:
            self._reasons.add("invalid_reset", f"seed {msg.data} outside [0, 2^32)")
            return
        self._reset_request = int(msg.data)

    @diagnostics.guarded("invalid_diagnostics")
    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            self._pipeline.offer(stamp, status.name, values)
        if self._wait.reason:
            self._on_step()

    # --- time ------------------------------------------------------------------------
    def _now_ns(self) -> int:
        return EPOCH_NS + step_stamp_ns(self.env.step_index)

    def _publish_clock(self, stamp_ns: int, repeat: bool = False) -> None:
        if repeat and time.monotonic() - self._last_clock_wall < CLOCK_REPEAT_S:
            return
        self._last_clock_wall = time.monotonic()
        self._max_clock_ns = max(self._max_clock_ns, stamp_ns)
        self._clock_pub.publish(Clock(clock=conversions.ns_to_stamp(stamp_ns)))

    def _waiting(self, reason: str, clock_ns: int | None = None) -> bool:
        """Wait for `reason` (True), or move on after lockstep_timeout_s (False, counted)."""
        if clock_ns is not None:
            self._publish_clock(clock_ns, repeat=True)
        if self._wait.waiting(reason, time.monotonic()):
            return True
        if self._log is not None:
            self._log.lockstep_timeouts += 1
        self._reasons.add("lockstep_timeout", f"moved on after waiting for {reason}")
        return False

    # --- episodes --------------------------------------------------------------------
    def _begin_reset(self, seed: int) -> None:
        if self._log is not None and self._phase == "running":
            self._finish("reset")  # the old episode ends here, reported as it stands
        # past every clock the pipeline has seen: its jump back to EPOCH is certain
        self._blip_ns = self._max_clock_ns + STEP_NS
        task = self.env.reset(seed)
        self._clear_episode_state()
        self._episodes += 1
        self._log = EpisodeLog(self._episodes, task.as_dict(), EPOCH_NS)
        self._phase = "blip" if self._pipeline.names else "restart"
        self._publish_clock(self._blip_ns)
        self._prompt_pub.publish(String(data=task.prompt))
        self.get_logger().info(f"episode {self._episodes}: restac_sim seed {seed}: "
                               f"{task.as_dict()}")

    def _handshake(self) -> None:
        """blip: every pipeline node saw the clock one step past the old episode; restart:
        every one saw it at the episode start, jumped back, and the sensors are matched."""
        if self._phase == "blip":
            reason = self._pipeline.waiting_for(self._blip_ns)
            if reason:
                self._waiting(reason, self._blip_ns)
                return
            self._jumps_before = self._pipeline.jumps()
            self._phase = "restart"
            self._publish_clock(EPOCH_NS)
        reason = (self._pipeline.waiting_for(EPOCH_NS, self._jumps_before)
                  if self._pipeline.names else "") or self._unmatched()
        if reason:
            self._waiting(reason, EPOCH_NS)
            return
        self._wait.done()
        self._phase, self._stage = "running", "sync"  # /clock at t = 0 is out
        self._log.state = "running"
        self._episode_pub.publish(String(data=json.dumps(self._log.report(self.env))))

    def _unmatched(self) -> str:
        """'' once `sensor_subscribers` subscribe /joint_states (policy_node creates that
        subscription after its image ones, and discovery announces a participant's
        endpoints in order, so the others are known) and every sensor publisher has
        matched every compatible subscription the graph shows."""
        joints = self.p["joint_states_topic"]
        for topic, publisher in self._sensor_pubs.items():
            infos = [i for i in self.get_subscriptions_info_by_topic(topic)
                     if qos_check_compatible(publisher.qos_profile, i.qos_profile)[0]
                     is not QoSCompatibility.ERROR]
            nodes = {i.node_name for i in infos}
            if topic == joints and (missing := [n for n in self.p["sensor_subscribers"]
                                                if n and n not in nodes]):
                return f"{missing} to subscribe {topic}"
            if publisher.get_subscription_count() < len(infos):
                return f"subscriptions of {topic} to match"
        if self.p["lockstep"] and self.p["executor_node"]:
            for name, sub in (("command", self._command_sub), ("verdict", self._verdict_sub)):
                if sub.get_publisher_count() < 1:
                    return f"a {name} publisher"
        return ""

    def _finish(self, state: str) -> None:
        self._log.state = state
        self._last_report = self._log.report(self.env)
        self._episode_pub.publish(String(data=json.dumps(self._last_report)))
        self._phase = "over"
        r = self._last_report
        self.get_logger().info(f"episode {r['episode']} (seed {r['seed']}) {state}: "
                               f"success {r['success']}, {r['duration_s']:.2f}s sim, "
                               f"{r['wall_s']:.1f}s wall")

    # --- the step machine --------------------------------------------------------------
    @diagnostics.guarded("step_failed")
    def _on_step(self) -> None:
        if self._reset_request is not None and not (
                self._phase == "running" and self._stage == "verdict"):  # a tick in flight
            seed, self._reset_request = self._reset_request, None
            self._begin_reset(seed)
        if self._phase in ("blip", "restart"):
            self._handshake()
            return
        if self._phase != "running":
            return
        if self.env.diverged:
            self._finish("diverged")
            return
        if not self.p["lockstep"]:
            self._stage = "clock"
        now = self._now_ns()
        if self._stage == "clock":
            self._publish_clock(now)
            self._stage = "sync"
        if self._stage == "sync":
            reason = self._gate.sync_reason(now, self._pipeline) if self.p["lockstep"] else ""
            if reason and self._waiting(reason, now):
                return
            self._wait.done()
            self._take_command(now)
            self._stage = "sensors"
        if self._stage == "sensors":
            self._publish_sensors(now)
            self._stage = "verdict"
        if self._stage == "verdict":
            reason = self._gate.verdict_reason(now) if self.p["lockstep"] else ""
            if reason and self._waiting(reason, now):
                return
            self._wait.done()
            self._gate.mark_answered(now)
        ep = self.p["episode_s"]
        if ep > 0 and now - EPOCH_NS >= round(ep * NS):
            self._finish("done")
            return
        self.env.step(self._command)
        self._stage = "clock"

    def _take_command(self, now: int) -> None:
        """At a control tick: hold the command stamped `now` (if it came) from here on."""
        if not self._gate.is_control_tick(now):
            return
        command = self._gate.command_at(now)
        got = command is not None
        if got and self.p["lockstep"]:
            self._command = command
        tcp, obj = self.env.tcp_pose()[0], self.env.object_pose()[0]
        self._log.control(got or (not self.p["lockstep"] and self._command is not None),
                          tcp, obj)

    # --- outputs ---------------------------------------------------------------------
    def _publish_sensors(self, now: int) -> None:
        env, log = self.env, self._log
        stamp = conversions.ns_to_stamp(now)
        contact = env.contact()
        log.peak_force_n = max(log.peak_force_n, float(contact.normal_force_n))
        rate = self.p["policy_rate_hz"]
        if rate > 0 and self._gate.tick_ns(self._next_record_k) <= now:
            log.tick(self._gate.tick_ns(self._next_record_k), contact)  # ticks land on steps
            self._next_record_k += 1
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
        waiting = self._wait.reason
        running = self._phase == "running"
        if running and self.env.diverged:
            level = diagnostics.ERROR
        elif waiting or reasons:
            level = diagnostics.WARN
        else:
            level = diagnostics.OK
        values = {
            "phase": self._phase,
            "episode": self._episodes,
            "seed": "-" if self.env.task is None else self.env.task.seed,
            "sim_time_s": (self._now_ns() - EPOCH_NS) / NS if self.env.data is not None else 0.0,
            "steps": self.env.step_index,
            "waiting_for": waiting or "-",
            "commands_received": self._commands,
            "lockstep_timeouts": self._wait.timeouts,
        }
        if self.env.data is not None:
            values["success"] = self.env.success
            values["in_contact"] = self.env.contact().in_contact
        if self._last_report is not None:
            r = self._last_report
            values["last_episode"] = (f"{r['episode']} seed {r['seed']} {r['state']}: success "
                                      f"{r['success']}, time_to_success_s "
                                      f"{r['time_to_success_s']}")
        for key, (count, last) in reasons.items():
            values[f"rejected.{key}"] = f"{count}: {last}"
        message = f"waiting for {waiting}" if waiting else self._phase
        self._diag_pub.publish(
            diagnostics.array(
                self._now_ns() if self.env.data is not None else 0,
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
