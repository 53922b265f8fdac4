"""sim_node over real (loopback) DDS: robot topics, lockstep on /clock, the real
chunk_executor's commands moving the simulated arm, and episode resets over /sim/reset.
Waits are bounded; nothing here depends on timing (lockstep: the sim cannot advance
without the pipeline)."""

from __future__ import annotations

import json

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from restac_ros.msg import ActionChunk
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Int64, String

from restac_ros.nodes import conversions, qos
from restac_ros.nodes.chunk_executor import ChunkExecutorNode
from restac_ros.nodes.sim_node import SimNode
from restac_ros.nodes.spin import SpinThread
from restac_ros.sample_bag.writer import EPOCH_NS
from restac_ros.sim.world import HOME_Q, JOINT_NAMES
from test.ros_helpers import require_loopback, spin_until

SETTLE_S = 0.2
SETTLED = EPOCH_NS + round(SETTLE_S * 1e9)
IMAGES = {
    "/camera/base/image_raw": (224, 224),
    "/camera/left_wrist/image_raw": (224, 224),
    "/camera/right_wrist/image_raw": (224, 224),
    "/tactile/image_raw": (128, 160),
}


class Rig:
    """sim_node + the real chunk_executor (use_sim_time), each on its own spin thread,
    and a client that plays the policy (publishes ActionChunks) and listens."""

    def __init__(self, **sim_params) -> None:
        require_loopback()
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        merged = {
            "seed": 1, "settle_s": SETTLE_S, "policy_rate_hz": 0.0, "diagnostics_period_s": 0.2,
            "pipeline_nodes": ["chunk_executor"], "sensor_subscribers": ["sim_test_client"],
            **sim_params,
        }
        self.client = rclpy.create_node("sim_test_client", context=self.context)
        self.sim = SimNode(context=self.context, parameter_overrides=_params(merged))
        self.executor_node = ChunkExecutorNode(
            context=self.context,
            parameter_overrides=_params(
                {"use_sim_time": True, "control_rate_hz": 100.0, "max_chunk_age_s": 2.0,
                 "clock_jump_tolerance_s": 1e-6, "clock_stall_s": 3600.0,
                 "diagnostics_period_s": 0.2}
            ),
        )
        self.images: dict[str, list[Image]] = {t: [] for t in IMAGES}
        self.joints: dict[int, tuple] = {}
        self.clock: list[int] = []
        self.prompts: list[str] = []
        self.contact: list[bool] = []
        sub = self.client.create_subscription
        for topic in IMAGES:
            sub(Image, topic, self.images[topic].append, qos.SENSOR_RELIABLE)
        sub(JointState, "/joint_states", self._on_joints, qos.SENSOR_RELIABLE)
        sub(Clock, "/clock", lambda m: self.clock.append(conversions.stamp_to_ns(m.clock)),
            qos.CLOCK)
        sub(String, "/restac/prompt", lambda m: self.prompts.append(m.data), qos.PROMPT)
        sub(Bool, "/contact/ground_truth", lambda m: self.contact.append(m.data), qos.OUTPUT)
        self.diagnostics: list[dict[str, str]] = []
        self.executor_diagnostics: list[dict[str, str]] = []
        sub(DiagnosticArray, "/diagnostics", self._on_diagnostics, qos.DIAGNOSTICS)
        self.episodes: list[dict] = []
        sub(String, "/sim/episode", lambda m: self.episodes.append(json.loads(m.data)),
            qos.PROMPT)
        self.commands: list[int] = []
        sub(JointState, "/restac/command",
            lambda m: self.commands.append(conversions.stamp_to_ns(m.header.stamp)), qos.COMMAND)
        self.reset_pub = self.client.create_publisher(Int64, "/sim/reset", qos.OUTPUT)
        self.command_pub = self.client.create_publisher(JointState, "/restac/command", qos.COMMAND)
        self.chunk_pub = self.client.create_publisher(
            ActionChunk, "/restac/action_chunk", qos.OUTPUT
        )
        nodes = (self.sim, self.executor_node)
        self.spinners = [SpinThread(n, self.context).start() for n in nodes]
        self.spin = SingleThreadedExecutor(context=self.context)
        self.spin.add_node(self.client)
        assert self.until(lambda: self.chunk_pub.get_subscription_count() >= 1, 10.0)

    def _on_joints(self, msg: JointState) -> None:
        assert list(msg.name) == list(JOINT_NAMES)
        self.joints[conversions.stamp_to_ns(msg.header.stamp)] = tuple(msg.position)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "restac: sim_node":
                self.diagnostics.append({kv.key: kv.value for kv in status.values})
            if status.name == "restac: chunk_executor":
                self.executor_diagnostics.append({kv.key: kv.value for kv in status.values})

    def until(self, condition, timeout_s: float) -> bool:
        return spin_until(self.spin, condition, timeout_s)

    def sim_time(self) -> int:
        return max(self.clock, default=0)

    def send_chunk(self, stamp_ns: int, rows: np.ndarray, chunk_id: int = 0) -> None:
        self.chunk_pub.publish(conversions.action_chunk(
            stamp_ns=stamp_ns, frame_id="", chunk_id=chunk_id, names=list(JOINT_NAMES),
            actions=rows, dt_s=1 / 15, inference_ms=0.0, logvar=0.0, gate=0.0,
        ))

    def close(self) -> None:
        for s in self.spinners:
            s.stop()
        self.spin.shutdown()
        for n in (self.client, self.executor_node, self.sim):
            n.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _params(values: dict) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


