"""One closed-loop episode as a rosbag2 MCAP (Foxglove / RViz via bag_player).

Topics use the live pipeline's names and types: /joint_states, /restac/command (the
executor's output), /restac/action_chunk and /restac/tactile/diagnostics (restac_ros
msgs, schemas from msg/), /contact/{ground_truth,slip,wrench}, /restac/prompt and, unless
images=False, the cameras and tactile image as JPEG sensor_msgs/CompressedImage on
`<topic>/compressed` (raw frames would be ~60 MB per 8 s episode). Metadata: the
recorder's keys (seed, prompt, task, world, success, contact intervals) plus
`restac.closed_loop`: the episode's metrics and ablation as JSON (a bare `on` would read
as a boolean in YAML 1.1 parsers such as PyYAML).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from restac_ros.eval.prediction_bag import make_typestore
from restac_ros.sample_bag.writer import (
    EPOCH_NS,
    KEY_INTERVALS,
    KEY_PROMPT,
    KEY_SEED,
    QOS_LATCHED,
    QOS_STREAM,
)

from .recorder import KEY_SUCCESS, KEY_SUCCESS_NS, KEY_TASK, KEY_WORLD, PAD_FRAME, WORLD_ID
from .world import JOINT_NAMES

KEY_CLOSED_LOOP = "restac.closed_loop"
JPEG_QUALITY = 85
TYPES = {
    "/restac/prompt": "std_msgs/msg/String",
    "/joint_states": "sensor_msgs/msg/JointState",
    "/restac/command": "sensor_msgs/msg/JointState",
    "/restac/executor_status": "std_msgs/msg/String",
    "/restac/action_chunk": "restac_ros/msg/ActionChunk",
    "/restac/tactile/diagnostics": "restac_ros/msg/TactileDiagnostics",
    "/contact/ground_truth": "std_msgs/msg/Bool",
    "/contact/slip": "std_msgs/msg/Bool",
    "/contact/wrench": "geometry_msgs/msg/WrenchStamped",
}


class EpisodeBag:
    """Writer of one episode; `open`, the per-message methods, then `close(result)`."""

    def __init__(self, path: Path, images: bool = True) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"episode bag {self.path} already exists")
        self.images = images
        self.ts = make_typestore()
        self.t = self.ts.types
        self._writer: Writer | None = None
        self._conns: dict = {}
        self._intervals: list[list[int]] = []
        self._contact_start: int | None = None
        self._last_stamp = 0
        self._task = None

    # --- message helpers -----------------------------------------------------------
    def _header(self, stamp_ns: int, frame: str):
        return self.t["std_msgs/msg/Header"](
            stamp=self.t["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9,
                                                       nanosec=stamp_ns % 10**9),
            frame_id=frame)

    def _put(self, topic: str, stamp_ns: int, msg) -> None:
        if topic not in self._conns:
            msgtype = TYPES.get(topic, "sensor_msgs/msg/CompressedImage")
            qos = QOS_LATCHED if topic == "/restac/prompt" else QOS_STREAM
            self._conns[topic] = self._writer.add_connection(
                topic, msgtype, typestore=self.ts, offered_qos_profiles=[qos])
        self._writer.write(self._conns[topic], stamp_ns,
                           bytes(self.ts.serialize_cdr(msg, msg.__msgtype__)))
        self._last_stamp = max(self._last_stamp, stamp_ns)

    def _joint_state(self, stamp_ns: int, position, velocity=None):
        empty = np.zeros(0, np.float64)
        return self.t["sensor_msgs/msg/JointState"](
            header=self._header(stamp_ns, ""), name=list(JOINT_NAMES),
            position=np.asarray(position, np.float64),
            velocity=empty if velocity is None else np.asarray(velocity, np.float64),
            effort=empty)

    # --- episode -------------------------------------------------------------------
    def open(self, task, ablation: str) -> None:
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._task = task
        self._ablation = ablation
        self._put("/restac/prompt", EPOCH_NS, self.t["std_msgs/msg/String"](data=task.prompt))

    def joints(self, stamp_ns: int, q, v) -> None:
        self._put("/joint_states", stamp_ns, self._joint_state(stamp_ns, q, v))

    def command(self, stamp_ns: int, positions, status: str) -> None:
        self._put("/restac/command", stamp_ns, self._joint_state(stamp_ns, positions))
        self._put("/restac/executor_status", stamp_ns, self.t["std_msgs/msg/String"](data=status))

    def image(self, topic: str, stamp_ns: int, rgb: np.ndarray, frame: str) -> None:
        if not self.images:
            return
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {topic}")
        self._put(f"{topic}/compressed", stamp_ns, self.t["sensor_msgs/msg/CompressedImage"](
            header=self._header(stamp_ns, frame), format="jpeg",
            data=np.frombuffer(jpg.tobytes(), np.uint8)))

    def contact(self, stamp_ns: int, contact) -> None:
        Bool, vec = self.t["std_msgs/msg/Bool"], self.t["geometry_msgs/msg/Vector3"]
        self._put("/contact/ground_truth", stamp_ns, Bool(data=bool(contact.in_contact)))
        self._put("/contact/slip", stamp_ns, Bool(data=bool(contact.slipping)))
        self._put("/contact/wrench", stamp_ns, self.t["geometry_msgs/msg/WrenchStamped"](
            header=self._header(stamp_ns, PAD_FRAME),
            wrench=self.t["geometry_msgs/msg/Wrench"](
                force=vec(x=contact.shear_n[0], y=contact.shear_n[1],
                          z=contact.normal_force_n),
                torque=vec(x=0.0, y=0.0, z=0.0))))
        if contact.in_contact and self._contact_start is None:
            self._contact_start = stamp_ns
        elif not contact.in_contact and self._contact_start is not None:
            self._intervals.append([self._contact_start, stamp_ns - 1])
            self._contact_start = None

    def chunk(self, chunk, rec, names) -> None:
        t = chunk.t0_ns
        logvar = float("nan") if rec.logvar is None else rec.logvar
        gate = 0.0 if rec.gate is None else rec.gate
        self._put("/restac/action_chunk", t, self.t["restac_ros/msg/ActionChunk"](
            header=self._header(t, ""), chunk_id=int(chunk.chunk_id), names=list(names),
            horizon=chunk.horizon, action_dim=int(chunk.actions.shape[1]), dt=chunk.dt_s,
            actions=np.asarray(chunk.actions, np.float32).ravel(),
            inference_ms=float(rec.inference_ms or 0.0), logvar=logvar, gate=gate))
        if rec.logvar is not None:
            self._put("/restac/tactile/diagnostics", t, self.t["restac_ros/msg/TactileDiagnostics"](
                header=self._header(t, PAD_FRAME), vq_codes=np.asarray(rec.codes, np.int32),
                q_event=np.zeros(0, np.float32), logvar=logvar,
                sigma=float(math.exp(logvar / 2.0)) if math.isfinite(logvar) else logvar,
                gate=float(rec.gate_branch if rec.gate_branch is not None else gate),
                tactile_valid=True, mode=self._ablation))

    def close(self, result) -> None:
        if self._contact_start is not None:
            self._intervals.append([self._contact_start, self._last_stamp])
        w, task = self._writer, self._task
        w.set_custom_data(KEY_INTERVALS, json.dumps(self._intervals, separators=(",", ":")))
        w.set_custom_data(KEY_SEED, str(task.seed))
        w.set_custom_data(KEY_PROMPT, task.prompt)
        w.set_custom_data(KEY_SUCCESS, "true" if result.success else "false")
        ns = result.time_to_success_s
        w.set_custom_data(KEY_SUCCESS_NS, "" if ns is None else str(EPOCH_NS + round(ns * 1e9)))
        w.set_custom_data(KEY_TASK, json.dumps(task.as_dict(), separators=(",", ":")))
        w.set_custom_data(KEY_WORLD, WORLD_ID)
        summary = {k: v for k, v in result.as_dict().items() if k not in ("ticks", "mcap")}
        w.set_custom_data(KEY_CLOSED_LOOP, json.dumps(summary, separators=(",", ":")))
        w.close()
