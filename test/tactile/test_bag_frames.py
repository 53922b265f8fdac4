"""VQ-VAE frames come from the core's observation path: same tensors the policy's tactile
encoder gets at inference, raw action_prev over one control step, contact labels."""

from __future__ import annotations

import io

import numpy as np
import pytest
import sentencepiece as spm

from restac_ros.core.action_space import joint_position
from restac_ros.core.bag_dataset import BagDataset, BagTopicMissing
from restac_ros.core.encoder_inputs import encoder_spec
from restac_ros.core.observation import DEFAULT_CAMERA_STREAMS, ObservationBuilder, ObservationSpec
from restac_ros.model import norm_stats as norm
from restac_ros.model.observation import IMAGE_KEYS
from restac_ros.model.tokenizer import PromptTokenizer
from restac_ros.tactile.bag_frames import BagFramesError, concat_frames, read_bag_frames
from restac_ros.tactile.jax_port import VIEW_ORDER

from .synth_bag import NS, phase, write_episode

JOINTS = tuple(f"joint{i}" for i in range(1, 8)) + ("gripper",)


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    return write_episode(tmp_path_factory.mktemp("bag") / "ep", duration=2.0, seed=3)


@pytest.fixture(scope="module")
def frames(episode):
    return read_bag_frames(episode, rate_hz=15.0)


def test_frames_shapes_stamps_labels_and_action_prev(frames):
    n = len(frames)
    # 15 Hz ticks 0 .. 29/15 s; tick 0 has no camera yet, tick 1 no joint state 1/15 s back
    assert n == 28
    np.testing.assert_array_equal(frames.stamps_ns, [round(k * NS / 15) for k in range(2, 30)])
    assert frames.tactile.shape == (n, 128, 160, 3) and frames.tactile.dtype == np.float32
    assert frames.views.shape == (n, 3, 224, 224, 3) and frames.views.dtype == np.float32
    for x in (frames.tactile, frames.views):
        assert x.min() >= -1.0 and x.max() <= 1.0
    assert frames.action_prev.shape == (n, 7) and frames.action_prev.dtype == np.float32
    # contact from /contact/ground_truth (no metadata in this bag): newest at or before the tick
    tac_t = [np.floor((t - 1000) * 30 / NS) / 30 for t in frames.stamps_ns]
    np.testing.assert_array_equal(frames.contact, [phase(t, 2.0)[1] for t in tac_t])
    # joint1 = arm progress; 100 Hz joints: newest at the tick minus the one 1/15 s before it
    t_new = np.floor(frames.stamps_ns / (NS // 100)) / 100
    t_old = np.floor((t_new - 1 / 15) * 100 + 1e-9) / 100
    want = [phase(a, 2.0)[0] - phase(b, 2.0)[0] for a, b in zip(t_new, t_old, strict=True)]
    np.testing.assert_allclose(frames.action_prev[:, 0], want, atol=1e-6)  # raw units
    np.testing.assert_allclose(frames.action_prev[:, 1], 0.5 * frames.action_prev[:, 0], atol=1e-6)
    assert np.abs(frames.action_prev[:, 0]).max() > 0.05  # moving: ~1/15 s of a 2/3 s sweep


def _policy_builder(tmp_path) -> ObservationBuilder:
    """What policy_node / restac-eval build from a checkpoint: stats, tokenizer, 8 joints."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["pick up the cube"] * 20),
                                   model_writer=buf, vocab_size=14, model_type="unigram",
                                   bos_id=1, eos_id=2, unk_id=3, pad_id=0, minloglevel=2)
    (tmp_path / "tok.model").write_bytes(buf.getvalue())
    stats = {k: norm.NormStats(np.full(8, 0.3, np.float32), np.full(8, 2.0, np.float32))
             for k in ("state", "actions")}
    spec = ObservationSpec(camera_streams=DEFAULT_CAMERA_STREAMS, joint_names=JOINTS,
                           action_space=joint_position(JOINTS, horizon=4), action_dim=12,
                           default_prompt="pick up the cube")
    return ObservationBuilder(spec, stats, PromptTokenizer(tmp_path / "tok.model", 8))


def test_frames_equal_the_policy_inference_inputs(episode, frames, tmp_path):
    """Training frames == what the policy feeds its tactile encoder for the same ticks."""
    with BagDataset(episode, _policy_builder(tmp_path), 15.0, teacher_topic=None) as ds:
        obs = {s.stamp_ns: s.observation for s in ds.valid_steps()}
    assert VIEW_ORDER == IMAGE_KEYS
    for i, t in enumerate(frames.stamps_ns):
        o = obs[int(t)]
        np.testing.assert_array_equal(frames.tactile[i], o.tactile_image[0])
        np.testing.assert_array_equal(frames.views[i],
                                      np.stack([o.images[k][0] for k in IMAGE_KEYS]))
        np.testing.assert_array_equal(frames.action_prev[i], o.action_prev[0, :7])


def test_concat_and_errors(episode, frames):
    both = concat_frames([frames, frames])
    assert len(both) == 2 * len(frames) and both.contact.shape == (2 * len(frames),)
    with pytest.raises(BagTopicMissing, match="/tactile/other"):
        read_bag_frames(episode, spec=encoder_spec(tactile_stream="/tactile/other"))
    with pytest.raises(BagFramesError, match="no tick"):  # 2 s bag, 5 s of history needed
        read_bag_frames(episode, spec=encoder_spec(action_prev_dt_s=5.0, joint_max_age_s=10.0))
