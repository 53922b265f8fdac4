"""restac-record: record the pipeline's topics into an MCAP rosbag2 (no `ros2 bag`).

Subscribes (raw CDR) to `topics` with the types in `types` (the replay launch and
restac-bringup fill both from the nodes' parameters: restac_ros.recording.
pipeline_topics) and writes every message unchanged; the bag's metadata carries
the params YAML and the checkpoint id (restac_ros.recording). A recorded replay
plays back with bag_player and evaluates with restac-eval like any bag.

QoS: reliable, deep queue (lossless from reliable publishers); topics listed in
`best_effort_topics` are subscribed best effort (to hear best-effort sensor
drivers), `transient_local_topics` also get latched messages (the prompt).
"""

from __future__ import annotations

import sys
from pathlib import Path

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSDurabilityPolicy, QoSReliabilityPolicy

from restac_ros.nodes import diagnostics, qos
from restac_ros.nodes.bag_player import message_class
from restac_ros.nodes.params import declare
from restac_ros.nodes.spin import run_nodes
from restac_ros.recording import BagRecording, provenance

NODE_NAME = "restac_record"

PARAMETERS = {
    "output_dir": ("", "rosbag2 directory to create (must not exist)"),
    "topics": (Parameter.Type.STRING_ARRAY, "Topics to record"),
    "types": (Parameter.Type.STRING_ARRAY, "Message type of each topic (pkg/msg/Name)"),
    "best_effort_topics": (
        Parameter.Type.STRING_ARRAY,
        "Topics subscribed best effort (e.g. live sensor drivers; unset = none)",
    ),
    "transient_local_topics": (
        ["/restac/prompt", "/tf_static"],
        "Topics subscribed transient local (latched: the prompt)",
    ),
    "depth": (1000, "Subscription queue depth per topic (lossless through a stall)"),
    "config_file": ("", "Params YAML of the run, stored in the bag metadata"),
    "checkpoint_dir": ("", "Policy checkpoint of the run; its id goes in the bag metadata"),
    "source_bag": ("", "Replay: the played bag (its metadata is copied into the recording)"),
    "diagnostics_topic": ("/diagnostics", "Where the recorder reports its message counts"),
    "diagnostics_period_s": (1.0, "Period of the recorder's /diagnostics status"),
}


class RecorderNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.p = declare(self, PARAMETERS)
        topics, types = self.p["topics"] or [], self.p["types"] or []
        if not self.p["output_dir"]:
            raise ValueError("parameter output_dir is required")
        if not topics or len(topics) != len(types):
            raise ValueError(
                f"topics ({len(topics)}) and types ({len(types)}) must be equally long, not empty"
            )
        if self.p["depth"] < 1:
            raise ValueError(f"depth must be >= 1, got {self.p['depth']}")
        classes = [message_class(t) for t in types]  # fails before the bag is created
        self.recording = BagRecording(
            Path(self.p["output_dir"]).expanduser(),
            provenance(self.p["config_file"], self.p["checkpoint_dir"], self.p["source_bag"]),
        )
        for topic, msgtype, cls in zip(topics, types, classes, strict=True):
            self.recording.add_topic(topic, msgtype)
            self.create_subscription(
                cls, topic, lambda raw, t=topic: self._on_message(t, raw), self._qos(topic),
                raw=True,
            )
        self._diag_pub = self.create_publisher(
            diagnostics.DiagnosticArray, self.p["diagnostics_topic"], qos.DIAGNOSTICS
        )
        self.create_timer(
            self.p["diagnostics_period_s"], self._publish_diagnostics,
            clock=diagnostics.steady_clock(),
        )
        self.get_logger().info(f"recording {len(topics)} topics into {self.recording.path}")

    def _publish_diagnostics(self) -> None:
        counts = dict(self.recording.counts)
        values = {"bag": self.recording.path, "messages": sum(counts.values()), **counts}
        status = diagnostics.status(
            f"{NODE_NAME}: recording", diagnostics.OK, f"{values['messages']} messages", values
        )
        self._diag_pub.publish(diagnostics.array(self.get_clock().now().nanoseconds, [status]))

    def _qos(self, topic: str):
        profile = qos.keep_last(
            self.p["depth"],
            QoSReliabilityPolicy.BEST_EFFORT
            if topic in (self.p["best_effort_topics"] or ())
            else QoSReliabilityPolicy.RELIABLE,
            QoSDurabilityPolicy.TRANSIENT_LOCAL
            if topic in self.p["transient_local_topics"]
            else QoSDurabilityPolicy.VOLATILE,
        )
        return profile

    def _on_message(self, topic: str, raw: bytes) -> None:
        self.recording.write(topic, raw, self.get_clock().now().nanoseconds)

    def close(self) -> None:
        self.recording.close()
        total = sum(self.recording.counts.values())
        self.get_logger().info(f"recorded {total} messages into {self.recording.path}")


def main(args: list[str] | None = None) -> int:
    made: list[RecorderNode] = []

    def make():
        made.append(RecorderNode())
        return made

    def close() -> None:  # after the spin threads stopped: no callback writes any more
        for node in made:
            node.close()

    return run_nodes(make, args=sys.argv if args is None else args, on_stop=close)


if __name__ == "__main__":
    sys.exit(main())
