"""policy_node parameters (config/policy.yaml `policy_node:` section) and what they build."""

from __future__ import annotations

from restac_ros.core.action_space import ActionSpace, make_action_space
from restac_ros.core.buffers import UnstampedPolicy
from restac_ros.core.observation import ObservationSpec
from restac_ros.core.restac_preset import PIPELINES, check_pipeline, pipeline_flags
from restac_ros.model.observation import IMAGE_KEYS
from restac_ros.nodes.policy_outputs import OutputTopics

JOINTS = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7", "gripper"]
# Input limits of the sample robot (restac-make-sample-bag: 7 revolute joints within
# +-pi moving at most 2.5 rad/s, a gripper opening of 0..0.09 m at 0.05 m/s), with margin.
SAMPLE_POSITION_MIN = [-3.1416] * 7 + [0.0]
SAMPLE_POSITION_MAX = [3.1416] * 7 + [1.0]
SAMPLE_VELOCITY_MAX = [5.0] * 7 + [1.0]
TRANSPORTS = ("raw", "compressed")
TICK_SOURCES = ("timer", "stamps", "joints", "tactile", *IMAGE_KEYS)

PARAMETERS = {
    "autostart": (
        True,
        "Configure and activate on start (launch files and restac-bringup set False and "
        "drive the lifecycle transitions themselves)",
    ),
    # model
    "checkpoint_dir": ("", "Policy checkpoint directory (restac_config.json, params/, assets/)"),
    "vqvae_checkpoint": ("", "Residual VQ-VAE .ckpt overriding the checkpoint's ('' = its own)"),
    "tokenizer_path": ("", "sentencepiece model overriding assets/tokenizer.model ('' = its own)"),
    "device": ("cpu", "JAX platform to run on: cpu | gpu | tpu"),
    "seed": (0, "Flow-matching noise seed (same seed + observation -> same chunk)"),
    "num_steps": (10, "Euler integration steps of the flow-matching sampler"),
    # remote inference (restac-serve); the checkpoint/device/num_steps above are then unused
    "backend": ("local", "local: run the checkpoint in this process | remote: a restac-serve "
                "server at remote_host:remote_port runs it"),
    "remote_host": ("127.0.0.1", "restac-serve host (backend: remote)"),
    "remote_port": (8000, "restac-serve port (backend: remote)"),
    "remote_api_key": ("", "API key the server requires ('' = none)"),
    "remote_timeout_s": (
        0.5,
        "A reply later than this (s) is dropped and counted; the connection is re-made",
    ),
    "remote_connect_timeout_s": (
        30.0,
        "configure waits this long (s) for the server before it fails",
    ),
    # action space
    "action_space": ("joint_position", "Action space preset: joint_position | ee_pose_rpy"),
    "joint_names": (JOINTS, "Joint names in state order (and the joint_position action names)"),
    "action_dt_s": (1.0 / 15.0, "Seconds between consecutive actions of a chunk"),
    "ee_frame_id": ("base_link", "Frame of end-effector actions (ActionChunk, Path)"),
    # rates
    "rate_hz": (5.0, "Observation/inference rate (Hz); ticks while inference runs are skipped"),
    "tick_on": (
        "timer",
        "timer: assemble on a timer at rate_hz; or a stream (joints | tactile | camera slot): "
        "assemble when its message arrives, at most rate_hz; stamps (replay, use_sim_time): "
        "ticks on the grid tick_origin_ns + k/rate_hz in stamp time, each assembled from "
        "exactly the messages stamped <= the tick once every required stream has delivered "
        "one stamped >= it (as restac-eval does; restac_ros.core.ticks)",
    ),
    "tick_origin_ns": (
        0,
        "Origin of the tick grid of tick_on: stamps (ns; 0 = the epoch: whole multiples of "
        "the period). restac-eval's grid starts at the bag's first log time",
    ),
    "diagnostics_period_s": (1.0, "Period of /diagnostics publications (s)"),
    "prepare_images_on_arrival": (
        True,
        "Convert each camera/tactile image for the model when it arrives, in a helper thread, "
        "so the tick only stacks them (takes ~1 ms off the sensor-to-chunk path; costs "
        "~5% of a core at 3 cameras 30 Hz + tactile 60 Hz). false: convert at the tick",
    ),
    # inputs
    "camera_topics": (
        ["/camera/base/image_raw", "/camera/left_wrist/image_raw", "/camera/right_wrist/image_raw"],
        "Camera image topics, one per entry of camera_slots",
    ),
    "camera_slots": (list(IMAGE_KEYS), "Model camera slot of each camera topic"),
    "camera_transport": (
        "raw",
        "raw (sensor_msgs/Image) | compressed (sensor_msgs/CompressedImage)",
    ),
    "camera_max_age_s": (0.5, "A camera image older than this (s) makes the observation stale"),
    "tactile_topic": ("/tactile/image_raw", "Tactile image topic (sensor_msgs/Image)"),
    "tactile_required": (True, "True: no chunk without a fresh tactile image; False: mask it"),
    "tactile_max_age_s": (0.5, "A tactile image older than this (s) is stale"),
    "tactile_frame_id": ("tactile_link", "Frame of the tactile sensor (TactileDiagnostics)"),
    "joint_states_topic": ("/joint_states", "sensor_msgs/JointState topic"),
    "joint_max_age_s": (0.2, "A joint state older than this (s) makes the observation stale"),
    "joint_position_min": (
        SAMPLE_POSITION_MIN,
        "Lower limit per joint_names entry (radians / gripper units; [] = unlimited). A joint "
        "state outside [min, max] is refused (joint_out_of_limits): no chunk, /diagnostics "
        "says why. Defaults: the sample robot",
    ),
    "joint_position_max": (SAMPLE_POSITION_MAX, "Upper limit per joint_names entry ([] = none)"),
    "joint_velocity_max": (
        SAMPLE_VELOCITY_MAX,
        "Largest speed per joint_names entry (units/s; [] = unlimited) between two consecutive "
        "joint states and between the state and the one action_prev_dt_s back; faster is "
        "refused (joint_velocity_limit)",
    ),
    "max_stamp_age_s": (
        10.0,
        "Messages stamped more than this (s) before the node clock are refused (too_old)",
    ),
    "max_stamp_lead_s": (
        1.0,
        "Messages stamped more than this (s) after the node clock are refused (from_future)",
    ),
    "max_image_pixels": (
        4096 * 4096,
        "Images with more pixels (raw: height*width; compressed: the header) are refused "
        "before they are copied or decoded",
    ),
    "tactile_sizes": (
        [240, 320, 128, 160],
        "Allowed tactile image sizes as flat [H, W, H, W, ...] ([] = any size)",
    ),
    "tactile_resize": (
        "reject",
        "reject: a tactile image of another size is refused (bad_image) | stretch: it is "
        "stretched to 128x160 and counted on /diagnostics (tactile_stretched)",
    ),
    "max_prompt_chars": (
        1000,
        "Longer prompts are refused (bad_prompt; no chunk until a valid prompt); so are "
        "prompts with a NUL character",
    ),
    "clock_jump_tolerance_s": (
        0.5,
        "The node clock going back by more than this (s; a bag loop under use_sim_time) "
        "drops every buffered message and held tick",
    ),
    "clock_stall_s": (
        2.0,
        "The node clock not advancing for this long (wall s; /clock stopped) is reported "
        "and drops the buffers likewise",
    ),
    "prompt_topic": ("/restac/prompt", "std_msgs/String task prompt (reliable, transient local)"),
    "default_prompt": ("", "Prompt used until one is received ('' = wait for the prompt topic)"),
    "pipeline": (
        "default",
        f"Input conventions: {' | '.join(PIPELINES)}. restac = the ResTacVLA fork's "
        "(action_prev normalised with the action stats, first 6 action dims relative to "
        "the state, ...; config/restac_preset.yaml, restac_ros/core/restac_preset.py)",
    ),
    "reliable_inputs": (
        False,
        "Subscribe to sensor topics reliable (lossless replay from bag_player reliable:=true; "
        "does not match best-effort sensor drivers)",
    ),
    "unstamped_policy": (
        "stamp_on_receipt",
        "Messages with a zero header stamp: stamp_on_receipt (warn) | reject",
    ),
    # outputs
    "action_chunk_topic": ("/restac/action_chunk", "ActionChunk output topic"),
    "joint_trajectory_topic": ("/restac/joint_trajectory", "JointTrajectory (joint spaces)"),
    "ee_path_topic": ("/restac/ee_path", "nav_msgs/Path of the chunk (EE action spaces)"),
    "tactile_diagnostics_topic": ("/restac/tactile/diagnostics", "TactileDiagnostics topic"),
    "logvar_topic": ("/restac/tactile/logvar", "std_msgs/Float32 tactile logvar topic"),
    "vq_codes_topic": ("/restac/tactile/vq_codes", "std_msgs/Int32MultiArray VQ codes topic"),
    "diagnostics_topic": ("/diagnostics", "diagnostic_msgs/DiagnosticArray topic"),
}

