"""Explicit QoS profiles for every topic restac_ros touches (CONTRACT.md section 3)."""

from __future__ import annotations

from rclpy.qos import (
    QoSDurabilityPolicy,
    QoSHistoryPolicy,
    QoSProfile,
    QoSReliabilityPolicy,
    qos_profile_sensor_data,
)

# Cameras, tactile sensor, joint states: best effort, keep last 5 (ROS sensor default).
SENSOR = qos_profile_sensor_data

# Subscribing to sensors: the same best-effort/volatile policy (matches any sensor
# publisher) with a deeper queue, so a short executor stall (GIL, inference worker)
# does not overwrite 500 Hz joint states before their callbacks run (~100 ms at 500 Hz).
SENSOR_INPUT = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=50,
    reliability=qos_profile_sensor_data.reliability,
    durability=qos_profile_sensor_data.durability,
)

# Lossless replay (bag_player `reliable`, policy_node `reliable_inputs`): reliable
# sensors; a reliable subscription matches only reliable publishers, so the default stays
# best effort (real sensor drivers publish best effort).
SENSOR_RELIABLE = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=50,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=qos_profile_sensor_data.durability,
)
# The task prompt: published once, must reach late joiners.
PROMPT = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)

# Policy outputs (chunks, trajectories, tactile diagnostics): reliable, volatile.
OUTPUT = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)

# Executor commands at the control rate: only the newest matters.
COMMAND = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)

# /diagnostics, as diagnostic_updater publishes it.
DIAGNOSTICS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)

# RViz displays (markers, overlay image).
VISUALIZATION = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)

# /clock from the bag player.
CLOCK = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.BEST_EFFORT,
    durability=QoSDurabilityPolicy.VOLATILE,
)
