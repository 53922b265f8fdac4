"""The `policy_node` section of config/policy.yaml, read without ROS, and what it builds offline.

Offline tools use the same parameters as the live node; streams are keyed by
topic name because `restac_ros.core.bag_dataset` feeds buffers by topic.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from restac_ros.core.action_space import ActionSpace, make_action_space
from restac_ros.core.observation import ObservationBuilder, ObservationSpec
from restac_ros.core.restac_preset import pipeline_flags, resolve_delta_mask
from restac_ros.paths import config_path

REQUIRED = (
    "checkpoint_dir", "seed", "num_steps", "action_space", "joint_names", "action_dt_s",
    "ee_frame_id", "rate_hz", "camera_topics", "camera_slots", "camera_transport",
    "camera_max_age_s", "tactile_topic", "tactile_required", "tactile_max_age_s",
    "tactile_frame_id", "joint_states_topic", "joint_max_age_s", "prompt_topic",
    "default_prompt", "unstamped_policy",
)


class ParamsError(ValueError):
    pass


def default_params_path() -> Path:
    return config_path("policy.yaml")


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """`policy_node.ros__parameters` of a params file (default: the package's policy.yaml)."""
    path = Path(path) if path is not None else default_params_path()
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: invalid YAML: {err}") from None
    try:
        p = dict(data["policy_node"]["ros__parameters"])
    except (KeyError, TypeError):
        raise ParamsError(f"{path}: no policy_node.ros__parameters section") from None
    if missing := [k for k in REQUIRED if k not in p]:
        raise ParamsError(f"{path}: policy_node parameters missing {missing}")
    if len(p["camera_topics"]) != len(p["camera_slots"]):
        raise ParamsError(f"{path}: camera_topics and camera_slots differ in length")
    if not float(p["rate_hz"]) > 0:
        raise ParamsError(f"{path}: rate_hz must be > 0")
    p["_path"] = str(path)
    return p


def action_space(p: dict, horizon: int) -> ActionSpace:
    return make_action_space(p["action_space"], p["joint_names"], float(p["action_dt_s"]), horizon)


def observation_spec(p: dict, horizon: int, action_dim: int,
                     pi05: bool) -> ObservationSpec:
    """ObservationSpec whose stream names are the bag's topic names.

    pi0.5 checkpoints: quantile normalisation and (pipeline default) the state written
    into the prompt. Optional `pipeline`: default | restac (the ResTacVLA fork's inputs,
    core/restac_preset.py).
    """
    extra = {}
    if "action_prev_dt_s" in p:  # optional parameter; the core's default otherwise
        extra["action_prev_dt_s"] = float(p["action_prev_dt_s"])
    return ObservationSpec(
        **extra,
        **pipeline_flags(p.get("pipeline", "default"), pi05),
        camera_streams=dict(zip(p["camera_slots"], p["camera_topics"], strict=True)),
        joint_names=tuple(p["joint_names"]),
        action_space=action_space(p, horizon),
        action_dim=action_dim,
        joint_stream=p["joint_states_topic"],
        tactile_stream=p["tactile_topic"] or None,
        tactile_required=bool(p["tactile_required"]),
        camera_max_age_s=float(p["camera_max_age_s"]),
        joint_max_age_s=float(p["joint_max_age_s"]),
        tactile_max_age_s=float(p["tactile_max_age_s"]),
        default_prompt=p["default_prompt"] or None,
    )


def builder_for(p: dict, config, stats, tokenizer,
                delta_action_mask: tuple[bool, ...] = ()) -> ObservationBuilder:
    """The ObservationBuilder for a model config (horizon, action_dim, pi0/pi0.5 norm).

    delta_action_mask: a checkpoint's (`delta_action_mask_from_meta(policy.meta, dim)`),
    or for training the one being trained; () = absolute actions.
    """
    spec = observation_spec(p, int(config.action_horizon), int(config.action_dim),
                            bool(config.pi05))
    mask = resolve_delta_mask(spec.pipeline, spec.robot_dim, delta_action_mask)
    spec = dataclasses.replace(spec, delta_action_mask=mask)
    return ObservationBuilder(spec, stats, tokenizer)
