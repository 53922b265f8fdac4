"""tactile_monitor: TactileDiagnostics (+ tactile image, action chunks) -> RViz displays.

/restac/tactile/markers (visualization_msgs/MarkerArray, at the tactile sensor
frame): a sphere coloured by normalised logvar and scaled by the gate, a text
marker with codes / logvar / gate, and the chunk's end-effector path as a
LINE_STRIP for EE action spaces. /restac/tactile/overlay (sensor_msgs/Image):
the tactile image with an uncertainty heat map and the numbers.
"""

from __future__ import annotations

import sys

import numpy as np
from geometry_msgs.msg import Point
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from restac_ros.core.action_space import EE_POSE_RPY_NAMES
from restac_ros.core.images import ImageDecodeError
from restac_ros.msg import ActionChunk, TactileDiagnostics
from restac_ros.nodes import conversions, qos, tactile_drawing
from restac_ros.nodes.params import declare
from restac_ros.nodes.spin import run_nodes

NODE_NAME = "tactile_monitor"
NAMESPACE = "restac_tactile"
SPHERE_ID, TEXT_ID, PATH_ID = 0, 1, 2

PARAMETERS = {
    "tactile_diagnostics_topic": ("/restac/tactile/diagnostics", "TactileDiagnostics input"),
    "action_chunk_topic": ("/restac/action_chunk", "ActionChunk input (EE path marker)"),
    "tactile_topic": ("/tactile/image_raw", "Tactile image input for the overlay"),
    "markers_topic": ("/restac/tactile/markers", "MarkerArray output"),
    "overlay_topic": ("/restac/tactile/overlay", "Overlay image output"),
    "frame_id": ("", "Marker frame ('' = the TactileDiagnostics header frame)"),
    "logvar_min": (-10.0, "logvar shown as fully certain (green)"),
    "logvar_max": (2.0, "logvar shown as fully uncertain (red)"),
    "sphere_diameter_m": (0.04, "Sphere diameter at gate 1 (m); gate 0 gives a quarter"),
    "marker_lifetime_s": (1.0, "Marker lifetime (s): markers vanish when diagnostics stop"),
}


def _rgba(r: float, g: float, b: float, a: float) -> ColorRGBA:
    return ColorRGBA(r=float(r), g=float(g), b=float(b), a=float(a))


class TactileMonitorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.p = declare(self, PARAMETERS)
        if not self.p["logvar_max"] > self.p["logvar_min"]:
            raise ValueError("logvar_max must be greater than logvar_min")
        self._tactile: np.ndarray | None = None
        self._baseline: np.ndarray | None = None
        self._chunk: ActionChunk | None = None
        self.bad_images = 0
        self._markers = self.create_publisher(
            MarkerArray, self.p["markers_topic"], qos.VISUALIZATION
        )
        self._overlay = self.create_publisher(Image, self.p["overlay_topic"], qos.VISUALIZATION)
        self.create_subscription(
            TactileDiagnostics, self.p["tactile_diagnostics_topic"], self._on_diag, qos.OUTPUT
        )
        self.create_subscription(
            ActionChunk, self.p["action_chunk_topic"], self._on_chunk, qos.OUTPUT
        )
        self.create_subscription(Image, self.p["tactile_topic"], self._on_tactile, qos.SENSOR)

    def _on_tactile(self, msg: Image) -> None:
        try:
            rgb = conversions.image_to_rgb(msg)
        except ImageDecodeError as exc:
            self.bad_images += 1
            self.get_logger().warning(f"tactile image not shown: {exc}", throttle_duration_sec=5.0)
            return
        if self._baseline is None:
            self._baseline = rgb
        self._tactile = rgb

    def _on_chunk(self, msg: ActionChunk) -> None:
        self._chunk = msg

    def _on_diag(self, msg: TactileDiagnostics) -> None:
        stamp_ns = conversions.stamp_to_ns(msg.header.stamp)
        level = tactile_drawing.normalised_logvar(
            msg.logvar, self.p["logvar_min"], self.p["logvar_max"]
        )
        self._markers.publish(self.markers(msg, level))
        if self._tactile is not None:
            lines = [
                tactile_drawing.summary_text(
                    msg.vq_codes, msg.logvar, msg.gate, msg.mode, msg.tactile_valid
                ),
                f"uncertainty {level:.2f}",
            ]
            img = tactile_drawing.overlay(self._tactile, self._baseline, level, lines)
            self._overlay.publish(conversions.rgb_to_image(img, stamp_ns, msg.header.frame_id))

    def markers(self, msg: TactileDiagnostics, level: float) -> MarkerArray:
        frame = self.p["frame_id"] or msg.header.frame_id or "tactile_link"
        lifetime = conversions.duration_to_msg(self.p["marker_lifetime_s"])

        def base(marker_id: int, kind: int, frame_id: str) -> Marker:
            m = Marker()
            m.header.stamp = msg.header.stamp
            m.header.frame_id = frame_id
            m.ns, m.id, m.type, m.action = NAMESPACE, marker_id, kind, Marker.ADD
            m.pose.orientation.w = 1.0
            m.lifetime = lifetime
            return m

        gate = min(max(float(msg.gate), 0.0), 1.0)
        sphere = base(SPHERE_ID, Marker.SPHERE, frame)
        d = self.p["sphere_diameter_m"] * (0.25 + 0.75 * gate)
        sphere.scale.x = sphere.scale.y = sphere.scale.z = d
        sphere.color = _rgba(*tactile_drawing.uncertainty_rgba(level))
        text = base(TEXT_ID, Marker.TEXT_VIEW_FACING, frame)
        text.pose.position.z = self.p["sphere_diameter_m"] * 1.5
        text.scale.z = 0.02
        text.color = _rgba(1.0, 1.0, 1.0, 1.0)
        text.text = tactile_drawing.summary_text(
            msg.vq_codes, msg.logvar, msg.gate, msg.mode, msg.tactile_valid
        )
        markers = [sphere, text]
        path = self._ee_path_marker(base)
        if path is not None:
            markers.append(path)
        return MarkerArray(markers=markers)

    def _ee_path_marker(self, base) -> Marker | None:
        chunk = self._chunk
        if chunk is None or tuple(chunk.names) != EE_POSE_RPY_NAMES:
            return None
        try:
            actions = conversions.chunk_actions(chunk)
        except conversions.ConversionError as exc:
            self.get_logger().warning(f"chunk path not shown: {exc}", throttle_duration_sec=5.0)
            return None
        line = base(PATH_ID, Marker.LINE_STRIP, chunk.header.frame_id or "base_link")
        line.scale.x = 0.005
        line.color = _rgba(0.1, 0.4, 1.0, 0.9)
        line.points = [Point(x=float(r[0]), y=float(r[1]), z=float(r[2])) for r in actions]
        return line


def main(args: list[str] | None = None) -> int:
    return run_nodes(lambda: [TactileMonitorNode()], args=sys.argv if args is None else args)


if __name__ == "__main__":
    sys.exit(main())
