"""Scripted-expert episodes written as rosbag2 (MCAP or sqlite3) with `rosbags`.

Same topics, types, QoS, stamps (bag time == header stamp, first stamp EPOCH_NS) and
metadata keys as `restac-make-sample-bag`, so BagDataset, restac-eval,
restac-train-policy and restac-train-vqvae read sim recordings unchanged. Added:
contact force and slip ground truth topics and the episode's success label.
Deterministic: the same seed and arguments give the same messages.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer

from restac_ros.sample_bag.writer import (
    EPOCH_NS,
    KEY_EVENTS,
    KEY_INTERVALS,
    KEY_PROMPT,
    KEY_SEED,
    QOS_LATCHED,
    QOS_STREAM,
    MessageFactory,
)

from .contact import ContactState
from .env import BASE_RATE_HZ, SimConfig, SimEnv, step_stamp_ns
from .expert import TICK_HZ, ScriptedExpert
from .ik import ArmIK

KEY_SUCCESS = "restac.success"  # "true" | "false"
KEY_SUCCESS_NS = "restac.success_ns"  # stamp the hold criterion was met, "" if never
KEY_TASK = "restac.task"  # JSON: seed, prompt, object pose/size/mass/friction
KEY_WORLD = "restac.world"
WORLD_ID = "restac_sim/grasp_lift/v1"
PAD_FRAME = "gelsight"

CAMERA_TOPICS = {
    "base": "/camera/base/image_raw",
    "left_wrist": "/camera/left_wrist/image_raw",
    "right_wrist": "/camera/right_wrist/image_raw",
}
TOPICS: dict[str, str] = {
    "/restac/prompt": "std_msgs/msg/String",
    **{t: "sensor_msgs/msg/Image" for t in CAMERA_TOPICS.values()},
    "/tactile/image_raw": "sensor_msgs/msg/Image",
    "/joint_states": "sensor_msgs/msg/JointState",
    "/teacher/joint_command": "sensor_msgs/msg/JointState",
    "/contact/ground_truth": "std_msgs/msg/Bool",
    "/contact/wrench": "geometry_msgs/msg/WrenchStamped",  # force the pad exerts, pad frame
    "/contact/slip": "std_msgs/msg/Bool",
}
STEPS_PER_TICK = BASE_RATE_HZ // TICK_HZ


@dataclasses.dataclass(frozen=True)
class EpisodeSummary:
    path: Path
    seed: int
    success: bool
    success_ns: int | None
    duration_ns: int
    contact_intervals: list[list[int]]
    events: list[list]
    peak_force_n: float
    slip_ticks: int
    counts: dict[str, int]


class _ContactIntervals:
    """Closed [start_ns, end_ns] intervals of sensing-pad contact, from per-step states."""

    def __init__(self) -> None:
        self.intervals: list[list[int]] = []
        self._start: int | None = None

    def update(self, stamp_ns: int, in_contact: bool) -> None:
        if in_contact and self._start is None:
            self._start = stamp_ns
        elif not in_contact and self._start is not None:
            self.intervals.append([self._start, stamp_ns - 1])
            self._start = None

    def finish(self, last_stamp_ns: int) -> list[list[int]]:
        if self._start is not None:
            self.intervals.append([self._start, last_stamp_ns])
            self._start = None
        return self.intervals


def _wrench(mf: MessageFactory, stamp_ns: int, contact: ContactState):
    t = mf.ts.types
    vec = t["geometry_msgs/msg/Vector3"]
    return t["geometry_msgs/msg/WrenchStamped"](
        header=mf.header(stamp_ns, PAD_FRAME),
        wrench=t["geometry_msgs/msg/Wrench"](
            force=vec(x=contact.shear_n[0], y=contact.shear_n[1], z=contact.normal_force_n),
            torque=vec(x=0.0, y=0.0, z=0.0),
        ),
    )


def record_episode(
    out: str | Path,
    seed: int,
    *,
    seconds: float = 8.0,
    storage: str = "mcap",
    config: SimConfig | None = None,
) -> EpisodeSummary:
    """Run the scripted expert on the seeded world and write the episode to `out`."""
    config = SimConfig() if config is None else config
    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise ValueError(f"storage must be one of {sorted(plugins)}, got {storage!r}")
    if not config.render:
        raise ValueError("recording needs rendering (SimConfig.render=True)")
    n_steps = int(round(float(seconds) * BASE_RATE_HZ))
    if n_steps < STEPS_PER_TICK:
        raise ValueError(f"seconds must be at least {1 / TICK_HZ:.3f}, got {seconds}")
    mf = MessageFactory()
    intervals = _ContactIntervals()
    counts = dict.fromkeys(TOPICS, 0)
    peak_force = 0.0
    with SimEnv(config) as env:
        task = env.reset(seed)
        expert = ScriptedExpert(ArmIK(env.model), task.obj)
        writer = Writer(Path(out), version=9, storage_plugin=plugins[storage])
        with writer:
            conns = {
                topic: writer.add_connection(
                    topic,
                    msgtype,
                    typestore=mf.ts,
                    offered_qos_profiles=[QOS_LATCHED if topic == "/restac/prompt" else QOS_STREAM],
                )
                for topic, msgtype in TOPICS.items()
            }

            def put(topic: str, stamp: int, msg) -> None:
                writer.write(conns[topic], stamp, mf.serialize(msg))
                counts[topic] += 1

            put("/restac/prompt", EPOCH_NS, mf.String(data=task.prompt))
            command = env.command
            for j in range(n_steps + 1):
                stamp = EPOCH_NS + step_stamp_ns(j)
                due, contact = env.streams_due(), env.contact()
                intervals.update(stamp, contact.in_contact)
                peak_force = max(peak_force, contact.normal_force_n)
                if due.cameras:
                    for name, img in env.render_cameras().items():
                        put(CAMERA_TOPICS[name], stamp, mf.image(img, stamp, f"camera_{name}"))
                if due.joints:
                    put("/joint_states", stamp,
                        mf.joint_state(stamp, env.joint_positions(), env.joint_velocities()))
                if due.tactile:
                    tactile = mf.image(env.render_tactile(), stamp, PAD_FRAME)
                    put("/tactile/image_raw", stamp, tactile)
                    put("/contact/ground_truth", stamp, mf.Bool(data=contact.in_contact))
                    put("/contact/wrench", stamp, _wrench(mf, stamp, contact))
                    put("/contact/slip", stamp, mf.Bool(data=contact.slipping))
                if j % STEPS_PER_TICK == 0:
                    command = expert.act(env.tcp_pose()[0], env.joint_positions()[7], contact)
                    put("/teacher/joint_command", stamp, mf.joint_state(stamp, command))
                if j < n_steps:
                    env.step(command)
            last = EPOCH_NS + step_stamp_ns(n_steps)
            closed = intervals.finish(last)
            events = [
                [name, EPOCH_NS + step_stamp_ns(k * STEPS_PER_TICK)] for name, k in expert.events
            ]
            success_ns = None if env.success_ns is None else EPOCH_NS + env.success_ns
            writer.set_custom_data(KEY_INTERVALS, json.dumps(closed, separators=(",", ":")))
            writer.set_custom_data(KEY_SEED, str(seed))
            writer.set_custom_data(KEY_PROMPT, task.prompt)
            writer.set_custom_data(KEY_EVENTS, json.dumps(events, separators=(",", ":")))
            writer.set_custom_data(KEY_SUCCESS, "true" if env.success else "false")
            writer.set_custom_data(KEY_SUCCESS_NS, "" if success_ns is None else str(success_ns))
            writer.set_custom_data(KEY_TASK, json.dumps(task.as_dict(), separators=(",", ":")))
            writer.set_custom_data(KEY_WORLD, WORLD_ID)
        return EpisodeSummary(
            path=Path(out),
            seed=int(seed),
            success=env.success,
            success_ns=success_ns,
            duration_ns=last - EPOCH_NS,
            contact_intervals=closed,
            events=events,
            peak_force_n=float(peak_force),
            slip_ticks=expert.state.slip_ticks,
            counts=counts,
        )

