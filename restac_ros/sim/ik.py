"""Damped least-squares inverse kinematics of the arm's tool point (for the scripted expert).

Runs on its own MjData (kinematics only), so it never disturbs the simulation.
"""

from __future__ import annotations

import mujoco
import numpy as np

from .world import ARM_LOWER, ARM_UPPER, HOME_Q

DAMPING = 1e-3
NULLSPACE_GAIN = 0.1  # pull toward the home pose in the arm's redundant direction
MAX_STEP_RAD = 0.2


def down_rotation(yaw: float) -> np.ndarray:
    """Tool frame with the fingers pointing down and the closing axis at `yaw`."""
    c, s = np.cos(yaw), np.sin(yaw)
    # columns: tool x, y, z in world; at yaw 0 this is the home pose's tool frame
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])


class ArmIK:
    def __init__(self, model: mujoco.MjModel) -> None:
        self._m = model
        self._d = mujoco.MjData(model)
        self._site = model.site("tcp").id
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def solve(
        self,
        target_pos: np.ndarray,
        target_rot: np.ndarray,
        q_start: np.ndarray,
        iterations: int = 60,
        tol: float = 1e-5,
    ) -> np.ndarray:
        """Arm joints [7] placing the tcp site at target_pos with rotation target_rot."""
        q = np.clip(np.asarray(q_start, dtype=np.float64), ARM_LOWER, ARM_UPPER)
        target_quat = np.zeros(4)
        mujoco.mju_mat2Quat(target_quat, np.ascontiguousarray(target_rot).reshape(-1))
        quat, err_rot = np.zeros(4), np.zeros(3)
        for _ in range(iterations):
            self._d.qpos[:7] = q
            mujoco.mj_kinematics(self._m, self._d)
            mujoco.mj_comPos(self._m, self._d)
            err_pos = target_pos - self._d.site_xpos[self._site]
            mujoco.mju_mat2Quat(quat, self._d.site_xmat[self._site])
            mujoco.mju_subQuat(err_rot, target_quat, quat)  # in the current tool frame
            err = np.concatenate([err_pos, self._d.site_xmat[self._site].reshape(3, 3) @ err_rot])
            if float(err @ err) < tol * tol:
                break
            mujoco.mj_jacSite(self._m, self._d, self._jacp, self._jacr, self._site)
            jac = np.vstack([self._jacp[:, :7], self._jacr[:, :7]])
            jjt = jac @ jac.T + DAMPING * np.eye(6)
            dq = jac.T @ np.linalg.solve(jjt, err)
            null = np.eye(7) - jac.T @ np.linalg.solve(jjt, jac)
            dq += null @ (NULLSPACE_GAIN * (HOME_Q - q))
            scale = max(1.0, float(np.abs(dq).max()) / MAX_STEP_RAD)
            q = np.clip(q + dq / scale, ARM_LOWER, ARM_UPPER)
        return q

    def tcp(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._d.qpos[:7] = q
        mujoco.mj_kinematics(self._m, self._d)
        pos, mat = self._d.site_xpos[self._site], self._d.site_xmat[self._site]
        return pos.copy(), mat.reshape(3, 3).copy()