def target_rows(offset: float = 0.3) -> np.ndarray:
    rows = np.tile(np.append(HOME_Q + [offset, -0.2, 0, 0.2, 0, 0, 0], 0.05), (10, 1))
    rows[5:, 0] += 0.2  # a second target half-way: crossfade and playback matter
    return rows


def test_sim_node_publishes_robot_topics_and_moves_on_executor_commands() -> None:
    rig = Rig()
    try:
        # before any chunk: the robot topics flow, then sim time stops at settle_s
        assert rig.until(lambda: SETTLED in rig.joints and rig.prompts, 60.0)
        for topic, (h, w) in IMAGES.items():
            msg = rig.images[topic][-1]
            assert (msg.height, msg.width, msg.encoding) == (h, w, "rgb8"), topic
        base = rig.images["/camera/base/image_raw"]
        stamps = [conversions.stamp_to_ns(m.header.stamp) for m in base]
        assert stamps == [EPOCH_NS + round(k * 1e9 / 15) for k in range(len(stamps))]
        np.testing.assert_allclose(rig.joints[SETTLED][:7], HOME_Q, atol=2e-3)
        assert rig.prompts == ["pick up the red box and lift it"]
        assert rig.contact and not any(rig.contact)
        rig.until(lambda: False, 1.0)  # lockstep: nothing to execute -> no sim time
        assert rig.sim_time() == SETTLED
        # bad commands are refused one by one, counted on /diagnostics; nothing moves
        short = JointState(name=["joint1"], position=[1.0])
        nan = JointState(name=list(JOINT_NAMES), position=[float("nan")] * 8)
        for count, msg in enumerate((short, nan), start=1):
            msg.header.stamp = conversions.ns_to_stamp(SETTLED)
            rig.command_pub.publish(msg)
            assert rig.until(
                lambda c=count: rig.diagnostics
                and rig.diagnostics[-1].get("rejected.invalid_command", "").startswith(f"{c}:"),
                30.0,
            )
        assert rig.sim_time() == SETTLED and rig.diagnostics[-1]["commands_received"] == "0"
        # a chunk for the executor: its commands drive the arm, in lockstep on /clock
        rig.send_chunk(SETTLED, target_rows())
        assert rig.until(lambda: rig.joints[max(rig.joints)][0] > 0.2, 60.0)
        assert abs(rig.joints[max(rig.joints)][7] - 0.08) > 0.005  # the gripper follows
        assert rig.sim.env.joint_positions()[0] > 0.2
        # a chunk stamped ahead of sim time: refused by the executor, and its verdict
        # cannot open the sim's gate for ticks not yet observed
        rig.send_chunk(rig.sim_time() + 10**9, target_rows(), chunk_id=1)
        assert rig.until(
            lambda: rig.diagnostics and "rejected.verdict_ignored" in rig.diagnostics[-1], 30.0
        )
    finally:
        rig.close()


def drive_once(wall_step_period_s: float, sim_seconds: float) -> dict[int, tuple]:
    rig = Rig(seed=2, wall_step_period_s=wall_step_period_s, episode_s=SETTLE_S + sim_seconds)
    end = SETTLED + round(sim_seconds * 1e9)
    try:
        assert rig.until(lambda: rig.sim_time() >= SETTLED, 60.0)
        rig.send_chunk(SETTLED, target_rows())
        assert rig.until(lambda: max(rig.joints, default=0) >= end, 120.0)
        return {t: q for t, q in rig.joints.items() if t <= end}
    finally:
        rig.close()


