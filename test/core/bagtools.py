"""Tiny deterministic rosbag2 writer for the core tests (3 cameras, tactile, joints, teacher)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

TS = get_typestore(Stores.ROS2_HUMBLE)
S = 1_000_000_000
START_NS = 100 * S
JOINTS = [f"joint{i}" for i in range(1, 8)] + ["gripper"]
CAMERAS = {
    "base_0_rgb": "/camera/base/image_raw",
    "left_wrist_0_rgb": "/camera/left_wrist/image_raw",
    "right_wrist_0_rgb": "/camera/right_wrist/image_raw",
}
TACTILE = "/tactile/image_raw"
JOINT_STATES = "/joint_states"
TEACHER = "/teacher/joint_command"
PROMPT = "/restac/prompt"


@dataclasses.dataclass
class BagPlan:
    duration_s: float = 1.0
    camera_hz: float = 15.0
    tactile_hz: float = 30.0
    joint_hz: float = 100.0
    teacher_hz: float = 15.0
    image_hw: tuple[int, int] = (24, 32)
    tactile_hw: tuple[int, int] = (24, 32)
    prompt: str | None = "pick up the cube"
    omit: tuple[str, ...] = ()
    joint_type: str = "sensor_msgs/msg/JointState"
    storage: str = "sqlite3"


def joint_positions(t_s: float) -> np.ndarray:
    """Smooth deterministic trajectory: joint i = 0.1 * i * t."""
    return 0.1 * np.arange(1, 9) * t_s


def _header(t_ns: int) -> object:
    return TS.types["std_msgs/msg/Header"](
        stamp=TS.types["builtin_interfaces/msg/Time"](sec=t_ns // S, nanosec=t_ns % S), frame_id=""
    )


def _image(t_ns: int, hw: tuple[int, int]) -> object:
    h, w = hw
    value = (t_ns // 10_000_000) % 256
    data = np.full(h * w * 3, value, dtype=np.uint8)
    return TS.types["sensor_msgs/msg/Image"](
        header=_header(t_ns),
        height=h,
        width=w,
        encoding="rgb8",
        is_bigendian=0,
        step=w * 3,
        data=data,
    )


def _joint_state(t_ns: int, positions: np.ndarray) -> object:
    return TS.types["sensor_msgs/msg/JointState"](
        header=_header(t_ns),
        name=list(JOINTS),
        position=positions.astype(np.float64),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )


def _times(hz: float, duration_s: float) -> list[int]:
    n = int(duration_s * hz + 1e-9) + 1
    return [START_NS + round(i * S / hz) for i in range(n)]


def write_bag(path: Path, plan: BagPlan | None = None) -> Path:
    """Write the bag; header stamps equal log times. Teacher command at t = state at t + 1/15 s."""
    plan = plan or BagPlan()
    plugin = StoragePlugin.MCAP if plan.storage == "mcap" else StoragePlugin.SQLITE3
    messages: list[tuple[int, str, object]] = []
    for topic in CAMERAS.values():
        messages += [
            (t, topic, _image(t, plan.image_hw)) for t in _times(plan.camera_hz, plan.duration_s)
        ]
    messages += [
        (t, TACTILE, _image(t, plan.tactile_hw)) for t in _times(plan.tactile_hz, plan.duration_s)
    ]
    for t in _times(plan.joint_hz, plan.duration_s):
        messages.append((t, JOINT_STATES, _joint_state(t, joint_positions((t - START_NS) / S))))
    for t in _times(plan.teacher_hz, plan.duration_s):
        ahead = joint_positions((t - START_NS) / S + 1 / 15)
        messages.append((t, TEACHER, _joint_state(t, ahead)))
    if plan.prompt is not None:
        messages.append((START_NS, PROMPT, TS.types["std_msgs/msg/String"](data=plan.prompt)))
    messages = [m for m in messages if m[1] not in plan.omit]
    messages.sort(key=lambda m: m[0])
    types = {topic: msg.__msgtype__ for _, topic, msg in messages}
    if JOINT_STATES in types:
        types[JOINT_STATES] = plan.joint_type
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        writer.set_custom_data("restac.contact_intervals", f"[[{START_NS}, {START_NS + S // 2}]]")
        conns = {
            topic: writer.add_connection(topic, typ, typestore=TS) for topic, typ in types.items()
        }
        for t, topic, msg in messages:
            if types[topic] != msg.__msgtype__:
                msg = TS.types["std_msgs/msg/String"](data="not a joint state")
            writer.write(conns[topic], t, bytes(TS.serialize_cdr(msg, types[topic])))
    return path
