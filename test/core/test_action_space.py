"""Action space presets."""

from __future__ import annotations

import pytest

from restac_ros.core.action_space import (
    EE_POSE_RPY_NAMES,
    ActionSpace,
    ee_pose_rpy,
    joint_position,
    make_action_space,
)


def test_joint_position_names_are_joint_names() -> None:
    space = make_action_space("joint_position", ["a", "b", "gripper"], dt_s=0.1, horizon=10)
    assert space == joint_position(["a", "b", "gripper"], 0.1, 10)
    assert space.names == ("a", "b", "gripper") and space.dim == 3
    assert not space.is_end_effector


def test_ee_pose_rpy_preset_matches_restacvla_franka() -> None:
    space = make_action_space("ee_pose_rpy")
    assert space == ee_pose_rpy()
    assert space.names == EE_POSE_RPY_NAMES == ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
    assert space.dt_s == pytest.approx(1 / 15) and space.horizon == 50 and space.is_end_effector


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: make_action_space("cartesian_velocity"), "unknown action space preset"),
        (lambda: make_action_space("joint_position"), "needs joint names"),
        (lambda: joint_position(["a", "a"]), "duplicate action names"),
        (lambda: joint_position(["a"], dt_s=0.0), "dt_s must be > 0"),
        (lambda: joint_position(["a"], horizon=0), "horizon must be >= 1"),
        (lambda: ActionSpace("ee_pose_rpy", (), 0.1, 1), "no action names"),
    ],
)
def test_invalid_presets(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_angle_dims() -> None:
    assert ee_pose_rpy().angle_dims == (3, 4, 5)
    assert joint_position(["a", "yaw"]).angle_dims == ()
