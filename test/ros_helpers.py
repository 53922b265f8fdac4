"""Helpers for tests that use real rclpy over loopback DDS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

from restac_ros.dds_env import is_loopback_env


def require_loopback() -> None:
    if not is_loopback_env(os.environ):
        raise RuntimeError(
            "ROS tests must run with the loopback DDS environment (test/conftest.py)"
        )


def spin_until(executor, condition: Callable[[], bool], timeout_s: float) -> bool:
    """Spin ``executor`` until ``condition()`` holds or ``timeout_s`` passes (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        executor.spin_once(timeout_sec=0.05)
    return condition()


def start_python(code: str, *args: str) -> subprocess.Popen:
    """Run ``code`` in a child Python with the same (loopback) environment."""
    require_loopback()
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> tuple[str, str]:
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()
