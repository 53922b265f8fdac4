"""bag_player: recorded timing (with a rate factor), /clock, raw CDR, exit when done."""

from __future__ import annotations

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from restac_ros.nodes import conversions, qos
from restac_ros.nodes.bag_player import message_class
from test.ros_helpers import spin_until, start_python, stop_process

T0_NS = 1_700_000_000_000_000_000
PERIOD_NS = 50_000_000  # 20 Hz recorded
COUNT = 20
RATE = 2.0

# The player starts once the listener's subscriptions matched (no fixed delay to guess).
PLAYER = r"""
import sys
from restac_ros.nodes.bag_player import main
sys.exit(main(["bag_player", "--ros-args", "-p", "bag_path:=" + sys.argv[1],
               "-p", "rate:=%s", "-p", "start_delay_s:=0.0", "-p", "publish_clock:=true",
               "-p", "wait_for_subscribers:=[/clock,/joint_states,/restac/prompt]"]))
"""


def write_bag(path) -> None:
    store = get_typestore(Stores.ROS2_KILTED)
    with Writer(path, version=9) as writer:
        joints = writer.add_connection(
            "/joint_states", "sensor_msgs/msg/JointState", typestore=store
        )
        prompt = writer.add_connection("/restac/prompt", "std_msgs/msg/String", typestore=store)
        writer.write(prompt, T0_NS, serialize_message(String(data="pick up the cube")))
        for k in range(COUNT):
            msg = JointState()
            msg.header.stamp = conversions.ns_to_stamp(T0_NS + k * PERIOD_NS)
            msg.name = ["joint1"]
            msg.position = [float(k)]
            writer.write(joints, T0_NS + k * PERIOD_NS, serialize_message(msg))


def test_message_class_from_type_name():
    assert message_class("sensor_msgs/msg/JointState") is JointState


def test_plays_with_recorded_timing_and_clock(tmp_path, ros_context):
    bag = tmp_path / "bag"
    write_bag(bag)
    node = rclpy.create_node("bag_listener", context=ros_context)
    sent: list[tuple[int, float]] = []  # (index, the player's publish time from DDS)
    clocks: list[int] = []
    prompts: list[str] = []
    node.create_subscription(
        JointState,
        "/joint_states",
        lambda m, info: sent.append((int(m.position[0]), info["source_timestamp"] / 1e9)),
        qos.SENSOR,
    )
    node.create_subscription(
        Clock, "/clock", lambda m: clocks.append(conversions.stamp_to_ns(m.clock)), qos.CLOCK
    )
    node.create_subscription(String, "/restac/prompt", lambda m: prompts.append(m.data), qos.PROMPT)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    player = start_python(PLAYER % RATE, str(bag))
    try:
        done = spin_until(executor, lambda: player.poll() is not None, timeout_s=120.0)
        spin_until(executor, lambda: len(sent) >= COUNT and prompts, timeout_s=10.0)
    finally:
        out, err = stop_process(player)
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
    assert done, f"bag_player did not exit by itself\n{err[-2000:]}"
    assert player.returncode == 0, err[-2000:]
    assert prompts == ["pick up the cube"]
    indices = [i for i, _ in sent]
    assert len(indices) >= COUNT - 2 and indices == sorted(indices), indices
    # recorded 50 ms spacing at rate 2 -> 25 ms between publishes. Each message is due at
    # start + offset / rate and never goes out before: the span is at least the recorded
    # one (minus the first message's own lateness); load can only stretch it.
    times = dict(sent)
    span = times[indices[-1]] - times[indices[0]]
    expected = (indices[-1] - indices[0]) * PERIOD_NS / 1e9 / RATE
    assert expected - 0.05 <= span < expected + 5.0, (span, expected)
    assert clocks and min(clocks) >= T0_NS and max(clocks) == T0_NS + (COUNT - 1) * PERIOD_NS
    assert clocks == sorted(clocks)


FILTERED = r"""
import sys
from restac_ros.nodes.bag_player import main
sys.exit(main(["bag_player", "--ros-args", "-p", "bag_path:=" + sys.argv[1], "-p", "rate:=4.0",
               "-p", "start_delay_s:=0.0", "-p", "publish_clock:=false",
               "-p", "topics:=[/joint_states]", "-p", "wait_for_subscribers:=[/joint_states]"]))
"""


def test_topic_filter_and_no_clock(tmp_path, ros_context):
    bag = tmp_path / "bag"
    write_bag(bag)
    node = rclpy.create_node("bag_filter_listener", context=ros_context)
    joints: list[JointState] = []
    clocks: list[Clock] = []
    prompts: list[String] = []
    node.create_subscription(JointState, "/joint_states", joints.append, qos.SENSOR)
    node.create_subscription(Clock, "/clock", clocks.append, qos.CLOCK)
    node.create_subscription(String, "/restac/prompt", prompts.append, qos.PROMPT)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    player = start_python(FILTERED, str(bag))
    try:
        done = spin_until(executor, lambda: player.poll() is not None, timeout_s=120.0)
        spin_until(executor, lambda: len(joints) >= COUNT, timeout_s=10.0)
    finally:
        out, err = stop_process(player)
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
    assert done and player.returncode == 0, err[-2000:]
    assert len(joints) >= COUNT - 2 and clocks == [] and prompts == []


UNMATCHED = r"""
import sys
from restac_ros.nodes.bag_player import main
sys.exit(main(["bag_player", "--ros-args", "-p", "bag_path:=" + sys.argv[1],
               "-p", "publish_clock:=false", "-p", "wait_for_subscribers:=[%s]",
               "-p", "wait_for_subscribers_timeout_s:=1.0"]))
"""


def test_wait_for_subscribers_fails_closed(tmp_path):
    """Nobody subscribed: an error naming the topic after the timeout, no message played;
    a topic the bag does not have (or /clock when not published): refused by name."""
    bag = tmp_path / "bag"
    write_bag(bag)
    for topic, words in (("/joint_states", ("no subscriber matched", "/joint_states")),
                         ("/clock", ("not played", "/clock"))):
        player = start_python(UNMATCHED % topic, str(bag))
        try:
            player.wait(timeout=120.0)  # exits by itself (bounded by the test's own limit)
        finally:
            out, err = stop_process(player)
        assert player.returncode not in (0, None), err[-2000:]
        assert all(w in err for w in words), err[-2000:]
        assert "bag done" not in err, err[-2000:]
