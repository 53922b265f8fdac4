"""Deterministic synthetic ResTac episode as a rosbag2 (`restac-make-sample-bag`).

Modules: `episode` (seeded world, contact model, touch-driven teacher),
`kinematics` (the 7-joint arm), `scene` (camera views, OpenCV), `tactile`
(GelSight-like images), `writer` (rosbags writing), `inspect` (reading the
metadata back), `cli` (the command). ROS-free: numpy, cv2, rosbags only.
"""

from .inspect import read_contact_intervals, read_custom_data
from .writer import EPOCH_NS, TOPICS, BagSummary, write_sample_bag

__all__ = [
    "EPOCH_NS",
    "TOPICS",
    "BagSummary",
    "read_contact_intervals",
    "read_custom_data",
    "write_sample_bag",
]
