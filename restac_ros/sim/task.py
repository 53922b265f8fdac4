"""The grasp-and-lift task: seeded randomisation, prompt and success.

The box's pose and size are visible; its mass and friction are not, and they decide
how hard the gripper must squeeze (normal force >= m g / (2 mu)). Too light a grip and
the box slides down between the pads during the lift: a slip the cameras barely see
(millimetres, behind the fingers) and the tactile shear shows at once.
"""

from __future__ import annotations

import dataclasses
import random

from .world import ObjectParams

PROMPT = "pick up the red box and lift it"
LIFT_HEIGHT_M = 0.05  # box bottom above the table for success
HOLD_S = 0.5  # ... held that long, still between both pads


@dataclasses.dataclass(frozen=True)
class TaskParams:
    seed: int
    obj: ObjectParams
    prompt: str = PROMPT

    @classmethod
    def from_seed(cls, seed: int) -> TaskParams:
        if not 0 <= int(seed) < 2**32:
            raise ValueError(f"seed must be in [0, 2^32), got {seed}")
        rng = random.Random(int(seed))  # stdlib RNG: stable across numpy versions
        obj = ObjectParams(
            # A small pose spread (+-1 cm, +-0.1 rad): where the box is matters little;
            # its width, mass and friction (how to close and squeeze) are what varies.
            x=rng.uniform(0.49, 0.51),
            y=rng.uniform(-0.01, 0.01),
            yaw=rng.uniform(-0.1, 0.1),
            half_width=rng.uniform(0.017, 0.026),
            half_depth=rng.uniform(0.006, 0.010),  # a bar narrower than the pad: a stripe
            half_height=rng.uniform(0.025, 0.04),
            mass=rng.uniform(0.05, 0.4),
            friction=rng.uniform(0.3, 1.0),
        )
        return cls(int(seed), obj)

    def as_dict(self) -> dict:
        return {"seed": self.seed, "prompt": self.prompt, **dataclasses.asdict(self.obj)}


class SuccessMonitor:
    """Success = the box bottom >= LIFT_HEIGHT_M above the table, gripped by both pads,
    continuously for HOLD_S of sim time. Fed once per base step."""

    def __init__(self, half_height: float) -> None:
        self._half_height = half_height
        self._held_since_ns: int | None = None
        self.success_ns: int | None = None

    def update(self, t_ns: int, object_z: float, both_pads_touch: bool) -> None:
        lifted = object_z - self._half_height >= LIFT_HEIGHT_M and both_pads_touch
        if not lifted:
            self._held_since_ns = None
            return
        if self._held_since_ns is None:
            self._held_since_ns = t_ns
        if self.success_ns is None and t_ns - self._held_since_ns >= HOLD_S * 1e9:
            self.success_ns = t_ns

    @property
    def success(self) -> bool:
        return self.success_ns is not None
