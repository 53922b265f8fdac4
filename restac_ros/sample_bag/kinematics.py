"""Kinematics of the synthetic 7-joint arm and its parallel gripper.

The arm is a simplified Panda-like chain: joint1 yaws the whole arm about the
base z axis; joint2 (shoulder), joint4 (elbow) and joint6 (wrist) pitch in the
vertical plane of joint1, so the fingertip position follows from (q1, q2, q4,
q6) by planar forward kinematics. joint7 rolls the hand about its (vertical)
axis, setting the closing direction of the fingers. joint3 and joint5 are
redundant upper-arm/forearm rolls: the teacher keeps them on a smooth posture
rule and the renderer ignores their (small) effect. Units: metres, radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

JOINT_NAMES: tuple[str, ...] = (
    "joint1",
    "joint2",
    "joint3",
    "joint4",
    "joint5",
    "joint6",
    "joint7",
    "gripper",
)

SHOULDER_Z = 0.333  # shoulder pivot above the table (the base stands on the table)
L_UPPER = 0.40  # shoulder -> elbow
L_FORE = 0.40  # elbow -> wrist pivot
L_HAND = 0.22  # wrist pivot -> fingertip plane (hand points straight down)

FINGER_LEN = 0.055  # fingertip -> finger root (bottom of the hand body)
HAND_HEIGHT = 0.045  # hand body above the finger roots
HAND_HALF_G = 0.055  # hand body half size along the closing axis
HAND_HALF_T = 0.022  # hand body half size across it
FINGER_HALF_THICK = 0.006  # finger half thickness along the closing axis
FINGER_HALF_WIDTH = 0.012  # finger half width across it
GRIPPER_MAX = 0.09  # widest opening (m between the finger pads)


@dataclass(frozen=True)
class ArmPose:
    """Forward-kinematics result (world frame, z up, table at z=0)."""

    shoulder: tuple[float, float, float]
    elbow: tuple[float, float, float]
    wrist: tuple[float, float, float]
    tip: tuple[float, float, float]
    yaw: float  # direction of the closing axis in the table plane

    @property
    def closing_axis(self) -> tuple[float, float, float]:
        return (math.cos(self.yaw), math.sin(self.yaw), 0.0)

    @property
    def across_axis(self) -> tuple[float, float, float]:
        return (-math.sin(self.yaw), math.cos(self.yaw), 0.0)


def wrap_angle(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def forward(q: list[float] | tuple[float, ...]) -> ArmPose:
    """Joint positions (at least 7) -> link points and hand yaw."""
    q1, q2, q4, q6, q7 = q[0], q[1], q[3], q[5], q[6]
    ux, uy = math.cos(q1), math.sin(q1)
    a1 = q2  # upper arm angle from vertical
    a2 = q2 - q4  # forearm angle from vertical (q4 < 0 flexes the elbow)
    a3 = a2 + q6  # hand angle from vertical (pi = pointing down)
    sh = (0.0, 0.0, SHOULDER_Z)
    r_e, z_e = L_UPPER * math.sin(a1), SHOULDER_Z + L_UPPER * math.cos(a1)
    r_w, z_w = r_e + L_FORE * math.sin(a2), z_e + L_FORE * math.cos(a2)
    r_t, z_t = r_w + L_HAND * math.sin(a3), z_w + L_HAND * math.cos(a3)
    return ArmPose(
        shoulder=sh,
        elbow=(r_e * ux, r_e * uy, z_e),
        wrist=(r_w * ux, r_w * uy, z_w),
        tip=(r_t * ux, r_t * uy, z_t),
        yaw=wrap_angle(q1 + q7),
    )


def inverse(x: float, y: float, z: float, yaw: float) -> list[float]:
    """Fingertip position + closing-axis yaw -> 7 arm joint positions.

    Elbow-up solution with the hand pointing straight down.
    """
    q1 = math.atan2(y, x)
    r = math.hypot(x, y)
    dz = z + L_HAND - SHOULDER_Z
    d = math.hypot(r, dz)
    d = min(max(d, abs(L_UPPER - L_FORE) + 1e-6), L_UPPER + L_FORE - 1e-6)
    theta = math.atan2(r, dz)
    alpha = math.acos((L_UPPER**2 + d * d - L_FORE**2) / (2.0 * L_UPPER * d))
    beta = math.acos((L_FORE**2 + d * d - L_UPPER**2) / (2.0 * L_FORE * d))
    a1 = theta - alpha
    a2 = theta + beta
    q2 = a1
    q4 = -(a2 - a1)
    q6 = math.pi - a2
    q7 = wrap_angle(yaw - q1)
    # Redundant rolls on a smooth posture rule (kept small, never constant).
    q3 = 0.25 * q1 - 0.1 * (q2 - 0.3)
    q5 = -0.15 * q1 + 0.2 * (q4 + 2.0)
    return [q1, q2, q3, q4, q5, q6, q7]
