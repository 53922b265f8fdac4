"""ObservationSpec: what the policy consumes and from which streams (re-exported by
`restac_ros.core.observation`)."""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping

from restac_ros.core.action_space import DEFAULT_DT_S, ActionSpace
from restac_ros.core.buffers import NS_PER_S, StreamSpec
from restac_ros.core.restac_preset import check_pipeline
from restac_ros.model.observation import IMAGE_KEYS

# Default stream names are the default topics (CONTRACT section 3), so a spec
# built from config/policy.yaml replays a bag with the same names.
DEFAULT_CAMERA_STREAMS: Mapping[str, str] = types.MappingProxyType(
    {
        "base_0_rgb": "/camera/base/image_raw",
        "left_wrist_0_rgb": "/camera/left_wrist/image_raw",
        "right_wrist_0_rgb": "/camera/right_wrist/image_raw",
    }
)
# The joint buffer keeps enough entries to look back action_prev_dt_s at joint
# streams up to this rate (it is time-bounded too, so slower streams keep fewer).
MAX_JOINT_RATE_HZ = 2000.0
# Stamps on a shared time grid differ by ns roundings: a state this close after
# t - action_prev_dt_s still counts as "at" it.
STAMP_SLACK_NS = 1_000
# Largest image (pixels) decoded by default: 4096 x 4096. Checked from the message
# fields / compressed header before anything is copied or decoded.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
DEFAULT_MAX_PROMPT_CHARS = 1000
TACTILE_RESIZE_POLICIES = ("reject", "stretch")


def backbone_flags(pi05: bool) -> dict[str, bool]:
    """ObservationSpec fields the backbone fixes: pi0.5 = quantile norm + state in the prompt.

    The one rule restac-eval / restac-train-policy (eval.params) and policy_node
    (nodes.policy_params) both apply to a checkpoint's `config.pi05`.
    """
    return {"use_quantile_norm": bool(pi05), "state_in_prompt": bool(pi05)}


