"""Test-wide set-up: DDS confined to loopback, one fresh ROS domain per run.

This runs before any test module imports rclpy, so every participant created in
this process or a child process inherits the loopback profile.
"""

from __future__ import annotations

import os

from restac_ros.dds_env import apply_loopback_env

apply_loopback_env(os.environ)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
