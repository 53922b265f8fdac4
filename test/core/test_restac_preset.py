"""pipeline "restac" (core/restac_preset.py) against the ResTacVLA fork's own transforms.

Reference numbers: test/core/data/restac_fork_pipeline.npz, written by
scripts/gen_restac_preset_fixture.py running the fork's ResTacInputs, DeltaActions,
Normalize, ResTacNormalizeActionPrev, ResizeImages, TokenizePrompt, PadStatesAndActions,
Observation.from_dict and the output transforms (Awilekong/openpi commit
b181a9b61c608a81d5395f6dfbae05de938afcce) on a fixed raw observation.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from restac_ros.core import restac_preset
from restac_ros.core.action_space import EE_POSE_RPY_NAMES, ee_pose_rpy
from restac_ros.core.observation import (
    ObservationBuilder,
    ObservationSpec,
    RawSample,
    joint_sample,
)
from restac_ros.model import norm_stats as norm
from restac_ros.model.tokenizer import PromptTokenizer

FIXTURE = Path(__file__).parent / "data" / "restac_fork_pipeline.npz"
TOL = 1e-6
TOPICS = {"base_0_rgb": "/camera/base/image_raw",
          "left_wrist_0_rgb": "/camera/left_wrist/image_raw",
          "right_wrist_0_rgb": "/camera/right_wrist/image_raw"}


@pytest.fixture(scope="module")
def fork(tmp_path_factory):
    data = dict(np.load(FIXTURE))
    d = tmp_path_factory.mktemp("fork")
    (d / "norm_stats.json").write_bytes(data["norm_stats_json"].tobytes())
    (d / "tokenizer.model").write_bytes(data["tokenizer_model"].tobytes())
    meta = json.loads(data["meta_json"].tobytes())
    stats = norm.load_norm_stats(d / "norm_stats.json")
    tokenizer = PromptTokenizer(d / "tokenizer.model", meta["max_token_len"])
    return data, meta, stats, tokenizer


def _spec(pi05: bool, pipeline: str = "restac") -> ObservationSpec:
    return ObservationSpec(
        camera_streams=TOPICS, joint_names=EE_POSE_RPY_NAMES, action_space=ee_pose_rpy(),
        action_dim=32, joint_stream="/restac/ee_state", tactile_stream="/tactile/image_raw",
        tactile_required=True, **restac_preset.pipeline_flags(pipeline, pi05),
        delta_action_mask=restac_preset.resolve_delta_mask(pipeline, 7))


def _sample(data: dict, meta: dict) -> RawSample:
    images = {slot: data[f"raw/{cam}"] for slot, cam in restac_preset.FORK_CAMERAS.items()}
    return RawSample(
        stamp_ns=1, images=images,
        joints=joint_sample(EE_POSE_RPY_NAMES, data["raw/state"].astype(np.float64)),
        prev_joints=joint_sample(EE_POSE_RPY_NAMES, data["raw/state_prev"].astype(np.float64)),
        prompt=meta["prompt"], tactile=data[f"raw/{restac_preset.FORK_TACTILE}"])


def _model_range(u8: np.ndarray) -> np.ndarray:
    return u8.astype(np.float32) / 255.0 * 2.0 - 1.0


@pytest.mark.parametrize("backbone", ["pi05", "pi0"])
def test_preset_gives_the_forks_model_inputs(fork, backbone):
    data, meta, stats, tokenizer = fork
    builder = ObservationBuilder(_spec(backbone == "pi05"), stats, tokenizer)
    obs = builder.build(_sample(data, meta))
    ref = lambda k: data[f"{backbone}/{k}"]

    np.testing.assert_allclose(obs.state[0], ref("state"), rtol=0, atol=TOL)
    np.testing.assert_allclose(obs.action_prev[0, :7], ref("action_prev"), rtol=0, atol=TOL)
    assert not obs.action_prev[0, 7:].any()  # our padding; the Prophet reads [:7]
    for slot in TOPICS:
        np.testing.assert_allclose(obs.images[slot][0], _model_range(data[f"images/{slot}_u8"]),
                                   rtol=0, atol=TOL, err_msg=slot)
        assert obs.image_masks[slot][0] == ref(f"{slot}_mask")
    np.testing.assert_allclose(obs.tactile_image[0],
                               _model_range(data["images/tactile_128x160_u8"]), rtol=0, atol=TOL)
    np.testing.assert_array_equal(obs.tokenized_prompt[0], ref("tokenized_prompt"))
    np.testing.assert_array_equal(obs.tokenized_prompt_mask[0], ref("tokenized_prompt_mask"))

    # Output side: unnormalise + first 6 dims back to absolute, gripper absolute.
    robot = builder.postprocess_actions(ref("chunk_norm"))
    np.testing.assert_allclose(robot, ref("chunk_robot"), rtol=0, atol=5 * TOL)


def test_default_pipeline_keeps_raw_action_prev_and_state_prompt(fork):
    data, meta, stats, tokenizer = fork
    sample = _sample(data, meta)
    ours = ObservationBuilder(_spec(True, "default"), stats, tokenizer).build(sample)
    fork_obs = ObservationBuilder(_spec(True), stats, tokenizer).build(sample)
    raw = data["raw/state"].astype(np.float64) - data["raw/state_prev"]
    np.testing.assert_allclose(ours.action_prev[0, :7], raw, atol=1e-7)
    assert np.abs(fork_obs.action_prev[0, :7] - raw).max() > 0.05
    # ours writes the state into the pi0.5 prompt, the fork does not
    assert ours.tokenized_prompt_mask.sum() > fork_obs.tokenized_prompt_mask.sum()
    assert not ours.state[0, 7:].any() and (fork_obs.state[0, 7:] == -1).all()


def test_fork_letterboxes_tactile_too(fork):
    """The fork's ResizeImages also letterboxes tactile_0 (128x160 -> 224x224); our PIL
    letterbox reproduces that geometry, which is why the preset keeps 128x160 instead."""
    data = fork[0]
    ours = restac_preset.letterbox_pil(data["raw/gelsight_left_rgb"], (224, 224))
    np.testing.assert_array_equal(ours, data["images/tactile_0_224_u8"])


def test_preset_refuses_stats_the_fork_could_not_use(fork):
    _, _, stats, tokenizer = fork
    narrow = dict(stats, state=norm.NormStats(*(None if v is None else v[:7] for v in
                                                 dataclasses.astuple(stats["state"]))))
    with pytest.raises(ValueError, match="'state' have 7 dims, need 32"):
        ObservationBuilder(_spec(True), narrow, tokenizer)
    a = stats["actions"]
    per_step = dict(stats, actions=norm.NormStats(*(np.tile(v, (50, 1)) for v in
                                                    (a.mean, a.std, a.q01, a.q99))))
    with pytest.raises(ValueError, match="per-step"):
        ObservationBuilder(_spec(True), per_step, tokenizer)
    with pytest.raises(ValueError, match="encoder-inputs-only"):
        ObservationBuilder.encoder_inputs_only(_spec(True))


def test_delta_mask_and_pipeline_names():
    assert restac_preset.resolve_delta_mask("restac", 7) == (True,) * 6 + (False,)
    assert restac_preset.resolve_delta_mask("restac", 7, (False,) * 7) == (True,) * 6 + (False,)
    with pytest.raises(ValueError, match="delta_action_mask"):
        restac_preset.resolve_delta_mask("restac", 7, (True,) * 7)
    assert restac_preset.resolve_delta_mask("default", 2, (True, False)) == (True, False)
    with pytest.raises(ValueError, match="unknown pipeline"):
        dataclasses.replace(_spec(True), pipeline="fork")
