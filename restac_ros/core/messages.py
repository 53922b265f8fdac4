"""Duck-typed message -> core type conversion (no ROS imports).

Works on anything shaped like the ROS 2 messages: rclpy message objects in the
nodes, rosbags-deserialised objects in the bag dataset. One conversion, so a
live message and its recorded copy become identical core values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from restac_ros.core.buffers import NS_PER_S
from restac_ros.core.images import RawCompressedImage, RawImage
from restac_ros.core.observation import JointSample

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
STRING = "std_msgs/msg/String"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)


def stamp_ns(msg: Any) -> int:
    """header.stamp in ns (0 = unstamped, see buffers.UnstampedPolicy)."""
    return int(msg.header.stamp.sec) * NS_PER_S + int(msg.header.stamp.nanosec)


def _byte_array(data: Any) -> np.ndarray:
    # rclpy gives array.array / bytes, rosbags numpy uint8: view them without copying.
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def to_raw_image(msg: Any) -> RawImage:
    """sensor_msgs/Image -> RawImage (decoded later, at the tick that uses it)."""
    return RawImage(
        _byte_array(msg.data),
        str(msg.encoding),
        int(msg.height),
        int(msg.width),
        int(msg.step),
        bool(msg.is_bigendian),
    )


def to_raw_compressed(msg: Any) -> RawCompressedImage:
    """sensor_msgs/CompressedImage -> RawCompressedImage."""
    return RawCompressedImage(_byte_array(msg.data), str(msg.format))


def to_image_input(msg: Any, msgtype: str) -> RawImage | RawCompressedImage:
    """Either image message, by its type name (IMAGE or COMPRESSED_IMAGE)."""
    if msgtype == COMPRESSED_IMAGE:
        return to_raw_compressed(msg)
    if msgtype == IMAGE:
        return to_raw_image(msg)
    raise ValueError(f"not an image message type: {msgtype!r}")


def to_joint_sample(msg: Any) -> JointSample:
    """sensor_msgs/JointState -> JointSample (names/positions validated by the builder)."""
    return JointSample(tuple(msg.name), np.asarray(msg.position, dtype=np.float64), stamp_ns(msg))


MAX_STRING_BYTES = 1 << 20  # a std_msgs/String payload beyond 1 MiB is refused unread


def string_from_cdr(raw: bytes) -> str:
    """A serialized std_msgs/String (CDR) -> its text, refusing what deserializing would
    hide: an embedded NUL (the C string conversion silently cuts the text there), a
    length that disagrees with the payload, invalid UTF-8. Raises ValueError."""
    raw = bytes(raw)
    if len(raw) < 8:
        raise ValueError(f"serialized String of {len(raw)} bytes is truncated")
    if raw[1] not in (0, 1):  # encapsulation: 0 = CDR big endian, 1 = little endian
        raise ValueError(f"unknown CDR encapsulation {raw[:2].hex()}")
    order = "little" if raw[1] == 1 else "big"
    length = int.from_bytes(raw[4:8], order)  # includes the terminating NUL
    if length > MAX_STRING_BYTES:
        raise ValueError(f"String of {length} bytes exceeds {MAX_STRING_BYTES}")
    body = raw[8:8 + length]
    if length < 1 or len(body) != length or body[-1] != 0:
        raise ValueError(f"String length {length} does not match its {len(raw) - 8} bytes")
    text = body[:-1]
    if b"\x00" in text:
        raise ValueError(f"String contains a NUL character at byte {text.index(0)} "
                         f"(of {len(text)})")
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"String is not valid UTF-8 ({exc.reason} at byte {exc.start})") \
            from None
