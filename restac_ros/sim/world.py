"""The MJCF world: table, a 7-joint Panda-like arm, a parallel gripper with gel pads, one box.

Hand-written from simple shapes (no assets). The arm's kinematic chain follows the
published Franka Emika Panda link offsets so the joint space is the package's
`joint_position` convention (joint1..joint7 + gripper). Geom groups split what each
renderer sees: 0 table, 1 arm (visual only), 2 task object, 3 fingers and pads
(the tactile depth camera sees groups 0 and 2 only, from behind the pad surface).

The task (see `task.py`): grasp the box and lift it. Its mass and friction are
randomised and invisible to the cameras; how hard to squeeze, and whether the box
slips, only touch can tell.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

ARM_JOINTS: tuple[str, ...] = tuple(f"joint{i}" for i in range(1, 8))
GRIPPER = "gripper"
JOINT_NAMES: tuple[str, ...] = (*ARM_JOINTS, GRIPPER)
# Panda "ready" pose: hand 0.59 m above the table, fingers pointing down.
HOME_Q = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
ARM_LOWER = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
ARM_UPPER = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
ARM_KP = (4500, 4500, 3500, 3500, 2000, 2000, 2000)  # position gains (N m / rad)
GRIPPER_MAX_M = 0.08  # gripper value = distance between the two pad surfaces (m)
PAD_HALF = (0.010, 0.0125)  # gel sensing area half extents (m): image rows (z), columns (x)
PAD_Z = 0.045  # pad centre along the finger (finger frame z)
PAD_THICKNESS = 0.003  # gel layer (m)
TACTILE_CAM_BACKOFF = 0.004  # tactile depth camera sits this far behind the pad surface
CAMERAS: tuple[str, ...] = ("base", "left_wrist", "right_wrist")
TACTILE_CAMERA = "tactile_left"
OBJECT_COLOR = "0.85 0.25 0.2 1"


@dataclasses.dataclass(frozen=True)
class ObjectParams:
    """The seeded task object (a box standing on the table)."""

    x: float
    y: float
    yaw: float
    half_width: float  # along the gripper's closing axis (box y) (m)
    half_depth: float  # across the pads (box x, the tactile image columns) (m)
    half_height: float
    mass: float  # kg
    friction: float  # sliding friction coefficient


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _pad_geoms(side: str, sign: int) -> str:
    """Finger body content: the finger, its gel pad on the inner face, the tactile camera.

    sign = -1 for the left finger (on the hand's -y side), +1 for the right one. In the
    finger frame the pad surface is the plane y = 0 (the gripper's centre plane when the
    finger joint is 0) and the gel lies behind it, toward `sign`.
    """
    t = PAD_THICKNESS
    cam = ""
    if side == "left":
        # Orthographic depth camera behind the pad surface, looking at it (toward +y);
        # image rows run along the finger (hand z), columns along hand x.
        cam = (
            f'<camera name="{TACTILE_CAMERA}" pos="0 {-TACTILE_CAM_BACKOFF:.6g} {PAD_Z:.6g}" '
            f'projection="orthographic" fovy="{2 * PAD_HALF[0]:.6g}" xyaxes="1 0 0 0 0 1"/>'
        )
    return f"""
          <geom name="{side}_finger" type="box" size="0.0135 0.006 0.028"
                pos="0 {sign * (t + 0.006):.6g} 0.03" group="3" rgba="0.25 0.25 0.28 1"
                friction="0.3 0.01 0.001"/>
          <geom name="{side}_pad" type="box" size="{PAD_HALF[1]:.6g} {t / 2:.6g} {PAD_HALF[0]:.6g}"
                pos="0 {sign * t / 2:.6g} {PAD_Z:.6g}" group="3" rgba="0.75 0.75 0.7 1"
                class="gel"/>
          <site name="{side}_pad_site" pos="0 0 {PAD_Z:.6g}" size="0.002"/>
          {cam}"""


def build_mjcf(obj: ObjectParams, timestep: float) -> str:
    """The whole world as an MJCF string (deterministic for the same arguments)."""
    quat_obj = (math.cos(obj.yaw / 2), 0.0, 0.0, math.sin(obj.yaw / 2))
    link = 'type="capsule" group="1" contype="0" conaffinity="0" rgba="0.92 0.92 0.94 1"'
    left, right = _pad_geoms("left", -1), _pad_geoms("right", 1)
    size = _fmt((obj.half_depth, obj.half_width, obj.half_height))
    arm_actuators = "\n".join(
        f'    <position name="a{i + 1}" joint="{name}" kp="{kp}" kv="{kp / 10:g}" '
        f'ctrlrange="{ARM_LOWER[i]} {ARM_UPPER[i]}"/>'
        for i, (name, kp) in enumerate(zip(ARM_JOINTS, ARM_KP, strict=True))
    )
    return f"""
<mujoco model="restac_sim">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep:.9g}" cone="elliptic" impratio="10" integrator="implicitfast"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <map znear="0.0005" zfar="10"/>
    <global offwidth="320" offheight="320"/>
  </visual>
  <default>
    <joint damping="2" armature="0.1"/>
    <geom solref="0.01 1" solimp="0.95 0.99 0.001"/>
    <default class="gel">
      <!-- soft elastomer: ~1 mm of indentation at a few newtons; low friction so that the
           box's (MuJoCo takes the larger of the two) decides the grip -->
      <geom solref="0.02 0.8" solimp="0.1 0.95 0.004" friction="0.3 0.02 0.001"/>
    </default>
    <position ctrllimited="true"/>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.55 0.45 0.35" rgb2="0.5 0.4 0.3"
             width="256" height="256"/>
    <material name="wood" texture="grid" texrepeat="6 6"/>
  </asset>
  <worldbody>
    <light name="sun" directional="true" pos="0.5 -0.5 1.5" dir="-0.3 0.3 -1" castshadow="false"/>
    <geom name="table" type="box" size="0.8 0.6 0.02" pos="0.4 0 -0.02" material="wood" group="0"/>
    <camera name="base" pos="1.05 0.0 0.45" xyaxes="0 1 0 -0.555 0 0.832" fovy="50"/>
    <body name="link0">
      <geom type="cylinder" size="0.06 0.05" pos="0 0 0.05" group="1" contype="0" conaffinity="0"
            rgba="0.92 0.92 0.94 1"/>
      <body name="link1" pos="0 0 0.333" gravcomp="1">
        <joint name="joint1" axis="0 0 1" range="{ARM_LOWER[0]} {ARM_UPPER[0]}"/>
        <geom {link} size="0.055" fromto="0 0 -0.2 0 0 0"/>
        <body name="link2" quat="0.7071068 -0.7071068 0 0" gravcomp="1">
          <joint name="joint2" axis="0 0 1" range="{ARM_LOWER[1]} {ARM_UPPER[1]}"/>
          <geom {link} size="0.055" fromto="0 0 0 0 -0.25 0"/>
          <body name="link3" pos="0 -0.316 0" quat="0.7071068 0.7071068 0 0" gravcomp="1">
            <joint name="joint3" axis="0 0 1" range="{ARM_LOWER[2]} {ARM_UPPER[2]}"/>
            <geom {link} size="0.05" fromto="0 0 -0.1 0.0825 0 0"/>
            <body name="link4" pos="0.0825 0 0" quat="0.7071068 0.7071068 0 0" gravcomp="1">
              <joint name="joint4" axis="0 0 1" range="{ARM_LOWER[3]} {ARM_UPPER[3]}"/>
              <geom {link} size="0.05" fromto="0 0 0 -0.0825 0.3 0"/>
              <body name="link5" pos="-0.0825 0.384 0" quat="0.7071068 -0.7071068 0 0" gravcomp="1">
                <joint name="joint5" axis="0 0 1" range="{ARM_LOWER[4]} {ARM_UPPER[4]}"/>
                <geom {link} size="0.045" fromto="0 0 -0.22 0 0 0"/>
                <body name="link6" quat="0.7071068 0.7071068 0 0" gravcomp="1">
                  <joint name="joint6" axis="0 0 1" range="{ARM_LOWER[5]} {ARM_UPPER[5]}"/>
                  <geom {link} size="0.04" fromto="0 0 0 0.088 0 0"/>
                  <body name="link7" pos="0.088 0 0" quat="0.7071068 0.7071068 0 0" gravcomp="1">
                    <joint name="joint7" axis="0 0 1" range="{ARM_LOWER[6]} {ARM_UPPER[6]}"/>
                    <geom {link} size="0.035" fromto="0 0 -0.02 0 0 0.09"/>
                    <body name="hand" pos="0 0 0.107" quat="0.9238795 0 0 -0.3826834" gravcomp="1">
                      <geom type="box" size="0.025 0.09 0.025" pos="0 0 0.02" group="1"
                            contype="0" conaffinity="0" rgba="0.92 0.92 0.94 1"/>
                      <camera name="left_wrist" pos="0.09 0 0.03" fovy="75"
                              xyaxes="0 -1 0 -0.707 0 -0.707"/>
                      <camera name="right_wrist" pos="-0.09 0 0.03" fovy="75"
                              xyaxes="0 1 0 0.707 0 -0.707"/>
                      <site name="tcp" pos="0 0 0.1034" size="0.004"/>
                      <body name="left_finger" pos="0 0 0.0584" gravcomp="1">
                        <joint name="finger_left" type="slide" axis="0 -1 0" range="0 0.043"
                               damping="20" armature="0.01"/>
                        {left}
                      </body>
                      <body name="right_finger" pos="0 0 0.0584" gravcomp="1">
                        <joint name="finger_right" type="slide" axis="0 1 0" range="0 0.043"
                               damping="20" armature="0.01"/>
                        {right}
                      </body>
                    </body>
                  </body>
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>
    <body name="object" pos="{obj.x:.6g} {obj.y:.6g} {obj.half_height:.6g}" quat="{_fmt(quat_obj)}">
      <freejoint name="object_free"/>
      <geom name="object" type="box" size="{size}"
            mass="{obj.mass:.6g}" friction="{obj.friction:.6g} 0.01 0.001" group="2"
            rgba="{OBJECT_COLOR}"/>
    </body>
  </worldbody>
  <contact>
    <exclude body1="left_finger" body2="right_finger"/>
  </contact>
  <actuator>
{arm_actuators}
    <!-- finger joint = half the pad gap: squeezing past contact costs kp newtons per metre -->
    <position name="finger_left" joint="finger_left" kp="800" kv="10" ctrlrange="0 0.043"
              forcerange="-25 25"/>
    <position name="finger_right" joint="finger_right" kp="800" kv="10" ctrlrange="0 0.043"
              forcerange="-25 25"/>
  </actuator>
</mujoco>
"""
