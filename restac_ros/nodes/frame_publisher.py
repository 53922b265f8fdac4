"""frame_publisher: the static TF frames RViz needs for what restac_ros draws.

Publishes one tf2_msgs/TFMessage on /tf_static (reliable, transient local, as
tf2_ros.StaticTransformBroadcaster does; repeated every republish_period_s) with a
transform per entry of the parallel parameter arrays parent_frames / child_frames /
translations (x y z per frame, metres) / rotations_rpy (roll pitch yaw per frame,
radians). The default puts the tactile sensor frame (`tactile_link`, policy_node
tactile_frame_id and the tactile markers) under `base_link` (the chunk / EE path
frame, RViz's Fixed Frame). On a robot whose URDF already has these frames (robot_state_publisher),
point parent_frames at the gripper link instead, or do not start this node.
"""

from __future__ import annotations

import math
import sys

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSReliabilityPolicy
from tf2_msgs.msg import TFMessage

from restac_ros.nodes import qos
from restac_ros.nodes.conversions import rpy_to_quaternion
from restac_ros.nodes.diagnostics import steady_clock
from restac_ros.nodes.params import declare
from restac_ros.nodes.spin import run_nodes

NODE_NAME = "frame_publisher"
TF_STATIC = qos.keep_last(1, QoSReliabilityPolicy.RELIABLE, QoSDurabilityPolicy.TRANSIENT_LOCAL)

PARAMETERS = {
    "parent_frames": (["base_link"], "Parent frame of each static transform"),
    "child_frames": (["tactile_link"], "Child frame of each static transform"),
    "translations": ([0.45, 0.0, 0.25], "x y z (m) of each child in its parent, flattened"),
    "rotations_rpy": ([0.0, 0.0, 0.0], "roll pitch yaw (rad) of each child, flattened"),
    "tf_static_topic": ("/tf_static", "Static transforms topic"),
    "republish_period_s": (
        2.0,
        "Publish the same transforms again this often (0 = once, latched only)",
    ),
}


def validate(p: dict) -> int:
    """Number of frames; ValueError naming the parameter that does not fit."""
    n = len(p["child_frames"])
    if len(p["parent_frames"]) != n:
        raise ValueError(f"parent_frames has {len(p['parent_frames'])} entries, child_frames {n}")
    for name in ("translations", "rotations_rpy"):
        values = p[name]
        if len(values) != 3 * n:
            raise ValueError(f"{name} needs 3 numbers per frame ({3 * n}), got {len(values)}")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{name} holds a non-finite number: {list(values)}")
    for parent, child in zip(p["parent_frames"], p["child_frames"], strict=True):
        if not parent or not child or parent == child:
            raise ValueError(f"bad frame pair {parent!r} -> {child!r}")
    return n


class FramePublisherNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.p = declare(self, PARAMETERS)
        n = validate(self.p)
        self._pub = self.create_publisher(TFMessage, self.p["tf_static_topic"], TF_STATIC)
        self.message = TFMessage(transforms=[self._transform(i) for i in range(n)])
        self._pub.publish(self.message)  # latched: late RViz instances receive it too
        if self.p["republish_period_s"] < 0:
            raise ValueError("republish_period_s must be >= 0")
        if self.p["republish_period_s"] > 0:
            # belt and braces for late joiners: a latched sample was not always delivered
            # to a subscriber that joined many seconds later across processes (measured);
            # repeating an unchanged static transform is harmless to tf2 / RViz
            self.create_timer(
                self.p["republish_period_s"], lambda: self._pub.publish(self.message),
                clock=steady_clock(),
            )
        pairs = [f"{t.header.frame_id}->{t.child_frame_id}" for t in self.message.transforms]
        self.get_logger().info(f"static frames {', '.join(pairs)}")

    def _transform(self, i: int) -> TransformStamped:
        t = TransformStamped()
        t.header.stamp = self.get_clock().now().to_msg()
        t.header.frame_id = self.p["parent_frames"][i]
        t.child_frame_id = self.p["child_frames"][i]
        x, y, z = self.p["translations"][3 * i : 3 * i + 3]
        t.transform.translation.x, t.transform.translation.y = float(x), float(y)
        t.transform.translation.z = float(z)
        q = rpy_to_quaternion(*self.p["rotations_rpy"][3 * i : 3 * i + 3])
        r = t.transform.rotation
        r.x, r.y, r.z, r.w = q
        return t


def main(args: list[str] | None = None) -> int:
    return run_nodes(lambda: [FramePublisherNode()], args=sys.argv if args is None else args)


if __name__ == "__main__":
    sys.exit(main())