def test_lockstep_results_do_not_depend_on_wall_time() -> None:
    paced = drive_once(1.0 / 300, 0.5)  # real-time pacing
    flat_out = drive_once(0.0005, 0.5)  # as fast as the pipeline answers
    assert len(paced) == len(flat_out) == 71  # 0.7 s of 100 Hz joint states
    assert paced.keys() == flat_out.keys()  # the same stamps
    # the same trajectory; round-off (seen: 1e-25 rad on joints at 0 under heavy load)
    # is allowed, anything a robot could feel is not
    for t in paced:
        np.testing.assert_allclose(paced[t], flat_out[t], rtol=0, atol=1e-9, err_msg=str(t))
    assert paced[max(paced)][0] > HOME_Q[0] + 0.2  # the arm did move


def test_chunk_gate_waits_for_the_policys_answer_to_each_tick() -> None:
    rig = Rig(policy_rate_hz=15.0, first_gated_tick=1)
    tick = [EPOCH_NS + round(k * 1e9 / 15) for k in range(4)]
    joint_after = lambda t: -(-(t - EPOCH_NS) // 10**7) * 10**7 + EPOCH_NS  # next 100 Hz
    try:
        # tick 1 (66.7 ms): the sim stops at its joint state (70 ms) until it is answered
        assert rig.until(lambda: rig.sim_time() >= joint_after(tick[1]), 60.0)
        rig.until(lambda: False, 0.5)
        assert rig.sim_time() == joint_after(tick[1])
        for k in (1, 2):
            rig.send_chunk(tick[k], target_rows(0.1), chunk_id=k - 1)
            assert rig.until(lambda k=k: rig.sim_time() >= joint_after(tick[k + 1]), 60.0)
            rig.until(lambda: False, 0.5)
            assert rig.sim_time() == joint_after(tick[k + 1])  # 140 ms, then 200 ms
    finally:
        rig.close()


def test_reset_starts_a_new_seeded_episode_and_nothing_of_the_old_one_plays() -> None:
    rig = Rig()
    try:
        assert rig.until(lambda: SETTLED in rig.joints, 60.0)
        rig.send_chunk(SETTLED, target_rows())
        assert rig.until(lambda: rig.joints[max(rig.joints)][0] > 0.2, 60.0)  # arm away
        moved_until = rig.sim_time()
        rig.reset_pub.publish(Int64(data=5))
        assert rig.until(lambda: any(e["seed"] == 5 and e["state"] == "running"
                                     for e in rig.episodes), 60.0), rig.diagnostics[-1:]
        old = next(e for e in rig.episodes if e["state"] == "reset")
        assert old["seed"] == 1 and old["episode"] == 1 and old["success"] is False
        assert old["chunk_verdicts"] == {"accepted": 1} and old["control_ticks"] > 0
        # the clock restarted at the episode origin (after a blip past the old episode) ...
        start = rig.clock.index(moved_until)
        assert EPOCH_NS in rig.clock[start:]
        # ... the executor started a new timeline (a jump back, one per episode) ...
        assert rig.until(lambda: rig.executor_diagnostics[-1]["clock_jumps_back"] == "2", 30.0)
        # ... so the new world settles at home: no command of the old episode plays
        commands_before = len(rig.commands)
        rig.joints.clear()
        assert rig.until(lambda: SETTLED in rig.joints, 60.0)
        np.testing.assert_allclose(rig.joints[SETTLED][:7], HOME_Q, atol=2e-3)
        assert rig.sim.env.task.seed == 5
        # (old-timeline commands still in flight are stamped after SETTLED: never taken)
        assert all(t > SETTLED for t in rig.commands[commands_before:])
        rig.send_chunk(SETTLED, target_rows(-0.3))  # and a new chunk drives it again
        assert rig.until(lambda: rig.joints[max(rig.joints)][0] < HOME_Q[0] - 0.2, 60.0)
    finally:
        rig.close()


def test_a_reset_seed_out_of_range_is_refused_and_the_episode_goes_on() -> None:
    rig = Rig()
    try:
        assert rig.until(lambda: SETTLED in rig.joints, 60.0)
        for bad in (-1, 2**32):
            rig.reset_pub.publish(Int64(data=bad))
        assert rig.until(lambda: any("outside [0, 2^32)" in d.get("rejected.invalid_reset", "")
                                     and d["rejected.invalid_reset"].startswith("2:")
                                     for d in rig.diagnostics), 30.0), rig.diagnostics[-1:]
        assert not any(e["state"] == "reset" for e in rig.episodes), rig.episodes
        assert rig.sim.env.task.seed == 1 and rig.diagnostics[-1]["episode"] == "1"
    finally:
        rig.close()
