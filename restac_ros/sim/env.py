"""SimEnv: the gym-like core (reset / step / sense) every driver shares.

One base step = 1/BASE_RATE_HZ s of sim time (SUBSTEPS physics steps). The streams a
robot publishes are due on fixed base steps (`Streams`), stamped like
`restac_ros.core.ticks`: step j at origin + round(j * 1e9 / BASE_RATE_HZ), so the
15 Hz cameras land exactly on the policy's tick stamps. The recorder, sim_node and
(later) the closed-loop runner all drive this class: same seed and same commands ->
identical frames and joints.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from .contact import NO_CONTACT, ContactProbe, ContactState
from .render import SimRenderer
from .tactile import TactileConfig, TactileShader, indentation_from_depth
from .task import SuccessMonitor, TaskParams
from .world import (
    ARM_LOWER,
    ARM_UPPER,
    GRIPPER_MAX_M,
    HOME_Q,
    JOINT_NAMES,
    build_mjcf,
)

BASE_RATE_HZ = 300
SUBSTEPS = 2  # physics timestep 1/600 s
JOINT_RATE_HZ = 100
TACTILE_RATE_HZ = 30
CAMERA_RATE_HZ = 15
COMMAND_LOWER = np.append(ARM_LOWER, 0.0)
COMMAND_UPPER = np.append(ARM_UPPER, GRIPPER_MAX_M)
HOME_COMMAND = np.append(HOME_Q, GRIPPER_MAX_M)


def step_stamp_ns(step: int, origin_ns: int = 0) -> int:
    return origin_ns + round(step * 1e9 / BASE_RATE_HZ)


@dataclasses.dataclass(frozen=True)
class Streams:
    """Which robot streams are due at a base step."""

    joints: bool
    tactile: bool
    cameras: bool

    @staticmethod
    def at(step: int) -> Streams:
        return Streams(
            joints=step % (BASE_RATE_HZ // JOINT_RATE_HZ) == 0,
            tactile=step % (BASE_RATE_HZ // TACTILE_RATE_HZ) == 0,
            cameras=step % (BASE_RATE_HZ // CAMERA_RATE_HZ) == 0,
        )


@dataclasses.dataclass(frozen=True)
class SimConfig:
    tactile: TactileConfig = TactileConfig()
    render: bool = True  # False: physics and ground truth only (no GL context)


class InvalidCommand(ValueError):
    pass


def validate_command(command) -> np.ndarray:
    """[joint1..7 (rad), gripper gap (m)] -> float64 [8], clipped to the joint limits.

    Raises InvalidCommand for a wrong length or a non-finite value (never clipped away).
    """
    cmd = np.asarray(command, dtype=np.float64).reshape(-1)
    if cmd.shape != (len(JOINT_NAMES),):
        raise InvalidCommand(f"command has {cmd.size} values, expected {len(JOINT_NAMES)}")
    if not np.all(np.isfinite(cmd)):
        raise InvalidCommand(f"command holds non-finite values: {cmd.tolist()}")
    return np.clip(cmd, COMMAND_LOWER, COMMAND_UPPER)


class SimEnv:
    """reset(seed) -> step(command) ... ; sense_* read the state after the last step."""

    def __init__(self, config: SimConfig = SimConfig()) -> None:
        self.config = config
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self.task: TaskParams | None = None
        self.step_index = 0
        self._renderer: SimRenderer | None = None
        self._shader = TactileShader(config.tactile) if config.render else None
        self._probe: ContactProbe | None = None
        self._success: SuccessMonitor | None = None
        self._command = HOME_COMMAND.copy()
        self._contact = NO_CONTACT

    # --- lifecycle -------------------------------------------------------------------
    def reset(self, seed: int) -> TaskParams:
        """A new seeded world at the home pose, gripper open, t = 0."""
        self.close()
        self.task = TaskParams.from_seed(seed)
        self.model = mujoco.MjModel.from_xml_string(
            build_mjcf(self.task.obj, 1.0 / (BASE_RATE_HZ * SUBSTEPS))
        )
        self.data = mujoco.MjData(self.model)
        self._command = HOME_COMMAND.copy()
        self.data.qpos[:7] = HOME_Q
        self.data.qpos[7:9] = GRIPPER_MAX_M / 2
        self._apply(self._command)
        mujoco.mj_forward(self.model, self.data)
        self._probe = ContactProbe(self.model)
        self._contact = self._probe.read(self.data)
        self._success = SuccessMonitor(self.task.obj.half_height)
        if self.config.render:
            self._renderer = SimRenderer(self.model, self.config.tactile.shape)
        self.step_index = 0
        return self.task

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> SimEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- stepping --------------------------------------------------------------------
    def _apply(self, cmd: np.ndarray) -> None:
        self.data.ctrl[:7] = cmd[:7]
        self.data.ctrl[7:9] = cmd[7] / 2  # each finger moves half the gap

    def step(self, command=None) -> Streams:
        """Advance one base step holding `command` (None: keep the last one).

        Returns which streams are due at the new step.
        """
        self._require()
        if command is not None:
            self._command = validate_command(command)
        self._apply(self._command)
        for _ in range(SUBSTEPS):
            mujoco.mj_step(self.model, self.data)
        self.step_index += 1
        self._contact = self._probe.read(self.data)
        self._success.update(
            self.time_ns, float(self.data.body("object").xpos[2]), self._contact.grasped
        )
        return Streams.at(self.step_index)

    # --- sensing ---------------------------------------------------------------------
    @property
    def time_ns(self) -> int:
        return step_stamp_ns(self.step_index)

    def streams_due(self) -> Streams:
        """The robot streams due at the current step (all of them at t = 0)."""
        return Streams.at(self.step_index)

    @property
    def command(self) -> np.ndarray:
        return self._command.copy()

    def joint_positions(self) -> np.ndarray:
        """[joint1..7 (rad), gripper gap (m)] measured."""
        self._require()
        q = self.data.qpos
        return np.append(q[:7], q[7] + q[8])

    def joint_velocities(self) -> np.ndarray:
        v = self.data.qvel
        return np.append(v[:7], v[7] + v[8])

    def contact(self) -> ContactState:
        """Contact ground truth after the last step."""
        self._require()
        return self._contact

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        body = self.data.body("object")
        return body.xpos.copy(), body.xquat.copy()

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        site = self.data.site("tcp")
        return site.xpos.copy(), site.xmat.reshape(3, 3).copy()

    @property
    def diverged(self) -> bool:
        """MuJoCo met NaN/huge accelerations (and reset the state): the episode is void."""
        return self.data is not None and (
            self.data.warning[mujoco.mjtWarning.mjWARN_BADQACC].number > 0
        )

    @property
    def success(self) -> bool:
        return self._success is not None and self._success.success

    @property
    def success_ns(self) -> int | None:
        return None if self._success is None else self._success.success_ns

    def render_cameras(self) -> dict[str, np.ndarray]:
        return self._need_renderer().cameras(self.data)

    def tactile_depth(self) -> np.ndarray:
        return self._need_renderer().tactile_depth(self.data)

    def render_tactile(self, depth: np.ndarray | None = None) -> np.ndarray:
        """uint8 [rows, cols, 3] GelSight-style image of the sensing pad."""
        depth = self.tactile_depth() if depth is None else depth
        return self._shader.render(indentation_from_depth(depth), self.contact().shear_n)

    def _need_renderer(self) -> SimRenderer:
        self._require()
        if self._renderer is None:
            raise RuntimeError("SimEnv was built with render=False")
        return self._renderer

    def _require(self) -> None:
        if self.data is None:
            raise RuntimeError("call SimEnv.reset(seed) first")
