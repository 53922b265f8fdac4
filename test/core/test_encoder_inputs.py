"""vqvae_inputs_from_bag: the VQ-VAE's data through BagDataset + ObservationBuilder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from restac_ros.core.bag_dataset import BagDataset, BagError, BagTopicMissing
from restac_ros.core.encoder_inputs import encoder_spec, vqvae_inputs_from_bag
from restac_ros.core.observation import ObservationBuilder
from restac_ros.model import norm_stats as norm
from restac_ros.model.tokenizer import PromptTokenizer
from test.core.bagtools import START_NS, TACTILE, BagPlan, joint_positions, write_bag
from test.core.test_observation import make_spec

S = 1_000_000_000


def test_steps_are_the_policy_path_observations(
    tmp_path: Path, norm_stats_path, spm_model_path
) -> None:
    bag = write_bag(tmp_path / "bag", BagPlan(duration_s=1.0))
    steps = list(vqvae_inputs_from_bag(bag, rate_hz=15.0))
    # ticks at 0 and 1/15 s lack 1/15 s of joint history (100 Hz: 0.06 is the newest at 1/15)
    assert [s.index for s in steps] == list(range(2, 16))
    assert [s.stamp_ns for s in steps] == [START_NS + round(i * S / 15) for i in range(2, 16)]
    for st in steps:
        obs = st.observation
        assert obs.tactile_image.shape == (1, 128, 160, 3) and obs.tactile_mask.tolist() == [True]
        assert obs.action_prev.shape == (1, 7)  # encoder_spec: the 7 arm joints
        latest = np.floor((st.stamp_ns - START_NS) / 1e7 + 1e-9) / 100  # 100 Hz joints
        prev = np.floor((latest - 1 / 15) * 100 + 1e-9) / 100
        want = (joint_positions(latest) - joint_positions(prev))[:7]
        np.testing.assert_allclose(obs.action_prev[0], want, rtol=1e-6, atol=1e-12)
        assert 0.065 <= latest - prev <= 0.075
        # contact from the metadata intervals: closed [start, start + 0.5 s]
        assert st.contact == (st.stamp_ns <= START_NS + S // 2)

    # the same ticks through a full policy builder give the same encoder inputs
    spec = make_spec()  # 8 joints, action_dim 12, tactile optional
    full = ObservationBuilder(
        spec, norm.load_norm_stats(norm_stats_path), PromptTokenizer(spm_model_path, 16)
    )
    with BagDataset(bag, full, rate_hz=15.0) as ds:
        ref = {s.index: s.observation for s in ds.valid_steps()}
    enc = {s.index: s for s in vqvae_inputs_from_bag(bag, 15.0, spec)}
    assert set(enc) == set(ref)
    for i, st in enc.items():
        np.testing.assert_array_equal(st.observation.tactile_image, ref[i].tactile_image)
        np.testing.assert_array_equal(st.observation.action_prev, ref[i].action_prev)
        for slot, img in ref[i].images.items():
            np.testing.assert_array_equal(st.observation.images[slot], img)


def test_tactile_is_required_and_errors_name_the_bag(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", BagPlan(omit=(TACTILE,)))
    with pytest.raises(BagTopicMissing, match=TACTILE):
        vqvae_inputs_from_bag(bag)
    with pytest.raises(BagError, match="bag not found"):
        vqvae_inputs_from_bag(tmp_path / "nope")
    with pytest.raises(ValueError, match="tactile_stream"):
        vqvae_inputs_from_bag(bag, spec=encoder_spec(tactile_stream=None, tactile_required=False))


def test_spec_overrides_and_interval(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", BagPlan(duration_s=1.0))
    spec = encoder_spec(action_prev_dt_s=0.2)
    steps = list(vqvae_inputs_from_bag(bag, 10.0, spec))
    assert steps[0].index == 2  # 0.2 s of joint history needed
    np.testing.assert_allclose(
        steps[0].observation.action_prev[0], (joint_positions(0.2) - joint_positions(0.0))[:7]
    )
