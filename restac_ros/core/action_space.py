"""Action space presets: what each action dimension means and how often actions are issued."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

JOINT_POSITION = "joint_position"
EE_POSE_RPY = "ee_pose_rpy"
PRESETS: tuple[str, ...] = (JOINT_POSITION, EE_POSE_RPY)

EE_POSE_RPY_NAMES: tuple[str, ...] = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
DEFAULT_DT_S = 1.0 / 15.0  # the published ResTacVLA Franka setup runs at ~15 Hz
DEFAULT_HORIZON = 50


@dataclasses.dataclass(frozen=True)
class ActionSpace:
    """A robot action space: `names[i]` is the meaning of action column i.

    dt_s: seconds between consecutive actions of a chunk.
    horizon: actions per chunk the policy predicts.
    """

    preset: str
    names: tuple[str, ...]
    dt_s: float
    horizon: int

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown action space preset {self.preset!r}; known: {PRESETS}")
        if not self.names:
            raise ValueError(f"action space {self.preset!r} has no action names")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate action names in {self.names}")
        if not self.dt_s > 0:
            raise ValueError(f"dt_s must be > 0, got {self.dt_s}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def is_end_effector(self) -> bool:
        return self.preset == EE_POSE_RPY

    @property
    def angle_dims(self) -> tuple[int, ...]:
        """Columns holding angles in radians (wrapped by the executor)."""
        if not self.is_end_effector:
            return ()
        return tuple(i for i, n in enumerate(self.names) if n in ("roll", "pitch", "yaw"))


def joint_position(
    joint_names: Sequence[str], dt_s: float = DEFAULT_DT_S, horizon: int = DEFAULT_HORIZON
) -> ActionSpace:
    """Absolute joint position targets, one column per joint (names = joint names)."""
    return ActionSpace(JOINT_POSITION, tuple(joint_names), float(dt_s), int(horizon))


def ee_pose_rpy(dt_s: float = DEFAULT_DT_S, horizon: int = DEFAULT_HORIZON) -> ActionSpace:
    """End-effector pose (x, y, z, roll, pitch, yaw) + gripper (ResTacVLA's Franka setup)."""
    return ActionSpace(EE_POSE_RPY, EE_POSE_RPY_NAMES, float(dt_s), int(horizon))


def make_action_space(
    preset: str,
    joint_names: Sequence[str] = (),
    dt_s: float = DEFAULT_DT_S,
    horizon: int = DEFAULT_HORIZON,
) -> ActionSpace:
    """Build a preset by name (the `action_space` parameter of config/policy.yaml)."""
    if preset == JOINT_POSITION:
        if not joint_names:
            raise ValueError("joint_position action space needs joint names")
        return joint_position(joint_names, dt_s, horizon)
    if preset == EE_POSE_RPY:
        return ee_pose_rpy(dt_s, horizon)
    raise ValueError(f"unknown action space preset {preset!r}; known: {PRESETS}")
