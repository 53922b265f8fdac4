"""Cameras, tactile depth and GelSight shading; determinism of frames and joints."""

from __future__ import annotations

import numpy as np
import pytest

from restac_ros.sim.env import SimConfig, SimEnv
from restac_ros.sim.expert import ScriptedExpert
from restac_ros.sim.ik import ArmIK
from restac_ros.sim.tactile import TactileConfig, TactileShader, indentation_from_depth
from restac_ros.sim.world import PAD_THICKNESS, TACTILE_CAM_BACKOFF

TICK_STEPS = 20


def run_expert(env: SimEnv, ticks: int) -> ScriptedExpert:
    expert = ScriptedExpert(ArmIK(env.model), env.task.obj)
    for _ in range(ticks):
        cmd = expert.act(env.tcp_pose()[0], env.joint_positions()[7], env.contact())
        for _ in range(TICK_STEPS):
            env.step(cmd)
    return expert


def snapshot(seed: int, ticks: int) -> tuple[np.ndarray, dict, np.ndarray]:
    with SimEnv() as env:
        env.reset(seed)
        run_expert(env, ticks)
        return env.joint_positions(), env.render_cameras(), env.render_tactile()


def test_cameras_are_224_rgb_and_see_the_box() -> None:
    with SimEnv() as env:
        env.reset(0)
        views = env.render_cameras()
        assert set(views) == {"base", "left_wrist", "right_wrist"}
        for img in views.values():
            assert img.shape == (224, 224, 3) and img.dtype == np.uint8
            assert img.std() > 10  # not a blank frame
        red = lambda img: int(((img[..., 0] > 150) & (img[..., 1] < 100)).sum())
        assert red(views["base"]) > 20  # the red box is in the base view


def test_same_seed_gives_identical_frames_and_joints_other_seed_differs() -> None:
    q1, cams1, tac1 = snapshot(5, 45)
    q2, cams2, tac2 = snapshot(5, 45)
    np.testing.assert_array_equal(q1, q2)
    for name in cams1:
        np.testing.assert_array_equal(cams1[name], cams2[name])
    np.testing.assert_array_equal(tac1, tac2)
    q3, cams3, _ = snapshot(6, 45)
    assert not np.array_equal(q1, q3) and not np.array_equal(cams1["base"], cams3["base"])


def test_touch_shows_in_the_tactile_image_and_the_ground_truth() -> None:
    with SimEnv() as env:
        env.reset(0)
        free = env.render_tactile()
        assert float(indentation_from_depth(env.tactile_depth()).max()) == 0.0
        expert = run_expert(env, 62)  # closed on the box, squeezing
        assert expert.state.phase in ("squeeze", "lift")
        contact = env.contact()
        assert contact.in_contact and contact.grasped and contact.normal_force_n > 0.5
        indentation = indentation_from_depth(env.tactile_depth())
        assert 2e-4 < float(indentation.max()) <= PAD_THICKNESS
        pressed = env.render_tactile()
        changed = np.abs(pressed.astype(int) - free.astype(int)).max(axis=-1) > 20
        # the bar is narrower than the pad: a stripe, not the whole pad
        assert 0.05 < changed.mean() < 0.9


def test_shader_physics_and_shapes() -> None:
    depth = np.full((128, 160), 1.0, np.float32)  # nothing near the pad
    depth[40:90, 60:100] = TACTILE_CAM_BACKOFF - 0.001  # 1 mm indentation
    ind = indentation_from_depth(depth)
    assert ind.max() == pytest.approx(0.001) and ind[0, 0] == 0.0
    shader = TactileShader(TactileConfig(markers=False))
    flat = shader.render(np.zeros((128, 160), np.float32))
    img = shader.render(ind)
    # flat regions keep the background; the edges of the indentation light up by LED colour
    np.testing.assert_array_equal(img[:20], flat[:20])
    assert np.abs(img.astype(int) - flat.astype(int))[35:95, 55:105].max() > 40
    with pytest.raises(ValueError, match="indentation map"):
        shader.render(np.zeros((240, 320), np.float32))
    with pytest.raises(ValueError, match="tactile shape"):
        TactileConfig(shape=(100, 100))
    big = TactileShader(TactileConfig(shape=(240, 320)))
    assert big.render(np.zeros((240, 320), np.float32)).shape == (240, 320, 3)


def test_markers_move_with_shear() -> None:
    shader = TactileShader()
    ind = np.full((128, 160), 0.001, np.float32)
    still = shader.render(ind, (0.0, 0.0))
    dragged = shader.render(ind, (0.0, 3.0))
    assert not np.array_equal(still, dragged)


def test_tactile_240x320_option_renders_from_the_sim() -> None:
    with SimEnv(SimConfig(tactile=TactileConfig(shape=(240, 320)))) as env:
        env.reset(0)
        assert env.render_tactile().shape == (240, 320, 3)
