"""Baseline for bench/ros_overhead.py: the DDS floor without a policy.

A plain rclpy process that subscribes to the same sensor topics with the same QoS as
policy_node and, at most `rate` times a second, answers a joint message with an
empty ActionChunk stamped like that joint message (inference_ms 0). The benchmark
measures it exactly like policy_node: what remains is two DDS hops and two
executors. On SIGTERM it prints the per-topic receive counts as one JSON line.

    python bench/echo_node.py [--rate 5]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restac_ros.dds_env import apply_loopback_env  # noqa: E402

TOPICS = ("/camera/base/image_raw", "/camera/left_wrist/image_raw",
          "/camera/right_wrist/image_raw", "/tactile/image_raw", "/joint_states")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=5.0)
    args = ap.parse_args(argv)
    apply_loopback_env()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from restac_ros.msg import ActionChunk
    from sensor_msgs.msg import Image, JointState

    from restac_ros.nodes import qos
    from restac_ros.nodes.spin import tune_process

    tune_process()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    rclpy.init()
    node = rclpy.create_node("ros_overhead_echo")
    counts = dict.fromkeys(TOPICS, 0)
    pub = node.create_publisher(ActionChunk, "/restac/action_chunk", qos.OUTPUT)
    last = [0.0]

    def on_joints(msg) -> None:
        counts["/joint_states"] += 1
        now = time.monotonic()
        if now - last[0] >= 1.0 / args.rate:
            last[0] = now
            pub.publish(ActionChunk(header=msg.header))

    def count(topic):
        return lambda _msg: counts.__setitem__(topic, counts[topic] + 1)

    for topic in TOPICS[:-1]:
        node.create_subscription(Image, topic, count(topic), qos.SENSOR_INPUT)
    node.create_subscription(JointState, TOPICS[-1], on_joints, qos.SENSOR_INPUT)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop:
            executor.spin_once(timeout_sec=0.05)
    finally:
        print(json.dumps(counts), flush=True)
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
