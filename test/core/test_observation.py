"""ObservationBuilder: valid assembly, action_prev semantics, every InvalidObservation reason,
postprocess_actions, the encoder-inputs-only mode."""

from __future__ import annotations

import numpy as np
import pytest

from restac_ros.core.action_space import ee_pose_rpy, joint_position
from restac_ros.core.buffers import StreamBuffers
from restac_ros.core.images import RawImage
from restac_ros.core.observation import (
    InvalidActions,
    InvalidObservation,
    JointSample,
    ObservationBuilder,
    ObservationSpec,
    RawSample,
    ReasonCode,
    joint_sample,
)
from restac_ros.model import norm_stats as norm
from restac_ros.model.tokenizer import PromptTokenizer
from test.core.bagtools import CAMERAS, JOINT_STATES, JOINTS, TACTILE
from test.core.conftest import as_array

S = 1_000_000_000
ACTION_DIM = 12
MAX_TOKENS = 16


def make_spec(**overrides) -> ObservationSpec:
    args = dict(
        camera_streams=CAMERAS,
        joint_names=tuple(JOINTS),
        action_space=joint_position(JOINTS, dt_s=0.1, horizon=10),
        action_dim=ACTION_DIM,
        joint_stream=JOINT_STATES,
        tactile_stream=TACTILE,
    )
    args.update(overrides)
    return ObservationSpec(**args)


@pytest.fixture()
def builder(norm_stats_path, spm_model_path) -> ObservationBuilder:
    return make_builder(norm_stats_path, spm_model_path)


def make_builder(norm_stats_path, spm_model_path, **spec_overrides) -> ObservationBuilder:
    stats = norm.load_norm_stats(norm_stats_path)
    return ObservationBuilder(
        make_spec(**spec_overrides), stats, PromptTokenizer(spm_model_path, MAX_TOKENS)
    )


def _img(h: int, w: int, value: int = 128) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


STATE = np.linspace(-0.4, 0.5, 8)
PREV = STATE - 0.01 * np.arange(1, 9)


