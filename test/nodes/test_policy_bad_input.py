"""Bad input, one case each: the node stays alive, publishes no chunk from it, and
/diagnostics says why; once the input is good again, chunks flow (node alive)."""

from __future__ import annotations

import pytest

from restac_ros.nodes import conversions
from test.nodes.harness import FAST, PolicyHarness

BAD_WINDOW_S = 3.0
S = 1_000_000_000


def stamped_after(h: PolicyHarness, t_ns: int) -> list[int]:
    """Stamps (observation tick times) of the chunks received that are later than t_ns."""
    stamps = (conversions.stamp_to_ns(c.header.stamp) for c in h.chunks)
    return [s for s in stamps if s > t_ns]


def wrong_encoding(msg):
    msg.encoding = "bgr16"
    return msg


def short_data(msg):
    msg.data = bytes(msg.data)[:-7]
    return msg


def nan_joint(msg):
    positions = list(msg.position)
    positions[2] = float("nan")
    msg.position = positions
    return msg


def inf_joint(msg):
    positions = list(msg.position)
    positions[0] = float("inf")
    msg.position = positions
    return msg


def renamed_joint(msg):
    names = list(msg.name)
    names[3] = "elbow"
    msg.name = names
    return msg


def missing_joint(msg):
    msg.name = list(msg.name)[:-1]
    msg.position = list(msg.position)[:-1]
    return msg


def unstamped(msg):
    msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0
    return msg


CASES = {
    # name: (stream, mutate, extra params, words /diagnostics must contain)
    "wrong_encoding": ("base_0_rgb", wrong_encoding, {}, ("bad_image", "unsupported encoding")),
    "data_size": ("left_wrist_0_rgb", short_data, {}, ("bad_image", "!= step*height")),
    "nan_joint": ("joints", nan_joint, {}, ("nonfinite_joints", "joint3")),
    "inf_joint": ("joints", inf_joint, {}, ("nonfinite_joints", "joint1")),
    "renamed_joint": ("joints", renamed_joint, {}, ("missing_joints", "joint4", "elbow")),
    "missing_joint": ("joints", missing_joint, {}, ("missing_joints", "gripper")),
    "unstamped_reject": (
        "joints",
        unstamped,
        {"unstamped_policy": "reject"},
        ("joints.unstamped", "missing_stream"),
    ),
}


def run_bad_then_good(harness: PolicyHarness, stream: str, mutate, words) -> None:
    h = harness
    assert h.configured, h.status_text()
    if mutate is not None:
        h.streams.mutate[stream] = mutate
    else:
        h.streams.paused.add(stream)
    h.spin_until(lambda: h.diagnostics_mention(*words), timeout_s=BAD_WINDOW_S + 20.0)
    h.spin_for(BAD_WINDOW_S)
    assert h.chunks == [], f"chunk published from bad input:\n{h.status_text()}"
    assert h.diagnostics_mention(*words), h.status_text()
    assert "no chunk" in h.policy_status().message
    # the node is alive: fix the input and chunks come
    h.streams.mutate.pop(stream, None)
    h.streams.paused.discard(stream)
    assert h.spin_until(lambda: len(h.chunks) >= 1, timeout_s=30.0), h.status_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, ros_context, tiny_checkpoint):
    stream, mutate, params, words = CASES[case]
    h = PolicyHarness(ros_context, tiny_checkpoint, **params)
    try:
        run_bad_then_good(h, stream, mutate, words)
    finally:
        h.close()


def test_stale_camera(ros_context, tiny_checkpoint):
    h = PolicyHarness(ros_context, tiny_checkpoint)
    try:
        assert h.spin_until(lambda: len(h.chunks) >= 1, timeout_s=60.0), h.status_text()
        paused_ns = h.streams.get_clock().now().nanoseconds  # images after this are not sent
        h.streams.paused.add("right_wrist_0_rgb")
        assert h.spin_until(lambda: h.diagnostics_mention("stale_stream", "right_wrist_0_rgb"),
                            timeout_s=30.0), h.status_text()
        h.spin_for(BAD_WINDOW_S)
        # Chunks still in flight when the image went stale may come (their observation is
        # older); none may come from a tick at which the newest image was older than
        # camera_max_age_s. Compared on stamps, so a slow inference cannot fail the test.
        last_ok_ns = paused_ns + round(FAST["camera_max_age_s"] * S)
        assert stamped_after(h, last_ok_ns) == [], h.status_text()
        assert h.diagnostics_mention("stale_stream", "right_wrist_0_rgb"), h.status_text()
        h.streams.paused.discard("right_wrist_0_rgb")
        assert h.spin_until(lambda: len(h.chunks) >= 1, timeout_s=30.0), h.status_text()
    finally:
        h.close()


def test_tactile_absent_when_required(ros_context, tiny_checkpoint):
    h = PolicyHarness(ros_context, tiny_checkpoint, tactile_required=True)
    try:
        run_bad_then_good(h, "tactile", None, ("tactile_missing",))
    finally:
        h.close()


def test_tactile_absent_when_optional_masks_it(ros_context, tiny_checkpoint):
    h = PolicyHarness(ros_context, tiny_checkpoint, tactile_required=False)
    try:
        h.streams.paused.add("tactile")
        assert h.spin_until(lambda: h.tactile, timeout_s=60.0), h.status_text()
        assert h.tactile[-1].tactile_valid is False
    finally:
        h.close()


def test_empty_prompt(ros_context, tiny_checkpoint):
    h = PolicyHarness(ros_context, tiny_checkpoint, prompt="")
    try:
        assert h.configured
        h.spin_until(lambda: h.diagnostics_mention("empty_prompt"), timeout_s=20.0)
        h.spin_for(BAD_WINDOW_S)
        assert h.chunks == [], h.status_text()
        assert h.diagnostics_mention("empty_prompt"), h.status_text()
        h.streams.publish_prompt("pick up the cube")
        assert h.spin_until(lambda: len(h.chunks) >= 1, timeout_s=30.0), h.status_text()
    finally:
        h.close()


def test_unstamped_stamped_on_receipt(ros_context, tiny_checkpoint):
    h = PolicyHarness(ros_context, tiny_checkpoint, unstamped_policy="stamp_on_receipt")
    try:
        h.streams.mutate["tactile"] = unstamped
        assert h.spin_until(lambda: len(h.chunks) >= 1, timeout_s=60.0), h.status_text()
        assert h.spin_until(
            lambda: _value(h, "stream.tactile.stamped_on_receipt") not in (None, "0"), 30.0
        ), h.status_text()
    finally:
        h.close()


def _value(h: PolicyHarness, key: str) -> str | None:
    status = h.policy_status()
    if status is None:
        return None
    return next((kv.value for kv in status.values if kv.key == key), None)
