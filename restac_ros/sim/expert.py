"""The scripted expert: a 15 Hz state machine whose grip is decided by touch.

It knows the box's pose (as a vision system would) but not its mass or friction.
It closes until the sensing pad reports contact, squeezes lightly, and lifts slowly;
whenever the contact slips it stops rising and squeezes harder. The demonstrations
therefore carry the behaviour the tactile branch exists for: the grip force and the
lift timing follow the touch signal, not the pictures.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .contact import ContactState
from .ik import ArmIK, down_rotation
from .world import GRIPPER_MAX_M, HOME_Q, ObjectParams

TICK_HZ = 15
DT = 1.0 / TICK_HZ
MOVE_SPEED = 0.25  # m/s, free motion of the tool point
DESCEND_SPEED = 0.10
LIFT_SPEED = 0.05
CLOSE_SPEED = 0.04  # m/s of gap, guarded closing until touch
HOVER_M = 0.08  # tool point above the box top before descending
LIFT_M = 0.10
FIRST_SQUEEZE_M = 0.004  # gap reduction past contact: a light first grip
SQUEEZE_STEP_M = 0.002  # extra squeeze on each slipping tick
SETTLE_TICKS = 4  # ticks to let the grip settle before lifting
PHASES = ("approach", "descend", "close", "squeeze", "lift", "hold")


@dataclasses.dataclass
class ExpertState:
    phase: str = "approach"
    target: np.ndarray | None = None  # tool point target (m)
    gap: float = GRIPPER_MAX_M
    contact_gap: float | None = None
    settle: int = 0
    slip_ticks: int = 0


class ScriptedExpert:
    def __init__(
        self, ik: ArmIK, obj: ObjectParams, squeeze_step_m: float = SQUEEZE_STEP_M
    ) -> None:
        """squeeze_step_m: extra squeeze per slipping tick (0: ignore touch after grasping,
        the touch-blind ablation)."""
        self._ik = ik
        self._squeeze_step = float(squeeze_step_m)
        self._obj = obj
        self._rot = down_rotation(obj.yaw)
        self._q = HOME_Q.copy()
        self.state = ExpertState()
        self.events: list[tuple[str, int]] = []  # (phase entered, tick)
        self._tick = 0
        grasp_z = max(obj.half_height, 0.022)  # fingertips stay clear of the table
        self._grasp = np.array([obj.x, obj.y, grasp_z])
        self._hover = self._grasp + [0.0, 0.0, obj.half_height + HOVER_M]
        self._open_gap = min(GRIPPER_MAX_M, 2 * obj.half_width + 0.03)

    def _enter(self, phase: str) -> None:
        self.state.phase = phase
        self.events.append((phase, self._tick))

    def _move_toward(self, goal: np.ndarray, speed: float) -> bool:
        """Advance the tool target toward goal at speed; True once there."""
        delta = goal - self.state.target
        dist = float(np.linalg.norm(delta))
        step = speed * DT
        self.state.target = goal.copy() if dist <= step else self.state.target + delta * step / dist
        return dist <= step

    def act(self, tcp_pos: np.ndarray, gap: float, contact: ContactState) -> np.ndarray:
        """One tick: measured tool point (m), gripper gap (m), touch -> command [8]."""
        s = self.state
        if s.target is None:
            s.target = np.asarray(tcp_pos, dtype=np.float64).copy()
            self.events.append(("approach", 0))
        if s.phase == "approach":
            s.gap = self._open_gap
            if self._move_toward(self._hover, MOVE_SPEED):
                self._enter("descend")
        elif s.phase == "descend":
            if self._move_toward(self._grasp, DESCEND_SPEED):
                self._enter("close")
        elif s.phase == "close":
            if contact.in_contact:
                s.contact_gap = gap
                s.gap = gap - FIRST_SQUEEZE_M
                s.settle = SETTLE_TICKS
                self._enter("squeeze")
            else:
                s.gap = max(0.0, s.gap - CLOSE_SPEED * DT)
        elif s.phase == "squeeze":
            s.settle -= 1
            if s.settle <= 0:
                self._enter("lift")
        elif s.phase in ("lift", "hold"):
            if contact.slipping or not contact.in_contact:
                # touch says the box is sliding: hold height, grip harder
                s.slip_ticks += 1
                s.gap = max(0.0, s.gap - self._squeeze_step)
            elif s.phase == "lift" and self._move_toward(self._grasp + [0, 0, LIFT_M], LIFT_SPEED):
                self._enter("hold")
        self._q = self._ik.solve(s.target, self._rot, self._q)
        self._tick += 1
        return np.append(self._q, s.gap)