JOINT_STREAM = "joints"
TACTILE_STREAM = "tactile"


def validate(p: dict) -> None:
    """Raise ValueError naming the parameter for values that cannot work."""
    if len(p["camera_topics"]) != len(p["camera_slots"]):
        raise ValueError(
            f"camera_topics ({len(p['camera_topics'])}) and camera_slots "
            f"({len(p['camera_slots'])}) must have the same length"
        )
    if unknown := set(p["camera_slots"]) - set(IMAGE_KEYS):
        raise ValueError(f"camera_slots: unknown slots {sorted(unknown)}; slots: {IMAGE_KEYS}")
    if p["camera_transport"] not in TRANSPORTS:
        raise ValueError(f"camera_transport must be one of {TRANSPORTS}")
    if p["tick_on"] not in TICK_SOURCES:
        raise ValueError(f"tick_on must be one of {TICK_SOURCES}, got {p['tick_on']!r}")
    UnstampedPolicy(p["unstamped_policy"])
    check_pipeline(p["pipeline"])
    if p["backend"] not in ("local", "remote"):
        raise ValueError(f"backend must be local or remote, got {p['backend']!r}")
    if not 0 < p["remote_port"] < 65536:
        raise ValueError(f"remote_port must be in 1..65535, got {p['remote_port']}")
    for name in ("rate_hz", "diagnostics_period_s", "action_dt_s", "remote_timeout_s",
                 "remote_connect_timeout_s"):
        if not p[name] > 0:
            raise ValueError(f"{name} must be > 0, got {p[name]}")
    for name in ("max_stamp_age_s", "max_stamp_lead_s", "clock_jump_tolerance_s",
                 "clock_stall_s"):
        if not 0 < p[name] < float("inf"):
            raise ValueError(f"{name} must be finite and > 0, got {p[name]}")


