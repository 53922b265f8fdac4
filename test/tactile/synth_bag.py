"""A tiny real rosbag2 with the sample-bag topics, for tactile tests.

Until ``restac-make-sample-bag`` exists this writes its own episode: the arm
(a bright square in every camera, position driven by joint1) moves towards an
object and back; while it presses (the middle third of the episode) the
tactile image shows a gel-deformation blob and /contact/ground_truth is True.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

NS = 1_000_000_000


def _stamp(ts, t_ns: int):
    return ts.types["builtin_interfaces/msg/Time"](sec=t_ns // NS, nanosec=t_ns % NS)


def _header(ts, t_ns: int, frame: str):
    return ts.types["std_msgs/msg/Header"](stamp=_stamp(ts, t_ns), frame_id=frame)


def _image(ts, t_ns: int, img: np.ndarray, frame: str):
    h, w, _ = img.shape
    return ts.types["sensor_msgs/msg/Image"](
        header=_header(ts, t_ns, frame), height=h, width=w, encoding="rgb8", is_bigendian=0,
        step=w * 3, data=np.ascontiguousarray(img).reshape(-1))


def phase(t: float, duration: float) -> tuple[float, bool]:
    """Arm progress in [0, 1] and contact flag at time t."""
    x = t / duration
    prog = min(1.0, 3 * x) if x < 1 / 3 else (1.0 if x < 2 / 3 else max(0.0, 3 * (1 - x)))
    return prog, 1 / 3 <= x < 2 / 3


def tactile_frame(rng: np.random.Generator, base: np.ndarray, contact: bool, t: float):
    img = base + rng.normal(0, 3, base.shape)
    if contact:
        yy, xx = np.mgrid[0:240, 0:320]
        cy, cx = 120 + 20 * np.sin(3 * t), 160 + 30 * np.cos(2 * t)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 45.0**2))
        img = img + blob[..., None] * np.array([70.0, -40.0, 50.0])
    return np.clip(img, 0, 255).astype(np.uint8)


def camera_frame(rng: np.random.Generator, view: int, prog: float) -> np.ndarray:
    img = np.full((224, 224, 3), 40 + 30 * view, np.float64) + rng.normal(0, 2, (224, 224, 3))
    ox = 150 - 20 * view
    img[100:130, ox:ox + 30] = (30, 200, 30)  # object
    ax = int(20 + prog * (ox - 50))
    img[90:140, ax:ax + 30] = (220, 60, 60)  # arm
    return np.clip(img, 0, 255).astype(np.uint8)


def write_episode(path: str | Path, *, duration: float = 4.0, seed: int = 0) -> Path:
    path = Path(path)
    ts = get_typestore(Stores.LATEST)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:240, 0:320]
    base = np.stack([90 + 0.1 * xx, 110 + 0.1 * yy, 140 + 0 * xx], -1).astype(np.float64)
    base += rng.normal(0, 4, base.shape)
    names = [f"joint{i}" for i in range(1, 8)] + ["gripper"]
    img_t, js_t, bool_t = ("sensor_msgs/msg/Image", "sensor_msgs/msg/JointState",
                           "std_msgs/msg/Bool")
    with Writer(path, version=9) as w:
        cams = [w.add_connection(f"/camera/{n}/image_raw", img_t, typestore=ts)
                for n in ("base", "left_wrist", "right_wrist")]
        tac = w.add_connection("/tactile/image_raw", img_t, typestore=ts)
        js = w.add_connection("/joint_states", js_t, typestore=ts)
        gt = w.add_connection("/contact/ground_truth", bool_t, typestore=ts)
        events = []
        for k in range(int(duration * 100)):
            t_ns = k * NS // 100
            prog, _ = phase(k / 100, duration)
            pos = np.array([prog, 0.5 * prog, 0.1, -0.2 * prog, 0.0, 0.3, 0.0, 0.04])
            msg = ts.types[js_t](header=_header(ts, t_ns, ""), name=names, position=pos,
                                 velocity=np.zeros(8), effort=np.zeros(8))
            events.append((t_ns, 5, js, ts.serialize_cdr(msg, js_t)))
        for k in range(int(duration * 30)):
            t_ns, t = k * NS // 30 + 1000, k / 30
            _, contact = phase(t, duration)
            img = tactile_frame(rng, base, contact, t)
            events.append((t_ns, 1, tac, ts.serialize_cdr(_image(ts, t_ns, img, "gel"), img_t)))
            msg = ts.types[bool_t](data=contact)
            events.append((t_ns, 2, gt, ts.serialize_cdr(msg, bool_t)))
        for k in range(int(duration * 15)):
            t_ns = k * NS // 15 + 500
            prog, _ = phase(k / 15, duration)
            for v, conn in enumerate(cams):
                msg = _image(ts, t_ns, camera_frame(rng, v, prog), f"cam{v}")
                events.append((t_ns, 0, conn, ts.serialize_cdr(msg, img_t)))
        for t_ns, _, conn, data in sorted(events, key=lambda e: (e[0], e[1])):
            w.write(conn, t_ns, data)
    return path
