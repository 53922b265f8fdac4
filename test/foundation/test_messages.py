"""ActionChunk and TactileDiagnostics cross real rclpy / Fast DDS between processes."""

from __future__ import annotations

import math

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from restac_ros.msg import ActionChunk, TactileDiagnostics

from test.ros_helpers import spin_until, start_python, stop_process

PUBLISHER = r"""
import sys, time
import rclpy
from rclpy.qos import QoSProfile, QoSReliabilityPolicy, QoSDurabilityPolicy
from restac_ros.msg import ActionChunk, TactileDiagnostics

rclpy.init()
node = rclpy.create_node("restac_msg_publisher")
qos = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                 durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
chunk_pub = node.create_publisher(ActionChunk, "/restac/action_chunk", qos)
diag_pub = node.create_publisher(TactileDiagnostics, "/restac/tactile/diagnostics", qos)

chunk = ActionChunk()
chunk.header.stamp.sec = 1700000000
chunk.header.stamp.nanosec = 123456789
chunk.header.frame_id = "base_link"
chunk.chunk_id = 42
chunk.names = ["joint1", "joint2", "gripper"]
chunk.horizon = 4
chunk.action_dim = 3
chunk.dt = 1.0 / 15.0
chunk.actions = [float(i) * 0.25 - 1.0 for i in range(12)]
chunk.inference_ms = 12.5
chunk.logvar = -3.5
chunk.gate = 0.25

diag = TactileDiagnostics()
diag.header.stamp.sec = 1700000000
diag.header.frame_id = "tactile_link"
diag.vq_codes = [7, 300]
diag.q_event = [0.5] * 64
diag.logvar = -2.0
diag.sigma = 0.36787944
diag.gate = 0.75
diag.tactile_valid = True
diag.mode = "vqvae"

deadline = time.monotonic() + 120.0  # until the test stops it
while time.monotonic() < deadline:
    chunk_pub.publish(chunk)
    diag_pub.publish(diag)
    rclpy.spin_once(node, timeout_sec=0.1)
node.destroy_node()
rclpy.try_shutdown()
"""


@pytest.fixture()
def ros_node():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("restac_msg_listener", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        yield node, executor
    finally:
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_messages_round_trip_between_processes(ros_node):
    node, executor = ros_node
    qos = QoSProfile(
        depth=10,
        reliability=QoSReliabilityPolicy.RELIABLE,
        durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
    )
    chunks: list[ActionChunk] = []
    diags: list[TactileDiagnostics] = []
    node.create_subscription(ActionChunk, "/restac/action_chunk", chunks.append, qos)
    node.create_subscription(TactileDiagnostics, "/restac/tactile/diagnostics", diags.append, qos)

    publisher = start_python(PUBLISHER)
    try:
        received = spin_until(executor, lambda: bool(chunks) and bool(diags), timeout_s=90.0)
    finally:
        out, err = stop_process(publisher)
    assert received, f"no messages across processes; publisher stderr:\n{err[-2000:]}"

    chunk = chunks[0]
    assert chunk.header.stamp.sec == 1700000000 and chunk.header.stamp.nanosec == 123456789
    assert chunk.header.frame_id == "base_link"
    assert chunk.chunk_id == 42
    assert list(chunk.names) == ["joint1", "joint2", "gripper"]
    assert (chunk.horizon, chunk.action_dim) == (4, 3)
    assert math.isclose(chunk.dt, 1.0 / 15.0)
    assert list(chunk.actions) == [float(i) * 0.25 - 1.0 for i in range(12)]
    assert chunk.inference_ms == pytest.approx(12.5)
    assert (chunk.logvar, chunk.gate) == (pytest.approx(-3.5), pytest.approx(0.25))

    diag = diags[0]
    assert list(diag.vq_codes) == [7, 300]
    assert len(diag.q_event) == 64 and diag.q_event[0] == pytest.approx(0.5)
    assert diag.sigma == pytest.approx(math.exp(diag.logvar / 2.0), rel=1e-6)
    assert diag.tactile_valid is True and diag.mode == "vqvae"


def test_message_fields_match_the_contract():
    assert ActionChunk.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "chunk_id": "uint64",
        "names": "sequence<string>",
        "horizon": "uint32",
        "action_dim": "uint32",
        "dt": "double",
        "actions": "sequence<float>",
        "inference_ms": "float",
        "logvar": "float",
        "gate": "float",
    }
    assert TactileDiagnostics.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "vq_codes": "sequence<int32>",
        "q_event": "sequence<float>",
        "logvar": "float",
        "sigma": "float",
        "gate": "float",
        "tactile_valid": "boolean",
        "mode": "string",
    }