def make_sample(**overrides) -> RawSample:
    args = dict(
        stamp_ns=5 * S,
        images={slot: _img(24, 32) for slot in CAMERAS},
        joints=joint_sample(JOINTS, STATE, 5 * S),
        prev_joints=joint_sample(JOINTS, PREV, 5 * S - S // 15),
        prompt="pick up the cube",
        tactile=_img(240, 320, 200),
    )
    args.update(overrides)
    return RawSample(**args)


def _reason(builder: ObservationBuilder, sample: RawSample) -> InvalidObservation:
    with pytest.raises(InvalidObservation) as info:
        builder.build(sample)
    return info.value


def test_valid_sample_gives_normalised_padded_batch1_observation(builder) -> None:
    """state normalised; action_prev raw (state - prev_state, NOT normalised), padded."""
    obs = builder.build(make_sample())
    for slot in CAMERAS:
        img = obs.images[slot]
        assert img.shape == (1, 224, 224, 3) and img.dtype == np.float32
        assert obs.image_masks[slot].tolist() == [True]
        # 24x32 letterboxed: 168 content rows (value 128), 28 black rows top and bottom
        assert np.all(img[0, :28] == -1.0) and np.all(img[0, -28:] == -1.0)
        np.testing.assert_allclose(img[0, 28:196], 128 / 255 * 2 - 1, atol=1e-6)
    assert obs.tactile_image.shape == (1, 128, 160, 3) and obs.tactile_mask.tolist() == [True]
    np.testing.assert_allclose(obs.tactile_image, 200 / 255 * 2 - 1, atol=1e-6)
    expect_state = (STATE - as_array("state", "mean")) / (as_array("state", "std") + 1e-6)
    assert obs.state.shape == (1, ACTION_DIM) and obs.state.dtype == np.float32
    np.testing.assert_allclose(obs.state[0, :8], expect_state, atol=1e-5)
    assert np.all(obs.state[0, 8:] == 0)
    assert obs.action_prev.shape == (1, ACTION_DIM) and obs.action_prev.dtype == np.float32
    np.testing.assert_array_equal(obs.action_prev[0, :8], (STATE - PREV).astype(np.float32))
    assert np.all(obs.action_prev[0, 8:] == 0)
    assert obs.tokenized_prompt.shape == (1, MAX_TOKENS) and obs.tokenized_prompt.dtype == np.int32
    assert obs.tokenized_prompt_mask.dtype == bool and obs.tokenized_prompt_mask.sum() > 0
    assert obs.batch_size == 1


def test_quantile_normalisation_for_pi05(norm_stats_path, spm_model_path) -> None:
    b = make_builder(norm_stats_path, spm_model_path, use_quantile_norm=True)
    obs = b.build(make_sample())
    q01, q99 = as_array("state", "q01"), as_array("state", "q99")
    np.testing.assert_allclose(
        obs.state[0, :8], (STATE - q01) / (q99 - q01 + 1e-6) * 2 - 1, atol=1e-5
    )
    with_state = make_builder(
        norm_stats_path, spm_model_path, use_quantile_norm=True, state_in_prompt=True
    ).build(make_sample())
    assert with_state.tokenized_prompt_mask.sum() > obs.tokenized_prompt_mask.sum()


def test_joints_are_mapped_by_name(builder) -> None:
    order = [3, 0, 7, 1, 6, 2, 5, 4]
    names = [JOINTS[i] for i in order] + ["extra_joint"]
    shuffled = joint_sample(names, [*STATE[order], 99.0])
    ref = builder.build(make_sample())
    obs = builder.build(make_sample(joints=shuffled))
    np.testing.assert_array_equal(obs.state, ref.state)
    np.testing.assert_array_equal(obs.action_prev, ref.action_prev)


def test_unmapped_camera_slot_is_masked_black(norm_stats_path, spm_model_path) -> None:
    cams = {k: v for k, v in CAMERAS.items() if k != "right_wrist_0_rgb"}
    b = make_builder(norm_stats_path, spm_model_path, camera_streams=cams)
    obs = b.build(make_sample(images={k: _img(24, 32) for k in cams}))
    assert obs.image_masks["right_wrist_0_rgb"].tolist() == [False]
    assert np.all(obs.images["right_wrist_0_rgb"] == -1.0)


def test_optional_tactile_absent_is_masked(builder) -> None:
    obs = builder.build(make_sample(tactile=None))
    assert obs.tactile_mask.tolist() == [False] and obs.tactile_image.shape == (1, 128, 160, 3)


def test_default_prompt_used_only_when_none_received(norm_stats_path, spm_model_path) -> None:
    b = make_builder(norm_stats_path, spm_model_path, default_prompt="pick up the cube")
    ref = b.build(make_sample())
    obs = b.build(make_sample(prompt=None))
    np.testing.assert_array_equal(obs.tokenized_prompt, ref.tokenized_prompt)
    assert _reason(b, make_sample(prompt="")).reason is ReasonCode.EMPTY_PROMPT


@pytest.mark.parametrize(
    "overrides,reason,text",
    [
        (
            {"joints": joint_sample(JOINTS, [*STATE[:7], np.nan])},
            ReasonCode.NONFINITE_JOINTS,
            "gripper",
        ),
        (
            {"joints": joint_sample(JOINTS, [np.inf, *STATE[1:]])},
            ReasonCode.NONFINITE_JOINTS,
            "joint1",
        ),
        (
            {"prev_joints": joint_sample(JOINTS, [-np.inf, *PREV[1:]])},
            ReasonCode.NONFINITE_JOINTS,
            "previous",
        ),
        (
            {"joints": joint_sample(JOINTS[:7], STATE[:7])},
            ReasonCode.MISSING_JOINTS,
            "missing ['gripper']",
        ),
        (
            {"joints": joint_sample(["j1", *JOINTS[1:]], STATE)},
            ReasonCode.MISSING_JOINTS,
            "unexpected ['j1']",
        ),
        (
            {"joints": JointSample(tuple(JOINTS), STATE[:7])},
            ReasonCode.BAD_JOINT_LAYOUT,
            "8 names but 7",
        ),
        (
            {"joints": joint_sample([*JOINTS[:7], "joint1"], STATE)},
            ReasonCode.BAD_JOINT_LAYOUT,
            "duplicate",
        ),
        ({"prev_joints": None}, ReasonCode.NO_PREVIOUS_STATE, "previous"),
        ({"prompt": ""}, ReasonCode.EMPTY_PROMPT, "empty"),
        ({"prompt": "  \n"}, ReasonCode.EMPTY_PROMPT, "empty"),
        ({"prompt": None}, ReasonCode.EMPTY_PROMPT, "no prompt"),
        (
            {
                "images": {
                    **{s: _img(8, 8) for s in CAMERAS},
                    "base_0_rgb": RawImage(b"\0" * 10, "rgb8", 2, 2, 6),
                }
            },
            ReasonCode.BAD_IMAGE,
            "data size 10 != step*height 12",
        ),
        (
            {
                "images": {
                    **{s: _img(8, 8) for s in CAMERAS},
                    "left_wrist_0_rgb": RawImage(b"\0" * 8, "yuv422", 2, 2, 4),
                }
            },
            ReasonCode.BAD_IMAGE,
            "unsupported encoding",
        ),
        (
            {
                "images": {
                    **{s: _img(8, 8) for s in CAMERAS},
                    "base_0_rgb": np.zeros((8, 8, 3), np.float32),
                }
            },
            ReasonCode.BAD_IMAGE,
            "uint8",
        ),
        ({"images": {"base_0_rgb": _img(8, 8)}}, ReasonCode.MISSING_STREAM, "left_wrist_0_rgb"),
        ({"tactile": RawImage(b"\0" * 5, "rgb8", 2, 2, 6)}, ReasonCode.BAD_IMAGE, "tactile"),
    ],
)
def test_bad_input_reason_codes(builder, overrides: dict, reason: ReasonCode, text: str) -> None:
    err = _reason(builder, make_sample(**overrides))
    assert err.reason is reason
    assert text in err.message


def test_tactile_required_but_absent(norm_stats_path, spm_model_path) -> None:
    b = make_builder(norm_stats_path, spm_model_path, tactile_required=True)
    assert _reason(b, make_sample(tactile=None)).reason is ReasonCode.TACTILE_MISSING


def _fill(buffers: StreamBuffers, t_ns: int, skip: tuple[str, ...] = ()) -> None:
    """Images at t; joints PREV one action_prev_dt_s (1/15 s, ns-truncated) before STATE at t."""
    for topic in [*CAMERAS.values(), TACTILE]:
        if topic not in skip:
            buffers.push(topic, t_ns, _img(24, 32), t_ns)
    if JOINT_STATES not in skip:
        for k, (q, dt) in enumerate(((PREV, S // 15), (STATE, 0))):
            buffers.push(JOINT_STATES, t_ns - dt, joint_sample(JOINTS, q), t_ns + k)


def test_sample_from_buffers_fresh(builder) -> None:
    buffers = builder.make_buffers()
    _fill(buffers, 5 * S)
    sample = builder.sample_from_buffers(buffers, 5 * S + S // 20, "pick up the cube")
    np.testing.assert_array_equal(sample.joints.positions, STATE)
    np.testing.assert_array_equal(sample.prev_joints.positions, PREV)
    assert sample.tactile is not None and set(sample.images) == set(CAMERAS)
    builder.build(sample)


@pytest.mark.parametrize(
    "skip,now_offset,reason,text",
    [
        ((), S // 2, ReasonCode.STALE_STREAM, "/camera/base/image_raw age 0.500s"),
        ((CAMERAS["left_wrist_0_rgb"],), 0, ReasonCode.MISSING_STREAM, "left_wrist"),
        ((JOINT_STATES,), 0, ReasonCode.MISSING_STREAM, JOINT_STATES),
    ],
)
def test_sample_from_buffers_refuses(builder, skip, now_offset, reason, text) -> None:
    buffers = builder.make_buffers()
    _fill(buffers, 5 * S, skip)
    with pytest.raises(InvalidObservation) as info:
        builder.sample_from_buffers(buffers, 5 * S + now_offset, "p")
    assert info.value.reason is reason and text in info.value.message


def test_stale_camera_only(builder) -> None:
    buffers = builder.make_buffers()
    _fill(buffers, 5 * S)
    for topic in [TACTILE, JOINT_STATES]:
        value = buffers.latest(topic).value
        buffers.push(topic, 6 * S, value, 6 * S)
    with pytest.raises(InvalidObservation) as info:
        builder.sample_from_buffers(buffers, 6 * S, "p")
    assert info.value.reason is ReasonCode.STALE_STREAM
    assert "camera" in info.value.message and "joint" not in info.value.message


def test_single_joint_state_has_no_previous(builder) -> None:
    buffers = builder.make_buffers()
    _fill(buffers, 5 * S, skip=(JOINT_STATES,))
    buffers.push(JOINT_STATES, 5 * S, joint_sample(JOINTS, STATE), 5 * S)
    with pytest.raises(InvalidObservation) as info:
        builder.sample_from_buffers(buffers, 5 * S, "p")
    assert info.value.reason is ReasonCode.NO_PREVIOUS_STATE


def test_tactile_in_buffers_required_vs_optional(norm_stats_path, spm_model_path) -> None:
    req = make_builder(norm_stats_path, spm_model_path, tactile_required=True)
    buffers = req.make_buffers()
    _fill(buffers, 5 * S, skip=(TACTILE,))
    with pytest.raises(InvalidObservation) as info:
        req.sample_from_buffers(buffers, 5 * S, "p")
    assert info.value.reason is ReasonCode.TACTILE_MISSING
    opt = make_builder(norm_stats_path, spm_model_path)
    buffers = opt.make_buffers()
    _fill(buffers, 5 * S)
    later = 5 * S + S // 4
    for topic in CAMERAS.values():
        buffers.push(topic, later, _img(4, 4), later)
    buffers.push(JOINT_STATES, later - S // 15, joint_sample(JOINTS, STATE), later)
    buffers.push(JOINT_STATES, later, joint_sample(JOINTS, STATE + 0.01), later)
    sample = opt.sample_from_buffers(buffers, 5 * S + S // 4, "p")  # tactile 250 ms old
    assert sample.tactile is None
    assert opt.build(sample).tactile_mask.tolist() == [False]


def test_postprocess_actions_inverts_normalisation(builder) -> None:
    robot = np.random.default_rng(1).normal(size=(10, 8))
    mean, std = as_array("actions", "mean"), as_array("actions", "std")
    padded = np.zeros((10, ACTION_DIM), np.float32)
    padded[:, :8] = (robot - mean) / (std + 1e-6)
    out = builder.postprocess_actions(padded)
    assert out.shape == (10, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out, robot, atol=1e-5)
    with pytest.raises(InvalidActions, match=r"expected actions \[H, 12\]"):
        builder.postprocess_actions(np.zeros((10, 8)))
    padded[3, 2] = np.nan
    with pytest.raises(InvalidActions, match="NaN"):
        builder.postprocess_actions(padded)


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="unknown camera slots"):
        make_spec(camera_streams={"top": "/cam"})
    with pytest.raises(ValueError, match="exceed action_dim"):
        make_spec(action_dim=4)
    with pytest.raises(ValueError, match="unique"):
        make_spec(joint_names=("a", "a"))
    with pytest.raises(ValueError, match="distinct"):
        make_spec(tactile_stream=JOINT_STATES)
    with pytest.raises(ValueError, match="action_prev_dt_s"):
        make_spec(action_prev_dt_s=0.0)
    ee = make_spec(action_space=ee_pose_rpy(horizon=50))
    assert ee.robot_dim == 7 and ee.state_dim == 8
    assert ee.action_prev_dt_s == pytest.approx(1 / 15) and ee.action_prev_dt_ns == 66_666_667
    joint = [s for s in ee.stream_specs() if s.history > 1]
    assert [s.name for s in joint] == [JOINT_STATES]
    assert joint[0].history_s == ee.action_prev_dt_s and joint[0].history >= 2000 / 15


def test_builder_refuses_incomplete_stats(spm_model_path) -> None:
    tok = PromptTokenizer(spm_model_path, MAX_TOKENS)
    full = norm.NormStats(np.zeros(8, np.float32), np.ones(8, np.float32))  # no quantiles
    with pytest.raises(ValueError, match="q01/q99"):
        ObservationBuilder(make_spec(use_quantile_norm=True), {"state": full, "actions": full}, tok)
    narrow = norm.NormStats(np.zeros(7, np.float32), np.ones(7, np.float32))
    with pytest.raises(ValueError, match="'state' have 7 dims, need >= 8"):
        ObservationBuilder(make_spec(), {"state": narrow, "actions": full}, tok)
    with pytest.raises(ValueError, match="lack 'actions'"):
        ObservationBuilder(make_spec(), {"state": full}, tok)
