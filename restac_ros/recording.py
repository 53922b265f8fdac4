"""Record the pipeline's topics into a rosbag2 (MCAP) without `ros2 bag` (ROS-free part).

`restac-record` (restac_ros.nodes.recorder) receives serialized CDR messages and
hands them to BagRecording, which writes them unchanged with `rosbags` (bag
version 9, MCAP storage, full message schemas) plus the run's provenance in
the bag metadata's custom_data:

  restac.config         the params YAML the nodes were started with (text)
  restac.config_path    where it was read from
  restac.checkpoint     resolved policy checkpoint directory
  restac.checkpoint_id  sha256 over the checkpoint's file names, sizes and its
                        restac_config.json, 16 hex digits ('' if none)
  restac.source_bag     the bag a replay played (its own entries are copied too)

`pipeline_topics` derives the recorded topics and their types from the nodes'
parameters, so the recorder follows whatever topic names the YAML sets.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import StoragePlugin, Writer

from restac_ros.eval.prediction_bag import make_typestore

KEY_CONFIG = "restac.config"
KEY_CONFIG_PATH = "restac.config_path"
KEY_CHECKPOINT = "restac.checkpoint"
KEY_CHECKPOINT_ID = "restac.checkpoint_id"
KEY_SOURCE_BAG = "restac.source_bag"

IMAGE = "sensor_msgs/msg/Image"
STAMP_FIELDS = ("std_msgs/msg/Header", "builtin_interfaces/msg/Time")
MAX_HELD = 1000


def cdr_stamp_ns(cdr: bytes) -> int:
    """sec/nanosec at the start of a CDR message whose first field is a Header or Time."""
    if len(cdr) < 12:
        return 0
    endian = "<" if cdr[1] & 1 else ">"  # encapsulation CDR_LE = 0x0001
    sec, nanosec = struct.unpack_from(endian + "iI", cdr, 4)
    return max(0, sec * 1_000_000_000 + nanosec)


def pipeline_topics(params: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """{topic: type} of the inputs, chunks, commands, diagnostics and markers of the nodes
    whose parameters are given ({node name: parameters})."""
    topics: dict[str, str] = {}
    if (p := params.get("policy_node")) is not None:
        camera = "sensor_msgs/msg/CompressedImage" if p["camera_transport"] == "compressed" \
            else IMAGE
        topics.update({t: camera for t in p["camera_topics"]})
        topics[p["tactile_topic"]] = IMAGE
        topics[p["joint_states_topic"]] = "sensor_msgs/msg/JointState"
        topics[p["prompt_topic"]] = "std_msgs/msg/String"
        topics[p["action_chunk_topic"]] = "restac_ros/msg/ActionChunk"
        if str(p["action_space"]).startswith("ee"):
            topics[p["ee_path_topic"]] = "nav_msgs/msg/Path"
        else:
            topics[p["joint_trajectory_topic"]] = "trajectory_msgs/msg/JointTrajectory"
        topics[p["tactile_diagnostics_topic"]] = "restac_ros/msg/TactileDiagnostics"
        topics[p["logvar_topic"]] = "std_msgs/msg/Float32"
        topics[p["vq_codes_topic"]] = "std_msgs/msg/Int32MultiArray"
        topics[p["diagnostics_topic"]] = "diagnostic_msgs/msg/DiagnosticArray"
    if (p := params.get("chunk_executor")) is not None:
        command = {
            "joint_state": "sensor_msgs/msg/JointState",
            "float64_multi_array": "std_msgs/msg/Float64MultiArray",
            "pose_stamped": "geometry_msgs/msg/PoseStamped",
        }[p["command_type"]]
        topics[p["command_topic"]] = command
        if p["command_type"] == "pose_stamped":
            topics[p["gripper_topic"]] = "std_msgs/msg/Float64"
        topics[p["diagnostics_topic"]] = "diagnostic_msgs/msg/DiagnosticArray"
    if (p := params.get("tactile_monitor")) is not None:
        topics[p["markers_topic"]] = "visualization_msgs/msg/MarkerArray"
        topics[p["overlay_topic"]] = IMAGE
    if (p := params.get("frame_publisher")) is not None:
        topics[p["tf_static_topic"]] = "tf2_msgs/msg/TFMessage"
    return topics  # not /clock: a replay of the recording publishes its own


def checkpoint_id(checkpoint_dir: str | Path) -> str:
    """Short content id of a policy checkpoint ('' when there is none)."""
    if not str(checkpoint_dir):
        return ""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return ""
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(root)}\0{f.stat().st_size}\0".encode())
    config = root / "restac_config.json"
    if config.is_file():
        h.update(config.read_bytes())
    return h.hexdigest()[:16]


class BagRecording:
    """An MCAP rosbag2 being written: add topics, write serialized messages, close."""

    def __init__(self, out: str | Path, metadata: Mapping[str, str]) -> None:
        self.path = Path(out)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists: give restac-record a new directory")
        self._store = make_typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        for key, value in metadata.items():
            self._writer.set_custom_data(key, str(value))
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self._stamped: dict[str, bool] = {}
        self._held: list[tuple[str, bytes]] = []  # bounded by MAX_HELD
        self._latest_ns = 0
        self.counts: dict[str, int] = {}

    def add_topic(self, topic: str, msgtype: str) -> None:
        if msgtype not in self._store.types:
            raise ValueError(f"{topic}: message type {msgtype} unknown to the bag typestore")
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self._store
        )
        first = self._store.fielddefs[msgtype][1][0][1]
        self._stamped[topic] = first[0].name == "NAME" and first[1] in STAMP_FIELDS
        self.counts[topic] = 0

    def log_time(self, topic: str, cdr: bytes, receipt_ns: int) -> int | None:
        """The bag time of a message: its own stamp (header / Clock) when it has a
        nonzero one, so a recorded replay keeps the played bag's times; otherwise the
        newest stamp recorded so far, or the receipt time; None = hold the message
        until a time is known (sim time before the first /clock)."""
        if self._stamped[topic] and (stamp := cdr_stamp_ns(cdr)):
            self._latest_ns = max(self._latest_ns, stamp)
            return stamp
        if self._latest_ns:
            return self._latest_ns
        return receipt_ns or None

    def write(self, topic: str, cdr: bytes, receipt_ns: int) -> None:
        """Write one serialized message (messages with no time yet wait for one)."""
        t = self.log_time(topic, cdr, receipt_ns)
        if t is None:
            if len(self._held) >= MAX_HELD:
                raise RuntimeError(f"{MAX_HELD} messages held and still no time to log them at")
            self._held.append((topic, cdr))
            return
        for held_topic, held in self._held:
            self._write(held_topic, t, held)
        self._held.clear()
        self._write(topic, t, cdr)

    def _write(self, topic: str, t: int, cdr: bytes) -> None:
        self._writer.write(self._connections[topic], int(t), cdr)
        self.counts[topic] += 1

    def close(self) -> None:
        """Held messages (nothing stamped came) go in at the newest time, else now."""
        t = self._latest_ns or time.time_ns()
        for topic, cdr in self._held:
            self._write(topic, t, cdr)
        self._held.clear()
        self._writer.close()


def provenance(
    config_path: str | Path, checkpoint_dir: str | Path, source_bag: str | Path = ""
) -> dict[str, str]:
    """The custom_data entries for a run started from `config_path` with that checkpoint;
    replaying `source_bag`, its own entries (e.g. restac.contact_intervals) are kept."""
    text = Path(config_path).read_text() if str(config_path) else ""
    ckpt = str(Path(checkpoint_dir).expanduser().resolve()) if str(checkpoint_dir) else ""
    out: dict[str, str] = {}
    if str(source_bag):
        from restac_ros.eval.bag_io import custom_metadata

        out.update(custom_metadata(Path(source_bag)))
        out[KEY_SOURCE_BAG] = str(source_bag)
    out.update({
        KEY_CONFIG: text,
        KEY_CONFIG_PATH: str(config_path),
        KEY_CHECKPOINT: ckpt,
        KEY_CHECKPOINT_ID: checkpoint_id(ckpt) if ckpt else "",
    })
    return out
