"""Contact ground truth from MuJoCo's contact forces (mj_contactForce).

Reported for the sensing (left) pad against anything it touches, plus whether the
right pad touches the object too (a grasp). Forces are in the pad frame: normal
along the pad's outward normal, shear along image columns (hand x) and image rows
(hand z, toward the fingertip). Slip is the object's velocity relative to the pad at
the contact points, in the pad plane.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

CONTACT_THRESHOLD_N = 0.05  # normal force above which the pad is "in contact"
SLIP_THRESHOLD_MPS = 0.005  # tangential sliding speed above which the contact slips


@dataclasses.dataclass(frozen=True)
class ContactState:
    in_contact: bool  # sensing pad normal force > CONTACT_THRESHOLD_N
    normal_force_n: float  # total normal force on the sensing pad (N)
    shear_n: tuple[float, float]  # tangential force on the pad (N): (columns, rows)
    slip_mps: float  # sliding speed at the sensing pad's contacts (m/s)
    grasped: bool  # both pads touch the object
    object_force_n: float  # total normal force the pads exert on the object (N)

    @property
    def slipping(self) -> bool:
        return self.in_contact and self.slip_mps > SLIP_THRESHOLD_MPS


NO_CONTACT = ContactState(False, 0.0, (0.0, 0.0), 0.0, False, 0.0)


class ContactProbe:
    """Reads the contact state of one model (ids resolved once)."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self._m = model
        self._pad = model.geom("left_pad").id
        self._other_pad = model.geom("right_pad").id
        self._object = model.geom("object").id
        self._pad_body = model.geom_bodyid[self._pad]
        self._wrench = np.zeros(6)

    def _velocity_at(self, data: mujoco.MjData, body: int, point: np.ndarray) -> np.ndarray:
        vel = np.zeros(6)
        mujoco.mj_objectVelocity(self._m, data, mujoco.mjtObj.mjOBJ_BODY, body, vel, 0)
        w, r = vel[:3], point - data.xpos[body]
        # w x r written out: np.cross costs ~50 us a call, this is read every base step
        return vel[3:] + (
            w[1] * r[2] - w[2] * r[1],
            w[2] * r[0] - w[0] * r[2],
            w[0] * r[1] - w[1] * r[0],
        )

    def read(self, data: mujoco.MjData) -> ContactState:
        pad_rot = data.geom_xmat[self._pad].reshape(3, 3)  # columns: pad x, y, z in world
        force_world = np.zeros(3)
        slip_weighted, normal_total, object_force = 0.0, 0.0, 0.0
        other_touches_object = False
        for i in range(data.ncon):
            c = data.contact[i]
            pair = (c.geom1, c.geom2)
            if self._other_pad in pair and self._object in pair:
                mujoco.mj_contactForce(self._m, data, i, self._wrench)
                other_touches_object = other_touches_object or self._wrench[0] > CONTACT_THRESHOLD_N
                object_force += self._wrench[0]
            if self._pad not in pair:
                continue
            mujoco.mj_contactForce(self._m, data, i, self._wrench)
            frame = c.frame.reshape(3, 3)  # rows: normal, tangent1, tangent2 (world)
            f = frame.T @ self._wrench[:3]  # force geom1 exerts on geom2, world frame
            if c.geom2 == self._pad:
                f = -f  # always: the force the pad exerts on the other body
            force_world += f
            normal = float(self._wrench[0])
            normal_total += normal
            if self._object in pair:
                object_force += normal
            other = c.geom2 if c.geom1 == self._pad else c.geom1
            rel = self._velocity_at(data, self._m.geom_bodyid[other], c.pos) - self._velocity_at(
                data, self._pad_body, c.pos
            )
            tangential = rel - np.dot(rel, c.frame[:3]) * c.frame[:3]
            slip_weighted += normal * float(np.linalg.norm(tangential))
        if normal_total <= 0.0:
            return NO_CONTACT
        local = pad_rot.T @ force_world  # force the pad exerts on what it touches, pad frame
        in_contact = normal_total > CONTACT_THRESHOLD_N
        return ContactState(
            in_contact=in_contact,
            normal_force_n=normal_total,
            shear_n=(float(local[0]), float(local[2])),
            slip_mps=slip_weighted / normal_total,
            grasped=in_contact and other_touches_object,
            object_force_n=object_force,
        )