@dataclasses.dataclass(frozen=True)
class ObservationSpec:
    """What the policy consumes and from which streams (stream names are free-form keys).

    camera_streams: {model slot: stream} (e.g. DEFAULT_CAMERA_STREAMS); slots not
      listed are fed black (-1) with mask False.
    Stream names are free-form keys of StreamBuffers; use the topic names (the
      defaults) so BagDataset finds them in bags.
    joint_names: state order; incoming joints are mapped by name.
    action_dim: the model's (padded) action/state width; the robot's comes from action_space.
    use_quantile_norm: False = z-score (pi0), True = quantile (pi0.5).
    state_in_prompt: pi0.5 writes the discretised normalised state into the prompt.
    default_prompt: used only while no prompt has been received (None: must receive one).
    action_prev_dt_s: action_prev = state(t) - state(t - action_prev_dt_s), raw units, where
      t is the newest joint stamp and state(t - dt) the buffered joint state stamped
      nearest to and not after t - dt (default: one 15 Hz control step, as the
      published Prophet was trained). That state may be at most joint_max_age_s
      older than t - dt (a gap in the joint stream refuses with NO_PREVIOUS_STATE).
    joint_position_min / joint_position_max / joint_velocity_max: per joint_names entry
      (empty = unlimited); a state outside them, or moving faster between two buffered
      states, is refused (JOINT_LIMITS / JOINT_VELOCITY), never turned into a chunk.
    max_image_pixels: images with more pixels (by the header) are refused before decoding.
    tactile_sizes: the (H, W) tactile sizes accepted (empty = any); others are refused,
      or stretched and counted when tactile_resize is "stretch".
    max_prompt_chars: longer prompts (and any with a NUL) are refused (BAD_PROMPT).
    """

    camera_streams: Mapping[str, str]
    joint_names: tuple[str, ...]
    action_space: ActionSpace
    action_dim: int
    joint_stream: str = "/joint_states"
    tactile_stream: str | None = "/tactile/image_raw"
    tactile_required: bool = False
    camera_max_age_s: float = 0.2
    joint_max_age_s: float = 0.1
    tactile_max_age_s: float = 0.2
    default_prompt: str | None = None
    use_quantile_norm: bool = False
    state_in_prompt: bool = False
    action_prev_dt_s: float = DEFAULT_DT_S
    # Per robot action dim: True = the model predicts it relative to the current raw
    # state (openpi delta actions). () = all absolute (checkpoints without the meta key).
    delta_action_mask: tuple[bool, ...] = ()
    # "default" (ours) | "restac": the ResTacVLA fork's input conventions (action_prev
    # normalised with the action stats, ...); core/restac_preset.py lists the differences.
    pipeline: str = "default"
    joint_position_min: tuple[float, ...] = ()
    joint_position_max: tuple[float, ...] = ()
    joint_velocity_max: tuple[float, ...] = ()
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    tactile_sizes: tuple[tuple[int, int], ...] = ()
    tactile_resize: str = "reject"
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS

    def __post_init__(self) -> None:
        object.__setattr__(self, "delta_action_mask", tuple(bool(m) for m in
                                                            self.delta_action_mask))
        object.__setattr__(
            self, "camera_streams", types.MappingProxyType(dict(self.camera_streams))
        )
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        if unknown := set(self.camera_streams) - set(IMAGE_KEYS):
            raise ValueError(f"unknown camera slots {sorted(unknown)}; slots: {IMAGE_KEYS}")
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names must be non-empty and unique: {self.joint_names}")
        if len(self.joint_names) > self.action_dim:
            raise ValueError(f"{len(self.joint_names)} joints exceed action_dim {self.action_dim}")
        if self.action_space.dim > self.action_dim:
            raise ValueError(
                f"robot action dim {self.action_space.dim} exceeds action_dim {self.action_dim}"
            )
        if not (self.action_prev_dt_s > 0 and math.isfinite(self.action_prev_dt_s)):
            raise ValueError(f"action_prev_dt_s must be > 0, got {self.action_prev_dt_s}")
        if self.tactile_required and self.tactile_stream is None:
            raise ValueError("tactile_required needs a tactile_stream")
        streams = [*self.camera_streams.values(), self.joint_stream]
        if self.tactile_stream is not None:
            streams.append(self.tactile_stream)
        if len(set(streams)) != len(streams):
            raise ValueError(f"streams must be distinct: {streams}")
        if self.delta_action_mask and len(self.delta_action_mask) != self.action_space.dim:
            raise ValueError(f"delta_action_mask has {len(self.delta_action_mask)} entries, "
                             f"the action space {self.action_space.dim}")
        if any(self.delta_action_mask) and self.action_space.dim > len(self.joint_names):
            raise ValueError("delta actions need a state entry per action dim")
        check_pipeline(self.pipeline)
        self._check_input_limits()
        self.stream_specs()  # validates the max ages

    def _check_input_limits(self) -> None:
        n = len(self.joint_names)
        for name in ("joint_position_min", "joint_position_max", "joint_velocity_max"):
            values = tuple(float(v) for v in getattr(self, name))
            object.__setattr__(self, name, values)
            if values and (len(values) != n or not all(math.isfinite(v) for v in values)):
                raise ValueError(f"{name} needs {n} finite values (one per joint), got {values}")
        if any(v <= 0 for v in self.joint_velocity_max):
            raise ValueError(f"joint_velocity_max must be > 0: {self.joint_velocity_max}")
        lo, hi = self.joint_position_min, self.joint_position_max
        if lo and hi and any(a > b for a, b in zip(lo, hi, strict=True)):
            raise ValueError("joint_position_min exceeds joint_position_max for some joint")
        sizes = tuple((int(h), int(w)) for h, w in self.tactile_sizes)
        object.__setattr__(self, "tactile_sizes", sizes)
        if any(h < 1 or w < 1 for h, w in sizes):
            raise ValueError(f"tactile_sizes must be positive (H, W) pairs: {sizes}")
        if self.tactile_resize not in TACTILE_RESIZE_POLICIES:
            raise ValueError(f"tactile_resize must be one of {TACTILE_RESIZE_POLICIES}, "
                             f"got {self.tactile_resize!r}")
        if not int(self.max_image_pixels) >= 1:
            raise ValueError(f"max_image_pixels must be >= 1, got {self.max_image_pixels}")
        if not int(self.max_prompt_chars) >= 1:
            raise ValueError(f"max_prompt_chars must be >= 1, got {self.max_prompt_chars}")

    @property
    def state_dim(self) -> int:
        return len(self.joint_names)

    @property
    def robot_dim(self) -> int:
        return self.action_space.dim

    @property
    def action_prev_dt_ns(self) -> int:
        return round(self.action_prev_dt_s * NS_PER_S)

    def stream_specs(self) -> tuple[StreamSpec, ...]:
        """Buffers this spec needs; joints keep action_prev_dt_s of history."""
        specs = [StreamSpec(s, self.camera_max_age_s) for s in self.camera_streams.values()]
        history = math.ceil(self.action_prev_dt_s * MAX_JOINT_RATE_HZ) + 4
        specs.append(
            StreamSpec(
                self.joint_stream,
                self.joint_max_age_s,
                history=history,
                history_s=self.action_prev_dt_s,
            )
        )
        if self.tactile_stream is not None:
            specs.append(
                StreamSpec(self.tactile_stream, self.tactile_max_age_s, self.tactile_required)
            )
        return tuple(specs)


def default_delta_action_mask(action_space: str, names: tuple[str, ...] | list[str]
                              ) -> tuple[bool, ...]:
    """openpi's default for joint-space robots: joints relative, the gripper absolute."""
    if action_space != "joint_position":
        return tuple(False for _ in names)
    return tuple("gripper" not in n.lower() for n in names)


DELTA_ACTION_MODES = ("joints", "all", "none")


def delta_action_mask(action_space: str, names: tuple[str, ...] | list[str],
                      mode: str = "joints") -> tuple[bool, ...]:
    """Which action dims a policy predicts relative to the state.

    joints: openpi's default (joints relative, gripper absolute); all: every dim
    relative, for a position-servoed gripper whose command tracks its measured width
    (joint_position only: an EE pose has no state of its own to be relative to);
    none: every dim absolute.
    """
    if mode not in DELTA_ACTION_MODES:
        raise ValueError(f"delta action mode {mode!r}: expected one of {DELTA_ACTION_MODES}")
    if mode == "none":
        return tuple(False for _ in names)
    if mode == "all":
        if action_space != "joint_position":
            raise ValueError(f"delta actions 'all' need a joint_position action space, "
                             f"not {action_space!r}")
        return tuple(True for _ in names)
    return default_delta_action_mask(action_space, names)


def delta_action_mask_from_meta(meta: dict, robot_dim: int) -> tuple[bool, ...]:
    """policy_meta.json's `delta_action_mask`; absent (older checkpoints): all absolute."""
    mask = meta.get("delta_action_mask")
    if mask is None:
        return tuple(False for _ in range(robot_dim))
    if len(mask) != robot_dim:
        raise ValueError(f"delta_action_mask has {len(mask)} entries, robot_dim is {robot_dim}")
    return tuple(bool(m) for m in mask)
