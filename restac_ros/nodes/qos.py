"""Explicit QoS profiles for every topic restac_ros touches (CONTRACT.md section 3)."""

from __future__ import annotations

from rclpy.qos import (
    QoSDurabilityPolicy,
    QoSHistoryPolicy,
    QoSProfile,
    QoSReliabilityPolicy,
    qos_profile_sensor_data,
)

_RELIABLE = QoSReliabilityPolicy.RELIABLE
_BEST_EFFORT = QoSReliabilityPolicy.BEST_EFFORT
_VOLATILE = QoSDurabilityPolicy.VOLATILE


def keep_last(
    depth: int,
    reliability: QoSReliabilityPolicy,
    durability: QoSDurabilityPolicy = _VOLATILE,
) -> QoSProfile:
    return QoSProfile(
        history=QoSHistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=reliability,
        durability=durability,
    )


# Cameras, tactile sensor, joint states: best effort, keep last 5 (ROS sensor default).
SENSOR = qos_profile_sensor_data

# Subscribing to sensors: the same best-effort/volatile policy (matches any sensor
# publisher) with a deeper queue, so a short executor stall (GIL, inference worker)
# does not overwrite 500 Hz joint states before their callbacks run (~100 ms at 500 Hz).
SENSOR_INPUT = keep_last(50, qos_profile_sensor_data.reliability,
                         qos_profile_sensor_data.durability)

# Lossless replay (bag_player `reliable`, policy_node `reliable_inputs`): reliable
# sensors; a reliable subscription matches only reliable publishers, so the default stays
# best effort (real sensor drivers publish best effort). Reliable KEEP_LAST still loses
# messages when a reader's queue is full of untaken ones (the oldest is overwritten) or
# a writer's of unacknowledged ones: the depth is what makes it lossless, here through
# a 5 s stall of the subscriber's executor at 100 Hz (seen: 0.8 s on a loaded 2-core CI).
SENSOR_RELIABLE = keep_last(500, _RELIABLE, qos_profile_sensor_data.durability)

# The task prompt: published once, must reach late joiners.
PROMPT = keep_last(1, _RELIABLE, QoSDurabilityPolicy.TRANSIENT_LOCAL)

# Policy outputs (chunks, trajectories, tactile diagnostics): reliable, volatile.
OUTPUT = keep_last(10, _RELIABLE)

# Executor commands at the control rate: only the newest matters.
COMMAND = keep_last(1, _RELIABLE)

# /diagnostics, as diagnostic_updater publishes it.
DIAGNOSTICS = keep_last(10, _RELIABLE)

# RViz displays (markers, overlay image).
VISUALIZATION = keep_last(5, _RELIABLE)

# /clock from the bag player.
CLOCK = keep_last(1, _BEST_EFFORT)
