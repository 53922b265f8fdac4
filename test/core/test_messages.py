"""Duck-typed message conversion (rosbags objects here; rclpy objects have the same fields)."""

from __future__ import annotations

import array
import types

import cv2
import numpy as np
import pytest

from restac_ros.core.images import as_rgb
from restac_ros.core.messages import (
    COMPRESSED_IMAGE,
    IMAGE,
    stamp_ns,
    to_image_input,
    to_joint_sample,
)
from test.core.bagtools import TS


def _header(sec: int, nanosec: int) -> object:
    return TS.types["std_msgs/msg/Header"](
        stamp=TS.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id="cam"
    )


def test_image_from_rosbags_object() -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = TS.types["sensor_msgs/msg/Image"](
        header=_header(3, 5), height=2, width=3, encoding="bgr8", is_bigendian=0, step=9,
        data=img.reshape(-1),
    )  # fmt: skip
    assert stamp_ns(msg) == 3_000_000_005
    np.testing.assert_array_equal(as_rgb(to_image_input(msg, IMAGE)), img[..., ::-1])


def test_rclpy_style_byte_containers() -> None:
    """rclpy fills uint8[] fields with array.array('B') and bytes."""
    img = np.full((4, 4, 3), 9, np.uint8)
    _, png = cv2.imencode(".png", img)
    msg = types.SimpleNamespace(data=array.array("B", png.tobytes()), format="png")
    np.testing.assert_array_equal(as_rgb(to_image_input(msg, COMPRESSED_IMAGE)), img)
    raw = types.SimpleNamespace(
        data=img.tobytes(), encoding="rgb8", height=4, width=4, step=12, is_bigendian=False
    )
    np.testing.assert_array_equal(as_rgb(to_image_input(raw, IMAGE)), img)
    with pytest.raises(ValueError, match="not an image message type"):
        to_image_input(raw, "std_msgs/msg/String")


def test_joint_state() -> None:
    msg = TS.types["sensor_msgs/msg/JointState"](
        header=_header(1, 2), name=["a", "b"], position=np.array([0.5, -0.5]),
        velocity=np.zeros(0), effort=np.zeros(0),
    )  # fmt: skip
    js = to_joint_sample(msg)
    assert js.names == ("a", "b") and js.stamp_ns == 1_000_000_002
    np.testing.assert_array_equal(js.positions, [0.5, -0.5])
