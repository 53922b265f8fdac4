"""Write the evaluation's predictions as a rosbag2 MCAP for RViz / Foxglove playback.

Topics (same names and types as the live policy pipeline, see CONTRACT.md section 3):
  /restac/action_chunk         restac_ros/msg/ActionChunk
  /restac/tactile/diagnostics  restac_ros/msg/TactileDiagnostics
  /restac/tactile/markers      visualization_msgs/msg/MarkerArray

Written with `rosbags`; the package's own .msg definitions are registered in
the typestore from their text so the bag carries full schemas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from restac_ros.eval.records import NS_PER_S, StepArrays

CHUNK_TOPIC = "/restac/action_chunk"
DIAG_TOPIC = "/restac/tactile/diagnostics"
MARKER_TOPIC = "/restac/tactile/markers"
MSG_NAMES = ("ActionChunk", "TactileDiagnostics")


def msg_dir() -> Path:
    """Directory with ActionChunk.msg / TactileDiagnostics.msg (source tree or install)."""
    import sys

    candidates = [Path(__file__).resolve().parents[2] / "msg",
                  Path(sys.prefix) / "share" / "restac_ros" / "msg"]
    for c in candidates:
        if all((c / f"{n}.msg").is_file() for n in MSG_NAMES):
            return c
    raise FileNotFoundError(
        f"restac_ros .msg definitions not found in {[str(c) for c in candidates]}")


def make_typestore():
    """ROS 2 Kilted typestore plus restac_ros/msg/{ActionChunk,TactileDiagnostics}."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    d = msg_dir()
    for name in MSG_NAMES:
        types.update(get_types_from_msg((d / f"{name}.msg").read_text(), f"restac_ros/msg/{name}"))
    store.register(types)
    return store


