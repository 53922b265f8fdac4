"""Write the synthetic episode as a rosbag2 (sqlite3 or MCAP) with `rosbags`.

Determinism: every message is stamped from a fixed epoch (bag time == header
stamp), messages are written in (time, topic) order, and the only things the
`rosbags` 0.11.9 writers add are derived from the data (metadata.yaml, the
MCAP summary/metadata record, the sqlite schema) plus the library version
string; nothing reads the clock. So the same seed gives the same bytes with
the same library versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability
from rosbags.interfaces import QosTime as _T
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from . import episode as epi
from .kinematics import JOINT_NAMES
from .scene import SceneRenderer
from .tactile import TactileRenderer

EPOCH_NS = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z: the bag's first stamp

KEY_INTERVALS = "restac.contact_intervals"
KEY_SEED = "restac.seed"
KEY_PROMPT = "restac.prompt"
KEY_EVENTS = "restac.events"


@dataclass(frozen=True)
class Topic:
    name: str
    msgtype: str
    rate_hz: int  # 0 = once at the start
    frame_id: str = ""


TOPICS: tuple[Topic, ...] = (
    Topic("/restac/prompt", "std_msgs/msg/String", 0),
    Topic("/camera/base/image_raw", "sensor_msgs/msg/Image", 15, "camera_base"),
    Topic("/camera/left_wrist/image_raw", "sensor_msgs/msg/Image", 15, "camera_left_wrist"),
    Topic("/camera/right_wrist/image_raw", "sensor_msgs/msg/Image", 15, "camera_right_wrist"),
    Topic("/tactile/image_raw", "sensor_msgs/msg/Image", 30, "gelsight"),
    Topic("/joint_states", "sensor_msgs/msg/JointState", 100),
    Topic("/teacher/joint_command", "sensor_msgs/msg/JointState", 15),
    Topic("/contact/ground_truth", "std_msgs/msg/Bool", 30),
)
CAMERA_TOPICS = {
    "/camera/base/image_raw": "base",
    "/camera/left_wrist/image_raw": "left_wrist",
    "/camera/right_wrist/image_raw": "right_wrist",
}

_ZERO = _T(0, 0)
QOS_STREAM = Qos(
    QosHistory.KEEP_LAST,
    10,
    QosReliability.RELIABLE,
    QosDurability.VOLATILE,
    _ZERO,
    _ZERO,
    QosLiveliness.AUTOMATIC,
    _ZERO,
    False,
)
QOS_LATCHED = Qos(
    QosHistory.KEEP_LAST,
    1,
    QosReliability.RELIABLE,
    QosDurability.TRANSIENT_LOCAL,
    _ZERO,
    _ZERO,
    QosLiveliness.AUTOMATIC,
    _ZERO,
    False,
)


def typestore():
    """ROS 2 Kilted message definitions (Jazzy/Humble are identical for these types)."""
    for name in ("ROS2_KILTED", "ROS2_JAZZY", "ROS2_HUMBLE"):
        if hasattr(Stores, name):
            return get_typestore(getattr(Stores, name))
    raise RuntimeError("rosbags has no ROS 2 Kilted/Jazzy/Humble typestore")


class MessageFactory:
    """Builds messages through the typestore classes and serialises them to CDR."""

    def __init__(self) -> None:
        self.ts = typestore()
        t = self.ts.types
        self.Time = t["builtin_interfaces/msg/Time"]
        self.Header = t["std_msgs/msg/Header"]
        self.Image = t["sensor_msgs/msg/Image"]
        self.JointState = t["sensor_msgs/msg/JointState"]
        self.Bool = t["std_msgs/msg/Bool"]
        self.String = t["std_msgs/msg/String"]
        self._empty = np.zeros(0, dtype=np.float64)

    def header(self, stamp_ns: int, frame_id: str):
        return self.Header(
            stamp=self.Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame_id
        )

    def image(self, img: np.ndarray, stamp_ns: int, frame_id: str):
        """HxWx3 uint8 RGB array -> sensor_msgs/Image rgb8."""
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected HxWx3 uint8 RGB, got {img.dtype} {img.shape}")
        h, w = img.shape[:2]
        return self.Image(
            header=self.header(stamp_ns, frame_id),
            height=h,
            width=w,
            encoding="rgb8",
            is_bigendian=0,
            step=3 * w,
            data=np.ascontiguousarray(img).reshape(-1),
        )

    def joint_state(self, stamp_ns: int, position, velocity=None):
        return self.JointState(
            header=self.header(stamp_ns, ""),
            name=list(JOINT_NAMES),
            position=np.asarray(position, dtype=np.float64),
            velocity=self._empty if velocity is None else np.asarray(velocity, np.float64),
            effort=self._empty,
        )

    def serialize(self, msg) -> bytes:
        return bytes(self.ts.serialize_cdr(msg, msg.__msgtype__))


@dataclass(frozen=True)
class BagSummary:
    path: Path
    storage: str
    seed: int
    duration_ns: int
    prompt: str
    contact_intervals: list[list[int]]
    events: list[list]
    counts: dict[str, int]


def _schedule(duration_ns: int) -> list[tuple[int, int, int]]:
    """(time from start, topic index, message index), in write order."""
    items = [(0, 0, 0)]
    for ti, topic in enumerate(TOPICS):
        if topic.rate_hz:
            items += [
                (epi.stamp_ns(k, topic.rate_hz), ti, k)
                for k in range(epi.count(topic.rate_hz, duration_ns))
            ]
    items.sort()
    return items


def write_sample_bag(
    out: str | Path, *, storage: str = "mcap", seconds: float = 20.0, seed: int = 0
) -> BagSummary:
    """Simulate the seeded episode and write it as a rosbag2 directory `out`."""
    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise ValueError(f"storage must be one of {sorted(plugins)}, got {storage!r}")
    duration_ns = int(round(float(seconds) * 1e9))
    if duration_ns < 1_000_000:
        raise ValueError(f"seconds must be at least 0.001, got {seconds}")
    params = epi.EpisodeParams.from_seed(seed)
    ep = epi.simulate(params, duration_ns)
    scene, tactile, mf = SceneRenderer(ep), TactileRenderer(), MessageFactory()
    # Closed [start, end]: end is the last nanosecond in contact. No message stamp is ever
    # 999999 ns past a millisecond, so "t <= end" and "t < end" agree on every stamp.
    intervals = [
        [EPOCH_NS + s * 10**6, EPOCH_NS + min(e * 10**6, duration_ns) - 1]
        for s, e in ep.contact_intervals_steps()
    ]
    events = [[name, EPOCH_NS + step * 10**6] for name, step in ep.events]
    writer = Writer(Path(out), version=9, storage_plugin=plugins[storage])
    writer.set_custom_data(KEY_INTERVALS, json.dumps(intervals, separators=(",", ":")))
    writer.set_custom_data(KEY_SEED, str(seed))
    writer.set_custom_data(KEY_PROMPT, params.prompt)
    writer.set_custom_data(KEY_EVENTS, json.dumps(events, separators=(",", ":")))
    counts = dict.fromkeys((t.name for t in TOPICS), 0)
    with writer:
        conns = [
            writer.add_connection(
                t.name,
                t.msgtype,
                typestore=mf.ts,
                offered_qos_profiles=[QOS_LATCHED if t.rate_hz == 0 else QOS_STREAM],
            )
            for t in TOPICS
        ]
        views: dict[str, np.ndarray] = {}
        views_k = -1
        for t_rel, ti, k in _schedule(duration_ns):
            topic, stamp = TOPICS[ti], EPOCH_NS + t_rel
            step = epi.step_of(t_rel)
            if ti == 0:
                msg = mf.String(data=params.prompt)
            elif topic.name in CAMERA_TOPICS:
                if views_k != k:
                    views, views_k = scene.render(step), k
                msg = mf.image(views[CAMERA_TOPICS[topic.name]], stamp, topic.frame_id)
            elif topic.name == "/tactile/image_raw":
                msg = mf.image(tactile.render(ep.blob[step], k), stamp, topic.frame_id)
            elif topic.name == "/joint_states":
                msg = mf.joint_state(stamp, ep.q[step], ep.qd[step])
            elif topic.name == "/teacher/joint_command":
                msg = mf.joint_state(stamp, ep.tick_cmd[k])
            else:
                msg = mf.Bool(data=bool(ep.contact[step]))
            writer.write(conns[ti], stamp, mf.serialize(msg))
            counts[topic.name] += 1
    return BagSummary(
        Path(out), storage, seed, duration_ns, params.prompt, intervals, events, counts
    )
