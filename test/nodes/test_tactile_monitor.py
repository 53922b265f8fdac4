"""tactile_monitor: marker validity (frames, colours, lifetimes, ids), overlay image,
EE path line strip; config/restac.rviz parses and names only package topics."""

from __future__ import annotations

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from restac_ros.msg import ActionChunk, TactileDiagnostics
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker, MarkerArray

from restac_ros.nodes import conversions, launch_description, qos
from restac_ros.nodes.spin import SpinThread
from restac_ros.nodes.tactile_monitor import TactileMonitorNode
from restac_ros.paths import config_path
from test.nodes.streams import rgb_image
from test.ros_helpers import spin_until


def diagnostics_msg(logvar: float, gate: float) -> TactileDiagnostics:
    return conversions.tactile_diagnostics(
        stamp_ns=1_700_000_000_000_000_000,
        frame_id="tactile_link",
        codes=np.array([3, 17]),
        q_event=np.zeros(64),
        logvar=logvar,
        gate=gate,
        tactile_valid=True,
        mode="vqvae",
    )


@pytest.fixture()
def monitor(ros_context):
    node = TactileMonitorNode(
        context=ros_context, parameter_overrides=[Parameter("marker_lifetime_s", value=0.5)]
    )
    spinner = SpinThread(node, ros_context).start()
    client = rclpy.create_node("monitor_client", context=ros_context)
    got: dict[str, list] = {"markers": [], "overlay": []}
    client.create_subscription(MarkerArray, "/restac/tactile/markers", got["markers"].append, 10)
    client.create_subscription(Image, "/restac/tactile/overlay", got["overlay"].append, 10)
    pubs = {
        "diag": client.create_publisher(
            TactileDiagnostics, "/restac/tactile/diagnostics", qos.OUTPUT
        ),
        "chunk": client.create_publisher(ActionChunk, "/restac/action_chunk", qos.OUTPUT),
        "tactile": client.create_publisher(Image, "/tactile/image_raw", qos.SENSOR),
    }
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(client)
    try:
        outputs = [p for p in node.publishers if p.topic_name.startswith("/restac/tactile/")]
        assert spin_until(
            executor, lambda: all(p.get_subscription_count() for p in [*pubs.values(), *outputs]),
            30.0,
        )
        yield node, executor, pubs, got
    finally:
        executor.shutdown(timeout_sec=2.0)
        spinner.stop()
        client.destroy_node()
        node.destroy_node()


def check_marker(m: Marker) -> None:
    assert m.header.frame_id, "marker without frame"
    assert m.ns == "restac_tactile" and m.id in (0, 1, 2) and m.action == Marker.ADD
    for c in (m.color.r, m.color.g, m.color.b, m.color.a):
        assert 0.0 <= c <= 1.0
    assert m.color.a > 0
    lifetime = m.lifetime.sec + m.lifetime.nanosec / 1e9
    assert 0.0 < lifetime <= 5.0
    q = m.pose.orientation
    assert np.isclose(q.x**2 + q.y**2 + q.z**2 + q.w**2, 1.0)


def test_markers_overlay_and_ee_path(monitor):
    node, executor, pubs, got = monitor
    pubs["tactile"].publish(rgb_image(240, 320, 10, 0, "tactile_link"))
    # the overlay needs the tactile image, which comes on another topic than the
    # diagnostics: wait until the monitor holds it (no ordering across topics)
    assert spin_until(executor, lambda: node._tactile is not None, 30.0)
    for logvar, gate in ((-12.0, 0.0), (-4.0, 0.5), (5.0, 1.0)):
        pubs["diag"].publish(diagnostics_msg(logvar, gate))
    assert spin_until(executor, lambda: len(got["markers"]) >= 3 and got["overlay"], 30.0)
    spheres = []
    for array in got["markers"][-3:]:
        ids = [m.id for m in array.markers]
        assert len(ids) == len(set(ids))
        for m in array.markers:
            check_marker(m)
            assert m.header.frame_id == "tactile_link"
        spheres.append(next(m for m in array.markers if m.type == Marker.SPHERE))
        text = next(m for m in array.markers if m.type == Marker.TEXT_VIEW_FACING)
        assert "codes [3,17]" in text.text and "gate" in text.text
    # low logvar green, high red; gate scales the sphere
    assert spheres[0].color.g == 1.0 and spheres[0].color.r == 0.0
    assert spheres[2].color.r == 1.0 and spheres[2].color.g == 0.0
    assert spheres[0].scale.x < spheres[1].scale.x < spheres[2].scale.x
    overlay = got["overlay"][-1]
    assert overlay.encoding == "rgb8" and overlay.width >= 320
    assert len(overlay.data) == overlay.step * overlay.height
    # an EE chunk adds the path as a line strip in the chunk's frame
    actions = np.column_stack([np.linspace(0.3, 0.4, 10), np.zeros((10, 5)), np.ones(10)])
    pubs["chunk"].publish(
        conversions.action_chunk(
            stamp_ns=1,
            frame_id="base_link",
            chunk_id=0,
            names=["x", "y", "z", "roll", "pitch", "yaw", "gripper"],
            actions=actions,
            dt_s=0.1,
            inference_ms=1.0,
            logvar=0.0,
            gate=0.0,
        )
    )
    assert spin_until(executor, lambda: node._chunk is not None, 30.0)  # another topic
    got["markers"].clear()
    pubs["diag"].publish(diagnostics_msg(-3.0, 0.2))
    assert spin_until(executor, lambda: got["markers"], 30.0)
    line = next(m for m in got["markers"][-1].markers if m.type == Marker.LINE_STRIP)
    check_marker(line)
    assert line.header.frame_id == "base_link" and len(line.points) == 10
    assert line.points[-1].x == pytest.approx(0.4)


def package_topics() -> set[str]:
    topics = set()
    for params in launch_description.read_params_file(config_path("policy.yaml")).values():
        for key, value in params.items():
            if key.endswith("_topic") and value:
                topics.add(value)
            if key.endswith("_topics"):
                topics.update(value)
    return topics


def rviz_topics(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Topic" and isinstance(value, dict):
                found.append(value["Value"])
            else:
                found.extend(rviz_topics(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(rviz_topics(item))
    return found


@pytest.mark.parametrize("name,ee", [("restac.rviz", False), ("restac_ee.rviz", True)])
def test_rviz_config_parses_and_names_only_package_topics(name, ee):
    config = yaml.safe_load(config_path(name).read_text())
    displays = config["Visualization Manager"]["Displays"]
    classes = {d["Class"] for d in displays}
    assert {"rviz_default_plugins/MarkerArray", "rviz_default_plugins/Image"} <= classes
    # the EE path exists only for EE action spaces (restac.rviz: joint spaces)
    assert ("rviz_default_plugins/Path" in classes) == ee
    topics = rviz_topics(config)
    assert set(topics) >= {
        "/restac/tactile/markers",
        "/restac/tactile/overlay",
        "/camera/base/image_raw",
    }
    assert ("/restac/ee_path" in topics) == ee
    assert set(topics) <= package_topics(), set(topics) - package_topics()
