"""restac_sim world, task randomisation, command validation, stream schedule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from restac_ros.core.action_space import joint_position
from restac_ros.nodes.chunk_executor import PARAMETERS as EXECUTOR
from restac_ros.nodes.sim_node import PARAMETERS as SIM
from restac_ros.sim.env import (
    BASE_RATE_HZ,
    InvalidCommand,
    SimConfig,
    SimEnv,
    Streams,
    step_stamp_ns,
    validate_command,
)
from restac_ros.sim.task import TaskParams
from restac_ros.sim.world import GRIPPER_MAX_M, HOME_Q, JOINT_NAMES


def test_joint_space_is_the_packages_joint_position_convention() -> None:
    assert (*(f"joint{i}" for i in range(1, 8)), "gripper") == JOINT_NAMES
    space = joint_position(JOINT_NAMES)
    assert space.dim == 8 and not space.is_end_effector


def test_task_randomisation_is_seeded_and_varies() -> None:
    assert TaskParams.from_seed(7) == TaskParams.from_seed(7)
    objs = [TaskParams.from_seed(s).obj for s in range(20)]
    for field in ("x", "y", "yaw", "half_width", "half_height", "mass", "friction"):
        values = [getattr(o, field) for o in objs]
        assert len(set(values)) == 20, field
    assert all(0.05 <= o.mass <= 0.4 and 0.3 <= o.friction <= 1.0 for o in objs)
    with pytest.raises(ValueError, match="seed"):
        TaskParams.from_seed(-1)


def test_reset_puts_the_arm_home_with_the_gripper_open_and_the_box_on_the_table() -> None:
    with SimEnv(SimConfig(render=False)) as env:
        task = env.reset(3)
        q = env.joint_positions()
        np.testing.assert_allclose(q[:7], HOME_Q, atol=1e-12)
        assert q[7] == pytest.approx(GRIPPER_MAX_M)
        for _ in range(BASE_RATE_HZ // 2):  # 0.5 s holding the home command
            env.step()
        np.testing.assert_allclose(env.joint_positions()[:7], HOME_Q, atol=1e-3)
        pos, _ = env.object_pose()
        np.testing.assert_allclose(pos[:2], [task.obj.x, task.obj.y], atol=1e-3)
        assert pos[2] == pytest.approx(task.obj.half_height, abs=2e-3)
        tcp, _ = env.tcp_pose()
        assert tcp[2] > 0.4  # well above the table
        assert not env.contact().in_contact and not env.success


def test_a_joint_command_moves_the_arm_to_it() -> None:
    with SimEnv(SimConfig(render=False)) as env:
        env.reset(0)
        target = np.append(HOME_Q + [0.2, -0.1, 0.0, 0.15, 0.0, 0.1, -0.2], 0.03)
        for _ in range(BASE_RATE_HZ):
            env.step(target)
        np.testing.assert_allclose(env.joint_positions()[:7], target[:7], atol=5e-3)
        assert env.joint_positions()[7] == pytest.approx(0.03, abs=1e-3)


def test_invalid_commands_are_refused_never_clipped_into_motion() -> None:
    with pytest.raises(InvalidCommand, match="7 values"):
        validate_command(HOME_Q)
    bad = np.append(HOME_Q, 0.04)
    bad[2] = np.nan
    with pytest.raises(InvalidCommand, match="non-finite"):
        validate_command(bad)
    far = np.append(HOME_Q, 1.0)
    far[0] = 10.0
    clipped = validate_command(far)
    assert clipped[0] == pytest.approx(2.8973) and clipped[7] == pytest.approx(GRIPPER_MAX_M)
    with SimEnv(SimConfig(render=False)) as env:
        with pytest.raises(RuntimeError, match="reset"):
            env.step()
        env.reset(0)
        with pytest.raises(InvalidCommand):
            env.step(bad)
        np.testing.assert_array_equal(env.command[:7], HOME_Q)  # the last valid command stays


def test_stream_schedule_matches_robot_rates_and_tick_stamps() -> None:
    due = [Streams.at(j) for j in range(BASE_RATE_HZ)]
    assert sum(d.joints for d in due) == 100
    assert sum(d.tactile for d in due) == 30
    assert sum(d.cameras for d in due) == 15
    # camera k lands exactly on core.ticks' stamp of tick k at 15 Hz
    cams = [step_stamp_ns(j) for j, d in enumerate(due) if d.cameras]
    assert cams == [round(k * 1e9 / 15) for k in range(15)]
    assert [step_stamp_ns(j) for j, d in enumerate(due) if d.joints][:3] == [0, 10**7, 2 * 10**7]


def test_config_sim_yaml_matches_the_declared_parameters() -> None:
    config = yaml.safe_load((Path(__file__).parents[2] / "config" / "sim.yaml").read_text())
    sim = config["sim_node"]["ros__parameters"]
    assert set(sim) <= set(SIM)
    for name, value in sim.items():
        assert type(value) is type(SIM[name][0]), name  # typed ROS parameters
    assert 1.0 / config["chunk_executor"]["ros__parameters"]["control_rate_hz"] == (
        sim["command_period_s"]
    )
    assert set(config["chunk_executor"]["ros__parameters"]) - {"use_sim_time"} <= set(EXECUTOR)


def test_sim_layer_is_ros_free() -> None:
    import subprocess
    import sys

    code = (
        "import sys, restac_ros.sim.recorder, restac_ros.sim.cli\n"
        "assert not [m for m in sys.modules if m.startswith('rclpy')], 'rclpy imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
