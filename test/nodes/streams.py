"""Synthetic sensor streams for node tests: cameras, tactile, joints, prompt over real DDS.

Every message can be altered per stream by a `mutate` hook (bad encodings,
NaN joints, zero stamps, ...); streams can be paused to make them stale.
"""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String

from restac_ros.nodes import conversions, qos
from test.nodes.checkpoints import JOINTS

CAMERAS = {
    "base_0_rgb": "/camera/base/image_raw",
    "left_wrist_0_rgb": "/camera/left_wrist/image_raw",
    "right_wrist_0_rgb": "/camera/right_wrist/image_raw",
}
TACTILE = "/tactile/image_raw"
JOINT_TOPIC = "/joint_states"
PROMPT_TOPIC = "/restac/prompt"


def _pattern(h: int, w: int, value: int) -> np.ndarray:
    img = np.full((h, w, 3), value % 256, dtype=np.uint8)
    img[: h // 2, : w // 2, 0] = 200
    return img


def rgb_image(h: int, w: int, value: int, stamp_ns: int, frame: str) -> Image:
    return conversions.rgb_to_image(_pattern(h, w, value), stamp_ns, frame)


def jpeg_image(h: int, w: int, value: int, stamp_ns: int, frame: str) -> CompressedImage:
    msg = CompressedImage()
    msg.header.stamp = conversions.ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame
    msg.format = "jpeg"
    msg.data = cv2.imencode(".jpg", _pattern(h, w, value)[..., ::-1])[1].tobytes()
    return msg


class SyntheticStreams(Node):
    """Publishes 3 cameras + tactile at `image_hz` and joints at `joint_hz` (node clock)."""

    def __init__(
        self,
        context,
        image_hz: float = 15.0,
        joint_hz: float = 100.0,
        prompt: str | None = "pick up the cube",
        name: str = "synthetic_streams",
        camera_transport: str = "raw",
        use_sim_time: bool = False,
    ) -> None:
        super().__init__(name, context=context,
                         parameter_overrides=[Parameter("use_sim_time", value=use_sim_time)])
        self._compressed = camera_transport == "compressed"
        self.mutate: dict[str, object] = {}  # stream -> fn(msg) -> msg
        self.paused: set[str] = set()
        self._lock = threading.Lock()
        self.count = 0
        self.sent: dict[str, int] = {}
        cam_type = CompressedImage if self._compressed else Image
        self._cams = {s: self.create_publisher(cam_type, t, qos.SENSOR) for s, t in CAMERAS.items()}
        self._tactile = self.create_publisher(Image, TACTILE, qos.SENSOR)
        self._joints = self.create_publisher(JointState, JOINT_TOPIC, qos.SENSOR)
        self._prompt = self.create_publisher(String, PROMPT_TOPIC, qos.PROMPT)
        if prompt is not None:
            self._prompt.publish(String(data=prompt))
        self.create_timer(1.0 / image_hz, self._publish_images)
        self.create_timer(1.0 / joint_hz, self._publish_joints)

    def publish_prompt(self, text: str) -> None:
        self._prompt.publish(String(data=text))

    def _send(self, stream: str, pub, msg) -> None:
        if stream in self.paused:
            return
        fn = self.mutate.get(stream)
        if fn is not None:
            msg = fn(msg)
        pub.publish(msg)
        self.sent[stream] = self.sent.get(stream, 0) + 1

    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def _publish_images(self) -> None:
        now = self._now()
        self.count += 1
        make = jpeg_image if self._compressed else rgb_image
        for slot, pub in self._cams.items():
            self._send(slot, pub, make(224, 224, self.count, now, slot))
        self._send("tactile", self._tactile, rgb_image(240, 320, 3 * self.count, now, "tactile"))

    def _publish_joints(self) -> None:
        now = self._now()
        msg = JointState()
        msg.header.stamp = conversions.ns_to_stamp(now)
        msg.name = list(JOINTS)
        t = now / 1e9
        msg.position = [0.1 * math.sin(t + i) for i in range(len(JOINTS) - 1)] + [0.5]
        self._send("joints", self._joints, msg)
