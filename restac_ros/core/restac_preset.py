"""The ResTacVLA fork's data pipeline as an ObservationSpec option (`pipeline: restac`).

The fork (Awilekong/openpi) trains and serves with `LeRobotResTacDataConfig` +
`ResTacInputs` (`training/config.py`, `policies/restac_policy.py`). A checkpoint trained
there expects its inputs made exactly that way; `ObservationSpec(pipeline="restac")`
makes the ONE preprocessing path (`ObservationBuilder`) do so. How it differs from our
default (`pipeline="default"`):

- action_prev: ours raw units; restac normalised with the ACTION stats (quantile for
  pi0.5, z-score for pi0), `ResTacNormalizeActionPrev`.
- state: ours normalised on its own dims, then zero-padded; restac zero-padded to
  action_dim FIRST, then normalised with action_dim-wide stats (pi0.5: padded dims -1).
- pi0.5 prompt: ours carries the discretised state; restac none (the fork's config has
  no `discrete_state_input`, and openpi's `getattr(config, ..., False)` turns it off).
- camera resize: ours cv2 INTER_AREA letterbox; restac PIL bilinear letterbox
  (`openpi_client.image_tools.resize_with_pad`, up to 8 grey levels apart on fine detail).
- delta actions: ours from the checkpoint's policy_meta.json; restac the first 6 dims
  relative to the state, the rest absolute (`make_bool_mask(6, -1)`).
- tactile: 128x160 in both. The fork's own ResizeImages letterboxes `tactile_0` to
  224x224 as well, which its VQ-VAE cannot consume (z_real 28x28 vs mu 16x20).

Camera slots (ResTacInputs, pi0/pi0.5): base_0_rgb = main_realsense_rgb,
left_wrist_0_rgb = handeye_realsense_rgb, right_wrist_0_rgb = side_realsense_rgb;
the tactile image is gelsight_left_rgb; the state is the 7-D EE state
[x, y, z, rx, ry, rz, gripper]. config/restac_preset.yaml maps them onto our topics.
test/core/test_restac_preset.py checks the result against the fork's own transforms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from restac_ros.model import norm_stats as norm

DEFAULT = "default"
RESTAC = "restac"
PIPELINES: tuple[str, ...] = (DEFAULT, RESTAC)
FORK_DELTA_DIMS = 6  # LeRobotResTacDataConfig: make_bool_mask(6, -1)
FORK_CAMERAS: Mapping[str, str] = {  # model slot -> the fork's dataset camera
    "base_0_rgb": "main_realsense_rgb",
    "left_wrist_0_rgb": "handeye_realsense_rgb",
    "right_wrist_0_rgb": "side_realsense_rgb",
}
FORK_TACTILE = "gelsight_left_rgb"


def check_pipeline(pipeline: str) -> None:
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; known: {PIPELINES}")


def pipeline_flags(pipeline: str, pi05: bool) -> dict:
    """ObservationSpec fields a pipeline + backbone fix (quantile norm for pi0.5 in both;
    the state goes into the pi0.5 prompt only in ours)."""
    check_pipeline(pipeline)
    return {"pipeline": pipeline, "use_quantile_norm": bool(pi05),
            "state_in_prompt": bool(pi05) and pipeline == DEFAULT}


def fork_delta_mask(robot_dim: int) -> tuple[bool, ...]:
    return tuple(i < FORK_DELTA_DIMS for i in range(robot_dim))


def resolve_delta_mask(pipeline: str, robot_dim: int,
                       given: Sequence[bool] = ()) -> tuple[bool, ...]:
    """The delta-action mask to run with: `given` (a checkpoint's policy_meta.json) for ours;
    the fork's fixed mask for `restac`, refusing a checkpoint that says otherwise."""
    check_pipeline(pipeline)
    given = tuple(bool(m) for m in given)
    if pipeline == DEFAULT:
        return given
    mask = fork_delta_mask(robot_dim)
    if any(given) and given != mask:
        raise ValueError(f"pipeline 'restac' predicts the first {FORK_DELTA_DIMS} action dims "
                         f"relative to the state, but the checkpoint's delta_action_mask is "
                         f"{list(given)}")
    return mask


def check_stats(stats: Mapping[str, norm.NormStats], action_dim: int, robot_dim: int) -> None:
    """What the fork's normalisation needs of norm_stats.json (it would fail or differ)."""
    state = np.asarray(stats["state"].mean)
    if state.shape[-1] < action_dim:
        raise ValueError(f"pipeline 'restac' normalises the state padded to action_dim "
                         f"{action_dim} (as the fork's ResTacInputs + Normalize do): norm stats "
                         f"'state' have {state.shape[-1]} dims, need {action_dim}")
    actions = np.asarray(stats["actions"].mean)
    if actions.ndim != 1:
        raise ValueError("pipeline 'restac' normalises action_prev with the action stats: "
                         f"they must be one row [D], not per-step {list(actions.shape)}")
    if actions.shape[-1] < robot_dim:
        raise ValueError(f"norm stats 'actions' have {actions.shape[-1]} dims; action_prev "
                         f"has {robot_dim}")


def normalize_state(state: np.ndarray, stats: norm.NormStats, action_dim: int,
                    use_quantiles: bool) -> np.ndarray:
    """float32 [action_dim]: ResTacInputs pads to action_dim, then openpi's Normalize."""
    padded = np.zeros((action_dim,), np.float64)
    padded[: state.shape[0]] = state
    return norm.normalize(padded, stats, use_quantiles=use_quantiles)


def normalize_action_prev(action_prev: np.ndarray, stats: norm.NormStats,
                          use_quantiles: bool) -> np.ndarray:
    """ResTacNormalizeActionPrev: action_prev with the ACTION stats, same formulas."""
    return norm.normalize(action_prev, stats, use_quantiles=use_quantiles)


def letterbox_pil(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [size]: openpi_client's resize_with_pad (PIL bilinear,
    aspect kept, zero padding, offsets floor((size - resized) / 2))."""
    out_h, out_w = size
    cur_h, cur_w = img.shape[:2]
    if (cur_h, cur_w) == (out_h, out_w):
        return img.copy()
    ratio = max(cur_w / out_w, cur_h / out_h)
    new_h, new_w = int(cur_h / ratio), int(cur_w / ratio)
    resized = np.asarray(Image.fromarray(img).resize((new_w, new_h), resample=Image.BILINEAR))
    top, left = max(0, int((out_h - new_h) / 2)), max(0, int((out_w - new_w) / 2))
    out = np.zeros((out_h, out_w, 3), np.uint8)
    out[top: top + new_h, left: left + new_w] = resized[: out_h - top, : out_w - left]
    return out
