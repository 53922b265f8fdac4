"""ROS message <-> plain data (numpy, ints in ns) conversions. No preprocessing here.

Image decoding is delegated to restac_ros.core.images (the one image path);
this module only moves fields between messages and Python/numpy values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, Int32MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from restac_ros.core import images
from restac_ros.core.executor import Chunk
from restac_ros.core.observation import JointSample
from restac_ros.msg import ActionChunk, TactileDiagnostics

NS_PER_S = 1_000_000_000


class ConversionError(ValueError):
    """A message that cannot be turned into plain data; the text says why."""


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    ns = int(ns)
    return Time(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def duration_to_msg(seconds: float) -> Duration:
    ns = round(seconds * NS_PER_S)
    return Duration(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def image_to_rgb(msg: Image) -> np.ndarray:
    """sensor_msgs/Image -> uint8 [H, W, 3] RGB; raises ImageDecodeError with the reason."""
    return images.decode_image(
        np.frombuffer(msg.data, dtype=np.uint8),
        msg.encoding,
        int(msg.height),
        int(msg.width),
        int(msg.step),
        bool(msg.is_bigendian),
    )


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """sensor_msgs/CompressedImage -> uint8 [H, W, 3] RGB; raises ImageDecodeError."""
    return images.decode_compressed(np.frombuffer(msg.data, dtype=np.uint8), msg.format)


def rgb_to_image(rgb: np.ndarray, stamp_ns: int, frame_id: str) -> Image:
    """uint8 [H, W, 3] RGB -> sensor_msgs/Image rgb8 (bytes copy, not per-element)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ConversionError(f"expected uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
    msg = Image()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = int(rgb.shape[1]) * 3
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


def joint_positions(msg: JointState) -> dict[str, float]:
    """JointState -> {name: position}. Raises on malformed arrays (not on NaN: the core checks)."""
    names = list(msg.name)
    positions = list(msg.position)
    if len(names) != len(positions):
        raise ConversionError(f"JointState has {len(names)} names but {len(positions)} positions")
    if len(set(names)) != len(names):
        raise ConversionError(f"JointState has duplicate joint names: {names}")
    return {n: float(p) for n, p in zip(names, positions, strict=True)}


def joint_sample(msg: JointState) -> JointSample:
    """JointState -> core JointSample (names, positions); the core validates the content."""
    return JointSample(
        tuple(msg.name), np.array(msg.position, dtype=np.float64), stamp_to_ns(msg.header.stamp)
    )


def action_chunk(
    *,
    stamp_ns: int,
    frame_id: str,
    chunk_id: int,
    names: Sequence[str],
    actions: np.ndarray,
    dt_s: float,
    inference_ms: float,
    logvar: float,
    gate: float,
) -> ActionChunk:
    actions = np.asarray(actions, dtype=np.float32)
    if actions.ndim != 2 or actions.shape[1] != len(names):
        raise ConversionError(f"actions shape {actions.shape} does not match names {list(names)}")
    msg = ActionChunk()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.chunk_id = int(chunk_id)
    msg.names = list(names)
    msg.horizon, msg.action_dim = int(actions.shape[0]), int(actions.shape[1])
    msg.dt = float(dt_s)
    msg.actions = actions.reshape(-1)
    msg.inference_ms = float(inference_ms)
    msg.logvar = float(logvar)
    msg.gate = float(gate)
    return msg


def chunk_actions(msg: ActionChunk) -> np.ndarray:
    """ActionChunk.actions -> float [horizon, action_dim]; raises on inconsistent sizes."""
    actions = np.asarray(msg.actions, dtype=np.float64)
    if msg.horizon < 1 or msg.action_dim < 1 or actions.size != msg.horizon * msg.action_dim:
        raise ConversionError(
            f"chunk {msg.chunk_id}: {actions.size} values for horizon {msg.horizon} "
            f"x action_dim {msg.action_dim}"
        )
    if len(msg.names) != msg.action_dim:
        raise ConversionError(
            f"chunk {msg.chunk_id}: {len(msg.names)} names for action_dim {msg.action_dim}"
        )
    return actions.reshape(msg.horizon, msg.action_dim)


def chunk_from_msg(msg: ActionChunk) -> Chunk:
    """ActionChunk -> core executor Chunk (raises ValueError / ConversionError when invalid)."""
    return Chunk(
        t0_ns=stamp_to_ns(msg.header.stamp),
        dt_s=float(msg.dt),
        actions=chunk_actions(msg),
        logvar=float(msg.logvar),
        chunk_id=int(msg.chunk_id),
    )


def tactile_diagnostics(
    *,
    stamp_ns: int,
    frame_id: str,
    codes: np.ndarray,
    q_event: np.ndarray,
    logvar: float,
    gate: float,
    tactile_valid: bool,
    mode: str,
) -> TactileDiagnostics:
    codes = np.asarray(codes, dtype=np.int32).reshape(-1)
    msg = TactileDiagnostics()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.vq_codes = codes[codes >= 0]  # -1 = placeholder mode (no codes)
    msg.q_event = np.asarray(q_event, dtype=np.float32).reshape(-1)
    msg.logvar = float(logvar)
    msg.sigma = float(math.exp(float(logvar) / 2.0))
    msg.gate = float(gate)
    msg.tactile_valid = bool(tactile_valid)
    msg.mode = mode
    return msg


def int32_array(values: np.ndarray, label: str) -> Int32MultiArray:
    values = np.asarray(values, dtype=np.int32).reshape(-1)
    msg = Int32MultiArray()
    msg.layout.dim = [
        MultiArrayDimension(label=label, size=int(values.size), stride=int(values.size))
    ]
    msg.data = values
    return msg


def float64_array(values: np.ndarray, label: str) -> Float64MultiArray:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    msg = Float64MultiArray()
    msg.layout.dim = [
        MultiArrayDimension(label=label, size=int(values.size), stride=int(values.size))
    ]
    msg.data = values
    return msg


def joint_trajectory(
    names: Sequence[str], actions: np.ndarray, dt_s: float, stamp_ns: int, frame_id: str = ""
) -> JointTrajectory:
    """Point k of the chunk at time_from_start k*dt from the observation stamp."""
    msg = JointTrajectory()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.joint_names = list(names)
    points = []
    for k, row in enumerate(np.asarray(actions, dtype=np.float64)):
        point = JointTrajectoryPoint()
        point.positions = row
        point.time_from_start = duration_to_msg(k * dt_s)
        points.append(point)
    msg.points = points
    return msg


def rpy_to_quaternion(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """Fixed-axis XYZ roll/pitch/yaw -> quaternion (x, y, z, w), as tf2's setRPY."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    )


def pose_stamped(row: Sequence[float], stamp_ns: int, frame_id: str) -> PoseStamped:
    """(x, y, z, roll, pitch, yaw, ...) -> PoseStamped."""
    pose = PoseStamped()
    pose.header.stamp = ns_to_stamp(stamp_ns)
    pose.header.frame_id = frame_id
    pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in row[:3])
    q = rpy_to_quaternion(float(row[3]), float(row[4]), float(row[5]))
    o = pose.pose.orientation
    o.x, o.y, o.z, o.w = q
    return pose


def ee_path(actions: np.ndarray, dt_s: float, stamp_ns: int, frame_id: str) -> Path:
    """An ee_pose_rpy chunk [H, >=6] -> nav_msgs/Path, pose k stamped at stamp + k*dt."""
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 2 or actions.shape[1] < 6:
        raise ConversionError(f"ee_pose_rpy actions need >= 6 columns, got {actions.shape}")
    msg = Path()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.poses = [
        pose_stamped(row, stamp_ns + round(k * dt_s * NS_PER_S), frame_id)
        for k, row in enumerate(actions)
    ]
    return msg