class _Msgs:
    """Message constructors from one typestore."""

    def __init__(self, store) -> None:
        t = store.types
        self.Time = t["builtin_interfaces/msg/Time"]
        self.Duration = t["builtin_interfaces/msg/Duration"]
        self.Header = t["std_msgs/msg/Header"]
        self.ActionChunk = t["restac_ros/msg/ActionChunk"]
        self.Diag = t["restac_ros/msg/TactileDiagnostics"]
        self.Marker = t["visualization_msgs/msg/Marker"]
        self.MarkerArray = t["visualization_msgs/msg/MarkerArray"]
        self.Pose = t["geometry_msgs/msg/Pose"]
        self.Point = t["geometry_msgs/msg/Point"]
        self.Quat = t["geometry_msgs/msg/Quaternion"]
        self.Vec3 = t["geometry_msgs/msg/Vector3"]
        self.Color = t["std_msgs/msg/ColorRGBA"]
        self.UVCoordinate = t["visualization_msgs/msg/UVCoordinate"]
        self.CompressedImage = t["sensor_msgs/msg/CompressedImage"]
        self.MeshFile = t["visualization_msgs/msg/MeshFile"]

    def header(self, stamp_ns: int, frame: str):
        return self.Header(stamp=self.Time(sec=int(stamp_ns // NS_PER_S),
                                           nanosec=int(stamp_ns % NS_PER_S)), frame_id=frame)

    def marker(self, stamp_ns: int, frame: str, ns: str, mid: int, mtype: int, scale, color,
               text: str = "", z: float = 0.0, lifetime_s: float = 0.5):
        sec = math.floor(lifetime_s)
        return self.Marker(
            header=self.header(stamp_ns, frame), ns=ns, id=mid, type=mtype, action=0,
            pose=self.Pose(position=self.Point(x=0.0, y=0.0, z=z),
                           orientation=self.Quat(x=0.0, y=0.0, z=0.0, w=1.0)),
            scale=self.Vec3(x=scale[0], y=scale[1], z=scale[2]),
            color=self.Color(r=color[0], g=color[1], b=color[2], a=color[3]),
            lifetime=self.Duration(sec=sec, nanosec=int((lifetime_s - sec) * NS_PER_S)),
            frame_locked=False, points=[], colors=[], texture_resource="",
            texture=self.CompressedImage(header=self.header(0, ""), format="",
                                         data=np.zeros(0, dtype=np.uint8)),
            uv_coordinates=[], text=text, mesh_resource="",
            mesh_file=self.MeshFile(filename="", data=np.zeros(0, dtype=np.uint8)),
            mesh_use_embedded_materials=False,
        )


def _logvar_colour(norm: float) -> tuple[float, float, float, float]:
    """Blue (low uncertainty) -> red (high), norm in [0, 1]."""
    n = float(np.clip(norm, 0.0, 1.0))
    return (n, 0.2 * (1.0 - abs(2 * n - 1)), 1.0 - n, 0.9)


def write_prediction_bag(path: Path, arrays: StepArrays, action_names: Sequence[str], dt_s: float,
                         mode: str, tactile_frame: str = "tactile_link",
                         action_frame: str = "") -> dict[str, int]:
    """Write the MCAP bag directory `path` (must not exist); returns message counts per topic."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"prediction bag {path} already exists")
    store = make_typestore()
    m = _Msgs(store)
    lv = arrays.logvar[np.isfinite(arrays.logvar)]
    lo, hi = (float(lv.min()), float(lv.max())) if lv.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    period_s = float(np.median(np.diff(arrays.stamp_ns)) / NS_PER_S) if arrays.n > 1 else 0.5
    lifetime = max(2.0 * period_s, 0.1)
    counts = {CHUNK_TOPIC: 0, DIAG_TOPIC: 0, MARKER_TOPIC: 0}
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        c_chunk = w.add_connection(CHUNK_TOPIC, "restac_ros/msg/ActionChunk", typestore=store)
        c_diag = w.add_connection(DIAG_TOPIC, "restac_ros/msg/TactileDiagnostics",
                                  typestore=store)
        c_mark = w.add_connection(MARKER_TOPIC, "visualization_msgs/msg/MarkerArray",
                                  typestore=store)
        h, d = arrays.actions.shape[1:]
        for i in range(arrays.n):
            t = int(arrays.stamp_ns[i])
            logvar, gate = float(arrays.logvar[i]), float(arrays.gate[i])
            chunk = m.ActionChunk(
                header=m.header(t, action_frame), chunk_id=i, names=list(action_names),
                horizon=h, action_dim=d, dt=float(dt_s),
                actions=np.asarray(arrays.actions[i], dtype=np.float32).ravel(),
                inference_ms=float(arrays.inference_ms[i]), logvar=logvar, gate=gate)
            codes = arrays.codes[i]
            codes = codes[codes >= 0].astype(np.int32)
            diag = m.Diag(
                header=m.header(t, tactile_frame), vq_codes=codes,
                q_event=np.asarray(arrays.q_event[i], dtype=np.float32),
                logvar=logvar, sigma=float(math.exp(logvar / 2.0)), gate=gate,
                tactile_valid=bool(arrays.tactile_valid[i]), mode=mode)
            norm = (logvar - lo) / span
            size = 0.01 + 0.04 * float(np.clip(gate, 0.0, 1.0))
            code_txt = ",".join(str(int(c)) for c in codes) or "-"
            markers = m.MarkerArray(markers=[
                m.marker(t, tactile_frame, "restac_tactile", 0, m.Marker.SPHERE,
                         (size, size, size), _logvar_colour(norm), lifetime_s=lifetime),
                m.marker(t, tactile_frame, "restac_tactile", 1, m.Marker.TEXT_VIEW_FACING,
                         (0.0, 0.0, 0.02), (1.0, 1.0, 1.0, 1.0),
                         text=f"codes {code_txt}\nlogvar {logvar:.2f}\ngate {gate:.2f}",
                         z=0.06, lifetime_s=lifetime),
            ])
            w.write(c_chunk, t, store.serialize_cdr(chunk, chunk.__msgtype__))
            w.write(c_diag, t, store.serialize_cdr(diag, diag.__msgtype__))
            w.write(c_mark, t, store.serialize_cdr(markers, markers.__msgtype__))
            for k in counts:
                counts[k] += 1
    return counts
