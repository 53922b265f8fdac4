"""action_prev = state(t) - state(t - action_prev_dt_s), raw units, padded; and the
encoder-inputs-only builder (the VQ-VAE trainer's way into the same path)."""

from __future__ import annotations

import numpy as np
import pytest

from restac_ros.core.observation import (
    InvalidActions,
    InvalidObservation,
    ObservationBuilder,
    ReasonCode,
    joint_sample,
)
from test.core.bagtools import CAMERAS, JOINT_STATES, JOINTS, TACTILE, joint_positions
from test.core.test_observation import ACTION_DIM, make_builder, make_sample, make_spec

S = 1_000_000_000
MS = S // 1000
T0 = 50 * S


@pytest.fixture()
def builder(norm_stats_path, spm_model_path) -> ObservationBuilder:
    return make_builder(norm_stats_path, spm_model_path)


def _img() -> np.ndarray:
    return np.full((24, 32, 3), 90, np.uint8)


def replay_100hz(builder: ObservationBuilder, until_s: float, gap: tuple[float, float] = ()):
    """Joints at 100 Hz (joint i = 0.1 * i * t) from T0; images at 30 Hz; returns buffers."""
    buffers = builder.make_buffers()
    for k in range(int(until_s * 100 + 1e-9) + 1):
        t = k / 100
        if gap and gap[0] < t < gap[1]:
            continue
        stamp = T0 + k * 10 * MS
        buffers.push(JOINT_STATES, stamp, joint_sample(JOINTS, joint_positions(t), stamp), stamp)
    for k in range(int(until_s * 30 + 1e-9) + 1):
        stamp = T0 + round(k * S / 30)
        for topic in [*CAMERAS.values(), TACTILE]:
            buffers.push(topic, stamp, _img(), stamp)
    return buffers


def test_100hz_replay_gives_delta_over_one_control_step(builder) -> None:
    """At 100 Hz joints, the previous state is the one 70 ms back (nearest not after 1/15 s)."""
    buffers = replay_100hz(builder, 1.0)
    now = T0 + S
    sample = builder.sample_from_buffers(buffers, now, "pick up the cube")
    assert sample.joints.stamp_ns == T0 + S
    assert sample.prev_joints.stamp_ns == T0 + S - 70 * MS  # 1.0 - 1/15 = 0.9333 -> 0.93
    obs = builder.build(sample)
    want = joint_positions(1.0) - joint_positions(0.93)  # raw units, not normalised
    np.testing.assert_allclose(obs.action_prev[0, :8], want, rtol=1e-6)
    assert np.all(obs.action_prev[0, 8:] == 0) and obs.action_prev.shape == (1, ACTION_DIM)
    # a 10 ms delta (the state received just before) would be 7x smaller
    assert np.all(np.abs(obs.action_prev[0, :8]) > 6 * 0.01 * 0.1 * np.arange(1, 9))


def test_interval_is_configurable(norm_stats_path, spm_model_path) -> None:
    b = make_builder(norm_stats_path, spm_model_path, action_prev_dt_s=0.05)
    sample = b.sample_from_buffers(replay_100hz(b, 1.0), T0 + S, "p")
    assert sample.prev_joints.stamp_ns == T0 + S - 50 * MS  # on the grid: exactly 50 ms back
    want = joint_positions(1.0) - joint_positions(0.95)
    np.testing.assert_allclose(b.build(sample).action_prev[0, :8], want, rtol=1e-6)


def test_too_little_joint_history(builder) -> None:
    buffers = replay_100hz(builder, 0.05)  # 50 ms of joints < 1/15 s
    with pytest.raises(InvalidObservation) as info:
        builder.sample_from_buffers(buffers, T0 + 50 * MS, "p")
    assert info.value.reason is ReasonCode.NO_PREVIOUS_STATE
    assert (
        "0.0667s before the newest" in info.value.message and "spans 0.0500s" in info.value.message
    )


def test_gap_in_joint_stream(builder) -> None:
    """The state 1/15 s back must not be older than that by more than joint_max_age_s."""
    buffers = replay_100hz(builder, 1.0, gap=(0.7, 0.995))  # last state before: 0.70
    with pytest.raises(InvalidObservation) as info:
        builder.sample_from_buffers(buffers, T0 + S, "p")
    assert info.value.reason is ReasonCode.NO_PREVIOUS_STATE and "gap" in info.value.message
    ok = replay_100hz(builder, 1.0, gap=(0.86, 0.995))  # 0.86 is 73 ms before 0.9333: fine
    assert builder.sample_from_buffers(ok, T0 + S, "p").prev_joints.stamp_ns == T0 + 860 * MS


def test_buffer_keeps_enough_history_at_high_rates(builder) -> None:
    """1 kHz joints: the time-bounded ring still reaches 1/15 s back."""
    buffers = builder.make_buffers()
    for k in range(1001):
        stamp = T0 + k * MS
        buffers.push(
            JOINT_STATES, stamp, joint_sample(JOINTS, joint_positions(k / 1000), stamp), stamp
        )
    assert len(buffers.history(JOINT_STATES)) == 68  # 1.0 back to 0.933 s inclusive
    for topic in [*CAMERAS.values(), TACTILE]:
        buffers.push(topic, T0 + S, _img(), T0 + S)
    sample = builder.sample_from_buffers(buffers, T0 + S, "p")
    assert sample.prev_joints.stamp_ns == T0 + 933 * MS


def test_encoder_inputs_only_builder(builder) -> None:
    """No norm stats, tokenizer or prompt; identical images, tactile and action_prev."""
    enc = ObservationBuilder.encoder_inputs_only(make_spec())
    full = builder.build(make_sample())
    obs = enc.build(make_sample(prompt=None))
    for slot in CAMERAS:
        np.testing.assert_array_equal(obs.images[slot], full.images[slot])
        assert obs.image_masks[slot].tolist() == [True]
    np.testing.assert_array_equal(obs.tactile_image, full.tactile_image)
    np.testing.assert_array_equal(obs.action_prev, full.action_prev)
    assert np.all(obs.state == 0) and obs.state.shape == full.state.shape
    assert obs.tokenized_prompt.shape == (1, 0) and obs.tokenized_prompt_mask.shape == (1, 0)
    buffers = replay_100hz(enc, 1.0)
    sample = enc.sample_from_buffers(buffers, T0 + S, None)
    np.testing.assert_allclose(
        enc.build(sample).action_prev[0, :8], joint_positions(1.0) - joint_positions(0.93)
    )
    with pytest.raises(InvalidActions, match="no action stats"):
        enc.postprocess_actions(np.zeros((10, ACTION_DIM), np.float32))
    with pytest.raises(InvalidObservation) as info:  # still validated like a full builder
        enc.build(make_sample(joints=joint_sample(JOINTS[:7], np.zeros(7))))
    assert info.value.reason is ReasonCode.MISSING_JOINTS
