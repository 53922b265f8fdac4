"""Node-test fixtures: a tiny random-init policy checkpoint, an rclpy context per test."""

from __future__ import annotations

from pathlib import Path

import pytest
import rclpy

from test.nodes.checkpoints import make_tiny_checkpoint
from test.ros_helpers import require_loopback


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("policy") / "ckpt")


@pytest.fixture()
def ros_context():
    require_loopback()
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


@pytest.fixture()
def make_harness(ros_context):
    """chunk_executor test harnesses (test_chunk_executor.ExecutorHarness), closed after."""
    from test.nodes.test_chunk_executor import ExecutorHarness

    made = []

    def make(**params):
        made.append(ExecutorHarness(ros_context, **params))
        return made[-1]

    yield make
    for h in made:
        h.close()