def action_space(p: dict, horizon: int) -> ActionSpace:
    return make_action_space(p["action_space"], p["joint_names"], p["action_dt_s"], horizon)


def observation_spec(
    p: dict, space: ActionSpace, action_dim: int, quantile_norm: bool
) -> ObservationSpec:
    """Stream names: the camera slot for cameras, "joints", "tactile"."""
    return ObservationSpec(
        camera_streams={slot: slot for slot in p["camera_slots"]},
        joint_names=tuple(p["joint_names"]),
        action_space=space,
        action_dim=action_dim,
        joint_stream=JOINT_STREAM,
        tactile_stream=TACTILE_STREAM if p["tactile_topic"] else None,
        tactile_required=bool(p["tactile_required"]),
        camera_max_age_s=p["camera_max_age_s"],
        joint_max_age_s=p["joint_max_age_s"],
        tactile_max_age_s=p["tactile_max_age_s"],
        default_prompt=p["default_prompt"] or None,
        joint_position_min=tuple(p["joint_position_min"] or ()),
        joint_position_max=tuple(p["joint_position_max"] or ()),
        joint_velocity_max=tuple(p["joint_velocity_max"] or ()),
        max_image_pixels=int(p["max_image_pixels"]),
        tactile_sizes=tactile_sizes(p["tactile_sizes"]),
        tactile_resize=p["tactile_resize"],
        max_prompt_chars=int(p["max_prompt_chars"]),
        **pipeline_flags(p["pipeline"], quantile_norm),
    )


def tactile_sizes(flat) -> tuple[tuple[int, int], ...]:
    values = list(flat or ())
    if len(values) % 2:
        raise ValueError(f"tactile_sizes must be [H, W, H, W, ...], got {values}")
    return tuple((int(values[i]), int(values[i + 1])) for i in range(0, len(values), 2))


def output_topics(p: dict) -> OutputTopics:
    return OutputTopics(
        action_chunk=p["action_chunk_topic"],
        joint_trajectory=p["joint_trajectory_topic"],
        ee_path=p["ee_path_topic"],
        tactile_diagnostics=p["tactile_diagnostics_topic"],
        logvar=p["logvar_topic"],
        vq_codes=p["vq_codes_topic"],
    )
