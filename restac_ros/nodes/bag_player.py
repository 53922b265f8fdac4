"""bag_player: publish a rosbag2's topics with recorded timing through rclpy.

Messages go out as the raw CDR bytes stored in the bag (`publisher.publish(bytes)`),
so nothing is deserialised; message classes come from the type names by importlib.
Optional /clock (rosgraph_msgs/Clock) carries bag time for use_sim_time nodes.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosbags.rosbag2 import Reader
from rosgraph_msgs.msg import Clock

from restac_ros.nodes import conversions, qos
from restac_ros.nodes.lifecycle_wait import wait_until_active
from restac_ros.nodes.params import declare
from restac_ros.nodes.spin import run_nodes

NODE_NAME = "bag_player"
MATCH_POLL_S = 0.05
PROMPT_TYPES = ("std_msgs/msg/String",)

PARAMETERS = {
    "bag_path": ("", "rosbag2 directory (sqlite3 or MCAP) to play"),
    "rate": (1.0, "Playback speed factor (2.0 = twice as fast)"),
    "loop": (False, "Start again from the beginning when the bag ends"),
    "publish_clock": (True, "Publish bag time on /clock (for use_sim_time)"),
    "clock_topic": ("/clock", "Topic of the rosgraph_msgs/Clock messages"),
    "topics": (Parameter.Type.STRING_ARRAY, "Topics to play (unset = all)"),
    "reliable": (
        False,
        "Publish sensor topics reliable (lossless replay, e.g. for restac-eval parity; "
        "subscribers must be reliable too: policy_node reliable_inputs)",
    ),
    "start_delay_s": (1.0, "Wait before the first message (lets subscribers match)"),
    "wait_for_active": (
        "",
        "Lifecycle node that must be active before playing ('' = none; replay: policy_node)",
    ),
    "wait_for_active_timeout_s": (600.0, "Give up (error) if it is not active by then"),
    "wait_for_subscribers": (
        Parameter.Type.STRING_ARRAY,
        "Topics (the clock topic too) whose publishers must each have a matched subscription "
        "before the first message (unset = none): no message is lost to discovery",
    ),
    "wait_for_subscribers_timeout_s": (60.0, "Give up (error) if they are not matched by then"),
    "ack_timeout_s": (
        5.0,
        "After the last message, wait up to this long until reliable subscribers have "
        "acknowledged everything (0 = do not wait)",
    ),
    "prompt_topics": (
        ["/restac/prompt"],
        "Topics published reliable + transient local (latched prompts); others as sensor data",
    ),
}


class SubscribersMissingError(RuntimeError):
    pass


def message_class(type_name: str) -> type:
    """'sensor_msgs/msg/Image' -> sensor_msgs.msg.Image (raises ImportError/AttributeError)."""
    parts = type_name.split("/")
    if len(parts) != 3:
        raise ValueError(f"message type {type_name!r} is not of the form pkg/msg/Name")
    package, kind, name = parts
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class BagPlayerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.p = declare(self, PARAMETERS)
        if not self.p["bag_path"]:
            raise ValueError("parameter bag_path is required")
        if not self.p["rate"] > 0:
            raise ValueError(f"rate must be > 0, got {self.p['rate']}")
        self.bag_path = Path(self.p["bag_path"])
        self.finished = threading.Event()
        self.stop = threading.Event()
        self.published = 0
        self.published_by_topic: dict[str, int] = {}
        self._clock_pub = (
            self.create_publisher(Clock, self.p["clock_topic"], qos.CLOCK)
            if self.p["publish_clock"]
            else None
        )
        self._topic_pubs = {}

    def _publisher(self, topic: str, msgtype: str):
        if topic not in self._topic_pubs:
            sensor = qos.SENSOR_RELIABLE if self.p["reliable"] else qos.SENSOR
            profile = qos.PROMPT if topic in self.p["prompt_topics"] else sensor
            if msgtype not in PROMPT_TYPES and profile is qos.PROMPT:
                profile = qos.OUTPUT
            self._topic_pubs[topic] = self.create_publisher(message_class(msgtype), topic, profile)
        return self._topic_pubs[topic]

    def play(self) -> None:
        """Play until the bag ends (or forever with loop) or `stop` is set."""
        try:
            with Reader(self.bag_path) as reader:
                wanted = self.p["topics"]
                connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
                if not connections:
                    raise ValueError(f"{self.bag_path}: none of the topics {wanted} in the bag")
                for c in connections:
                    self._publisher(c.topic, c.msgtype)
                self.get_logger().info(
                    f"playing {self.bag_path} ({len(connections)} topics, rate {self.p['rate']})"
                )
                target = self.p["wait_for_active"]
                limit = self.p["wait_for_active_timeout_s"]
                if target and not wait_until_active(self, target, self.stop, limit):
                    return
                if not self._wait_for_subscribers():
                    return
                if self.stop.wait(self.p["start_delay_s"]):
                    return
                while not self.stop.is_set():
                    self._play_once(reader, connections)
                    if not self.p["loop"]:
                        break
                self._wait_for_acks()
        finally:
            self.finished.set()

    def _publishers_by_topic(self) -> dict:
        pubs = dict(self._topic_pubs)
        if self._clock_pub is not None:
            pubs[self.p["clock_topic"]] = self._clock_pub
        return pubs

    def _wait_for_subscribers(self) -> bool:
        """True once every topic of wait_for_subscribers has a matched subscription;
        False if stopped first; SubscribersMissingError after the timeout."""
        wanted = self.p["wait_for_subscribers"] or []
        pubs = self._publishers_by_topic()
        unknown = sorted(set(wanted) - set(pubs))
        if unknown:
            raise ValueError(f"wait_for_subscribers: {unknown} are not played "
                             f"(played: {sorted(pubs)})")
        deadline = time.monotonic() + self.p["wait_for_subscribers_timeout_s"]
        while True:
            missing = [t for t in wanted if pubs[t].get_subscription_count() == 0]
            if not missing:
                return True
            if time.monotonic() >= deadline:
                raise SubscribersMissingError(
                    f"no subscriber matched {missing} within "
                    f"{self.p['wait_for_subscribers_timeout_s']:.0f} s")
            if self.stop.wait(MATCH_POLL_S):
                return False

    def _wait_for_acks(self) -> None:
        """Reliable publishers keep unacknowledged messages only while they exist: exiting
        right after the last message could lose the end of the bag."""
        timeout_s = self.p["ack_timeout_s"]
        if timeout_s <= 0 or self.stop.is_set():
            return
        deadline = time.monotonic() + timeout_s
        for topic, pub in self._publishers_by_topic().items():
            left = max(0.0, deadline - time.monotonic())
            if not pub.wait_for_all_acked(Duration(nanoseconds=round(left * 1e9))):
                self.get_logger().warning(
                    f"{topic}: not every subscriber acknowledged the last messages within "
                    f"{timeout_s:.1f} s")

    def _play_once(self, reader: Reader, connections) -> None:
        start_wall = time.monotonic()
        first_ns = None
        for conn, bag_ns, raw in reader.messages(connections=connections):
            if first_ns is None:
                first_ns = bag_ns
            due = start_wall + (bag_ns - first_ns) / 1e9 / self.p["rate"]
            delay = due - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                return
            if self._clock_pub is not None:
                self._clock_pub.publish(Clock(clock=conversions.ns_to_stamp(bag_ns)))
            self._topic_pubs[conn.topic].publish(raw)
            self.published += 1
            self.published_by_topic[conn.topic] = self.published_by_topic.get(conn.topic, 0) + 1
        self.get_logger().info(f"bag done: {self.published} messages published")


def main(args: list[str] | None = None) -> int:
    holder: dict[str, object] = {}
    errors: list[BaseException] = []

    def make():
        holder["node"] = BagPlayerNode()
        return [holder["node"]]

    def start(nodes) -> None:
        def run() -> None:
            try:
                nodes[0].play()
            except BaseException as exc:
                errors.append(exc)
                raise

        holder["thread"] = threading.Thread(target=run, name="bag-player", daemon=True)
        holder["thread"].start()

    def stop() -> None:
        if "node" in holder:
            holder["node"].stop.set()
        if "thread" in holder:
            holder["thread"].join(timeout=5.0)

    rc = run_nodes(
        make,
        args=sys.argv if args is None else args,
        after_start=start,
        done=lambda: holder["node"].finished.is_set(),
        on_stop=stop,
    )
    if errors:
        raise RuntimeError("bag_player failed") from errors[0]
    return rc


if __name__ == "__main__":
    sys.exit(main())
