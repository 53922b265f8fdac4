"""Delta actions (openpi): the model predicts masked dims relative to the raw state;
ObservationBuilder.action_targets / postprocess_actions are the one conversion."""

from __future__ import annotations

import numpy as np
import pytest

from restac_ros.core.observation import (
    InvalidActions,
    ObservationBuilder,
    default_delta_action_mask,
    delta_action_mask_from_meta,
)
from restac_ros.core.observation_spec import delta_action_mask
from restac_ros.model import norm_stats as norm
from restac_ros.model.tokenizer import PromptTokenizer
from test.core.bagtools import JOINTS
from test.core.test_observation import ACTION_DIM, STATE, make_sample, make_spec

MASK = (True,) * 7 + (False,)


def _builder(norm_stats_path, spm_model_path, mask=MASK) -> ObservationBuilder:
    return ObservationBuilder(make_spec(delta_action_mask=mask),
                              norm.load_norm_stats(norm_stats_path),
                              PromptTokenizer(spm_model_path, 16))


def test_default_mask_and_meta() -> None:
    assert default_delta_action_mask("joint_position", JOINTS) == MASK
    assert not any(default_delta_action_mask("ee_pose_rpy", ["x", "y"]))
    assert delta_action_mask_from_meta({}, 8) == (False,) * 8  # old checkpoints: absolute
    assert delta_action_mask_from_meta({"delta_action_mask": list(MASK)}, 8) == MASK
    with pytest.raises(ValueError, match="8 entries"):
        delta_action_mask_from_meta({"delta_action_mask": list(MASK)}, 7)
    with pytest.raises(ValueError, match="delta_action_mask has 3 entries"):
        make_spec(delta_action_mask=(True, True, False))


def test_delta_action_modes() -> None:
    assert delta_action_mask("joint_position", JOINTS) == MASK
    assert delta_action_mask("joint_position", JOINTS, "all") == (True,) * 8
    assert delta_action_mask("ee_pose_rpy", ["x", "y"], "none") == (False, False)
    with pytest.raises(ValueError, match="joint_position"):
        delta_action_mask("ee_pose_rpy", ["x", "y"], "all")
    with pytest.raises(ValueError, match="expected one of"):
        delta_action_mask("joint_position", JOINTS, "gripper")


def test_per_step_action_stats_must_match_the_horizon(norm_stats_path, spm_model_path) -> None:
    stats = norm.load_norm_stats(norm_stats_path)
    spec = make_spec(delta_action_mask=MASK)
    h, d = spec.action_space.horizon, len(stats["actions"].mean)
    rows = lambda n: norm.NormStats(np.zeros((n, d), np.float32), np.ones((n, d), np.float32))
    tok = PromptTokenizer(spm_model_path, 16)
    b = ObservationBuilder(spec, {**stats, "actions": rows(h)}, tok)
    chunk = np.zeros((h, ACTION_DIM), np.float32)
    assert b.postprocess_actions(chunk, STATE).shape == (h, 8)
    with pytest.raises(ValueError, match=f"policy's horizon is {h}"):
        ObservationBuilder(spec, {**stats, "actions": rows(h + 1)}, tok)


def test_targets_and_postprocess_are_inverse(norm_stats_path, spm_model_path) -> None:
    b = _builder(norm_stats_path, spm_model_path)
    rng = np.random.default_rng(0)
    state = rng.normal(size=8)
    actions = state + 0.05 * rng.normal(size=(10, 8))
    model = b.action_targets(actions, state)
    assert model.shape == (10, ACTION_DIM) and model.dtype == np.float32
    assert np.all(model[:, 8:] == 0)
    rel = norm.unnormalize(model[:, :8].astype(np.float64), b.stats["actions"],
                           use_quantiles=False)
    np.testing.assert_allclose(rel[:, :7], actions[:, :7] - state[:7], atol=1e-5)
    np.testing.assert_allclose(rel[:, 7], actions[:, 7], atol=1e-5)  # gripper absolute
    np.testing.assert_allclose(b.postprocess_actions(model, state), actions, atol=1e-5)
    # the same normalised output means another action from another state (joints only)
    moved = b.postprocess_actions(model, state + 1.0)
    np.testing.assert_allclose(moved[:, :7], actions[:, :7] + 1.0, atol=1e-5)
    np.testing.assert_allclose(moved[:, 7], actions[:, 7], atol=1e-5)


def test_absolute_mask_ignores_state(norm_stats_path, spm_model_path) -> None:
    b = _builder(norm_stats_path, spm_model_path, mask=())
    assert not b.delta_mask.any()
    model = b.action_targets(np.ones((10, 8)), STATE)
    np.testing.assert_array_equal(b.postprocess_actions(model),
                                  b.postprocess_actions(model, STATE + 5.0))


def test_postprocess_defaults_to_the_latest_build(norm_stats_path, spm_model_path) -> None:
    b = _builder(norm_stats_path, spm_model_path)
    model = np.zeros((10, ACTION_DIM), np.float32)
    with pytest.raises(InvalidActions, match="raw state"):
        b.postprocess_actions(model)  # nothing built yet
    sample = make_sample()
    b.build(sample)
    state = b.state_vector(sample.joints)
    np.testing.assert_allclose(state, STATE)
    np.testing.assert_array_equal(b.postprocess_actions(model),
                                  b.postprocess_actions(model, state))
    with pytest.raises(InvalidActions, match="raw state has 3 dims"):
        b.postprocess_actions(model, state[:3])
