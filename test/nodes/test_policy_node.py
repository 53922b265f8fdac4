"""policy_node over real DDS: synthetic streams in, chunks out."""

from __future__ import annotations

import numpy as np
import pytest

from test.nodes.checkpoints import HORIZON, JOINTS
from test.nodes.harness import PolicyHarness


@pytest.fixture()
def harness(ros_context, tiny_checkpoint):
    h = PolicyHarness(ros_context, tiny_checkpoint)
    try:
        yield h
    finally:
        h.close()


def test_streams_in_chunks_out(harness):
    h = harness
    assert h.configured, h.status_text()
    assert h.spin_until(lambda: len(h.chunks) >= 3, timeout_s=60.0), h.status_text()
    ids = [c.chunk_id for c in h.chunks]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] == 0
    chunk = h.chunks[-1]
    assert list(chunk.names) == JOINTS
    assert (chunk.horizon, chunk.action_dim) == (HORIZON, len(JOINTS))
    actions = np.asarray(chunk.actions).reshape(chunk.horizon, chunk.action_dim)
    assert np.all(np.isfinite(actions))
    assert chunk.dt == pytest.approx(1.0 / 15.0)
    assert chunk.inference_ms > 0
    # stamp = observation time: not in the future, recent
    now_ns = h.streams.get_clock().now().nanoseconds
    stamp_ns = chunk.header.stamp.sec * 10**9 + chunk.header.stamp.nanosec
    assert 0 <= now_ns - stamp_ns < 30 * 10**9
    stamps = [c.header.stamp.sec * 10**9 + c.header.stamp.nanosec for c in h.chunks]
    assert stamps == sorted(stamps)
    assert h.spin_until(lambda: h.trajectories and h.tactile, timeout_s=30.0)
    traj = h.trajectories[-1]
    assert list(traj.joint_names) == JOINTS and len(traj.points) == HORIZON
    diag = h.tactile[-1]
    assert diag.mode == "placeholder" and diag.tactile_valid
    assert diag.sigma == pytest.approx(np.exp(diag.logvar / 2), rel=1e-5)
    assert h.spin_until(lambda: h.diagnostics_mention("publishing chunks"), timeout_s=30.0)

    def prepared() -> dict[str, str]:
        status = h.policy_status()
        return {kv.key: kv.value for kv in status.values} if status else {}

    # images were converted on arrival by the helper thread and the ticks found them ready
    assert h.spin_until(lambda: int(prepared().get("tick_images_ready", 0)) > 0, 30.0), \
        h.status_text()
    values = prepared()
    assert values["images_prepared_on_arrival"] == "True"
    assert int(values["images_prepared"]) >= int(values["tick_images_ready"]) // 4


def test_ee_action_space_publishes_path(ros_context, tiny_checkpoint):
    from nav_msgs.msg import Path

    from restac_ros.core.action_space import EE_POSE_RPY_NAMES
    from restac_ros.nodes import qos

    h = PolicyHarness(ros_context, tiny_checkpoint, action_space="ee_pose_rpy")
    paths: list[Path] = []
    h.listener.create_subscription(Path, "/restac/ee_path", paths.append, qos.OUTPUT)
    try:
        assert h.spin_until(lambda: h.chunks and paths, timeout_s=60.0), h.status_text()
        assert tuple(h.chunks[-1].names) == EE_POSE_RPY_NAMES
        assert h.chunks[-1].header.frame_id == "base_link"
        assert len(paths[-1].poses) == HORIZON and paths[-1].header.frame_id == "base_link"
        assert h.trajectories == []
    finally:
        h.close()


def test_configure_failure_is_reported_and_node_stays_up(ros_context, tmp_path):
    h = PolicyHarness(ros_context, tmp_path / "no_such_checkpoint")
    try:
        assert not h.configured
        assert h.spin_until(lambda: h.diagnostics_mention("configure failed"), timeout_s=30.0)
        assert h.policy_status().level == b"\x02"  # ERROR
        assert h.node.lifecycle_state == "unconfigured"
    finally:
        h.close()
