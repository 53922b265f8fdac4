"""Message <-> plain data conversions (no DDS needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, JointState

from restac_ros.core.images import ImageDecodeError
from restac_ros.nodes import conversions


def test_stamp_round_trip():
    ns = 1_700_000_000_123_456_789
    assert conversions.stamp_to_ns(conversions.ns_to_stamp(ns)) == ns


def test_image_round_trip_and_decode_errors():
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    msg = conversions.rgb_to_image(rgb, 5, "cam")
    assert (msg.height, msg.width, msg.step, msg.encoding) == (4, 5, 15, "rgb8")
    np.testing.assert_array_equal(conversions.image_to_rgb(msg), rgb)
    msg.encoding = "bgr8"
    np.testing.assert_array_equal(conversions.image_to_rgb(msg), rgb[..., ::-1])
    msg.encoding = "16UC1"
    with pytest.raises(ImageDecodeError, match="unsupported encoding"):
        conversions.image_to_rgb(msg)
    msg.encoding, msg.data = "rgb8", bytes(59)
    with pytest.raises(ImageDecodeError, match="step\\*height"):
        conversions.image_to_rgb(msg)


def test_compressed_image():
    import cv2

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, :, 0] = 255
    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    assert ok
    msg = CompressedImage(format="png", data=png.tobytes())
    np.testing.assert_array_equal(conversions.compressed_to_rgb(msg), rgb)


def test_joint_sample_and_malformed_joint_state():
    msg = JointState(name=["a", "b"], position=[1.0, float("nan")])
    msg.header.stamp = conversions.ns_to_stamp(7)
    sample = conversions.joint_sample(msg)
    assert sample.names == ("a", "b") and sample.stamp_ns == 7 and math.isnan(sample.positions[1])
    assert conversions.joint_positions(msg)["a"] == 1.0
    with pytest.raises(conversions.ConversionError, match="names but"):
        conversions.joint_positions(JointState(name=["a"], position=[1.0, 2.0]))


def test_action_chunk_round_trip_to_core_chunk():
    actions = np.arange(6, dtype=np.float32).reshape(3, 2)
    msg = conversions.action_chunk(
        stamp_ns=10**9,
        frame_id="",
        chunk_id=4,
        names=["j1", "j2"],
        actions=actions,
        dt_s=0.1,
        inference_ms=2.0,
        logvar=-1.0,
        gate=0.5,
    )
    chunk = conversions.chunk_from_msg(msg)
    assert chunk.t0_ns == 10**9 and chunk.chunk_id == 4 and chunk.logvar == -1.0
    np.testing.assert_array_equal(chunk.actions, actions)
    msg.horizon = 4
    with pytest.raises(conversions.ConversionError):
        conversions.chunk_from_msg(msg)


def test_joint_trajectory_times():
    traj = conversions.joint_trajectory(["a"], np.array([[0.0], [1.0], [2.0]]), 0.5, 10**9)
    times = [p.time_from_start.sec + p.time_from_start.nanosec / 1e9 for p in traj.points]
    assert times == [0.0, 0.5, 1.0] and list(traj.points[2].positions) == [2.0]


def test_ee_path_orientation_and_stamps():
    row = [0.4, 0.1, 0.3, math.pi / 2, 0.0, 0.0, 1.0]
    path = conversions.ee_path(np.array([row, row]), 0.1, 10**9, "base_link")
    q = path.poses[0].pose.orientation
    assert (q.x, q.w) == (pytest.approx(math.sqrt(0.5)), pytest.approx(math.sqrt(0.5)))
    assert path.header.frame_id == "base_link" and path.poses[1].header.stamp.nanosec == 10**8
    yaw = conversions.rpy_to_quaternion(0.0, 0.0, math.pi)
    assert yaw == pytest.approx((0.0, 0.0, 1.0, 0.0), abs=1e-12)


def test_tactile_diagnostics_drops_placeholder_codes():
    msg = conversions.tactile_diagnostics(
        stamp_ns=1,
        frame_id="t",
        codes=np.array([-1]),
        q_event=np.zeros(4),
        logvar=-2.0,
        gate=0.1,
        tactile_valid=False,
        mode="placeholder",
    )
    assert list(msg.vq_codes) == [] and msg.sigma == pytest.approx(math.exp(-1.0))
