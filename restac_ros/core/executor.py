"""Chunk execution maths: action chunks + "now" -> one command per control tick.

Pure numpy, no clocks and no ROS: the caller passes every time in ns.

- Latency compensation: a chunk predicted from an observation stamped t0
  holds action k for time t0 + k*dt, so at "now" we play index
  (now - t0) / dt and actions already in the past are skipped.
- Linear interpolation between neighbouring actions.
- Crossfade: when a chunk replaces another, the offset between the last
  command and the new chunk at that instant decays to zero over
  `crossfade_s` (smoothstep), so there is no step at the boundary.
- Hold: past a chunk's last action the executor holds that action (still
  rate-limited, so no jump); with no chunk it repeats the last command. A
  chunk is never extrapolated.
- Limits: position clip and a per-tick rate limit (max_velocity * period).
- Uncertainty guard: a chunk whose logvar exceeds the bound is played slower
  (speed scale) or not at all (hold), as configured; a non-finite logvar is an
  unknown uncertainty and always holds.
- Fail closed: chunk timing is validated (finite dt in (0, MAX_CHUNK_DT_S], bounded
  span, t0 in range), a chunk stamped more than `max_chunk_lead_s` after now is
  refused (it would lock out every real chunk until then), and a seed outside the
  position limits is refused.
- Angles: dimensions listed in `angle_dims` (roll/pitch/yaw of EE spaces) are
  interpolated, blended and rate-limited the short way round and kept in [-pi, pi).
"""

from __future__ import annotations

import dataclasses
import enum
import math

import numpy as np

NS_PER_S = 1_000_000_000
MAX_CHUNK_DT_S = 60.0  # seconds between actions; anything longer is not a control chunk
MAX_CHUNK_SPAN_S = 3600.0  # (horizon - 1) * dt; keeps every time in int64 ns
MAX_T0_NS = 2**62  # a stamp beyond ~146 years after the epoch is not a time


class ExecStatus(enum.StrEnum):
    TRACKING = "tracking"  # following the current chunk
    CROSSFADE = "crossfade"  # blending into a newly arrived chunk
    SLOW_UNCERTAIN = "slow_uncertain"  # logvar above bound: playing slower
    HOLD_UNCERTAIN = "hold_uncertain"  # logvar above bound: holding
    HOLD_CHUNK_END = "hold_chunk_end"  # past the chunk's last action: holding that action
    HOLD_NO_CHUNK = "hold_no_chunk"  # no chunk yet; holding the seeded command
    NO_COMMAND = "no_command"  # nothing to send: no chunk and never seeded


class GuardMode(enum.StrEnum):
    SLOW = "slow"
    HOLD = "hold"


@dataclasses.dataclass(frozen=True)
class Chunk:
    """An action chunk in robot units: actions[k] is due at t0_ns + k * dt_s."""

    t0_ns: int
    dt_s: float
    actions: np.ndarray  # float [H, D]
    logvar: float | None = None
    chunk_id: int = 0

    def __post_init__(self) -> None:
        actions = np.asarray(self.actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] < 1:
            raise ValueError(f"chunk actions must be [H>=1, D>=1], got shape {actions.shape}")
        if not np.all(np.isfinite(actions)):
            raise ValueError(f"chunk {self.chunk_id}: actions contain NaN/inf")
        dt = float(self.dt_s)
        # >= 1 us: a smaller dt is no control rate (and underflows the index maths)
        if not (math.isfinite(dt) and 1e-6 <= dt <= MAX_CHUNK_DT_S):
            raise ValueError(
                f"chunk {self.chunk_id}: dt_s must be finite in [1e-6, {MAX_CHUNK_DT_S}] s, "
                f"got {self.dt_s}"
            )
        span_s = (actions.shape[0] - 1) * dt
        if span_s > MAX_CHUNK_SPAN_S:
            raise ValueError(
                f"chunk {self.chunk_id}: span {span_s:.6g} s exceeds {MAX_CHUNK_SPAN_S} s"
            )
        if not 0 <= int(self.t0_ns) <= MAX_T0_NS:
            raise ValueError(f"chunk {self.chunk_id}: t0_ns {self.t0_ns} out of range")
        object.__setattr__(self, "t0_ns", int(self.t0_ns))
        object.__setattr__(self, "dt_s", dt)
        if self.logvar is not None:
            object.__setattr__(self, "logvar", float(self.logvar))
        object.__setattr__(self, "actions", actions)

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[0])

    @property
    def end_ns(self) -> int:
        """Time of the last action."""
        return self.t0_ns + round((self.horizon - 1) * self.dt_s * NS_PER_S)


@dataclasses.dataclass(frozen=True)
class ExecutorConfig:
    """control_period_s: tick period; limits are per dimension (None = unlimited)."""

    control_period_s: float
    crossfade_s: float = 0.2
    position_min: np.ndarray | None = None
    position_max: np.ndarray | None = None
    max_velocity: np.ndarray | None = None  # units per second, > 0
    logvar_bound: float | None = None
    guard_mode: GuardMode = GuardMode.SLOW
    guard_speed_scale: float = 0.25  # playback speed in SLOW mode, (0, 1]
    angle_dims: tuple[int, ...] = ()  # dims in radians, wrapped (ActionSpace.angle_dims)
    # A chunk's t0 may be this far after now (clock skew between machines); later: refused.
    max_chunk_lead_s: float = 0.25

    def __post_init__(self) -> None:
        if not (math.isfinite(self.control_period_s) and self.control_period_s > 0):
            raise ValueError(f"control_period_s must be > 0, got {self.control_period_s}")
        if not (math.isfinite(self.crossfade_s) and self.crossfade_s >= 0):
            raise ValueError(f"crossfade_s must be >= 0, got {self.crossfade_s}")
        if not (math.isfinite(self.max_chunk_lead_s) and self.max_chunk_lead_s >= 0):
            raise ValueError(f"max_chunk_lead_s must be >= 0, got {self.max_chunk_lead_s}")
        if self.logvar_bound is not None and not math.isfinite(self.logvar_bound):
            raise ValueError(f"logvar_bound must be finite, got {self.logvar_bound}")
        if not 0 < self.guard_speed_scale <= 1:
            raise ValueError(f"guard_speed_scale must be in (0, 1], got {self.guard_speed_scale}")
        object.__setattr__(self, "guard_mode", GuardMode(self.guard_mode))
        object.__setattr__(self, "angle_dims", tuple(int(i) for i in self.angle_dims))
        for name in ("position_min", "position_max", "max_velocity"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float64).reshape(-1)
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"{name} must be finite: {value}")
                object.__setattr__(self, name, value)
        if self.max_velocity is not None and not np.all(self.max_velocity > 0):
            raise ValueError(f"max_velocity must be > 0 in every dimension: {self.max_velocity}")
        if (
            self.position_min is not None
            and self.position_max is not None
            and np.any(self.position_min > self.position_max)
        ):
            raise ValueError("position_min exceeds position_max in some dimension")


class ChunkVerdict(enum.StrEnum):
    """Why add_chunk refused a chunk."""

    ACCEPTED = "accepted"
    ALREADY_PAST = "already_past"  # its last action is before now
    OLDER_THAN_CURRENT = "older_than_current"  # observed before the chunk being played
    FROM_FUTURE = "from_future"  # t0 more than max_chunk_lead_s after now
    WRONG_DIM = "wrong_dim"  # action width differs from the executor's


@dataclasses.dataclass(frozen=True)
class AddResult:
    """add_chunk's answer; truthy when the chunk was taken."""

    reason: ChunkVerdict
    detail: str = ""

    def __bool__(self) -> bool:
        return self.reason is ChunkVerdict.ACCEPTED


@dataclasses.dataclass(frozen=True)
class Command:
    """One control-tick output. positions is None only with status NO_COMMAND."""

    t_ns: int
    positions: np.ndarray | None
    status: ExecStatus
    chunk_id: int | None = None
    index: float | None = None  # fractional chunk index played (None when holding)
    limited: bool = False  # a position or velocity limit changed the target


def chunk_index(now_ns: int, t0_ns: int, dt_s: float) -> float:
    """Fractional action index due at now (latency compensation)."""
    return (now_ns - t0_ns) / (dt_s * NS_PER_S)


def wrap_angle(x: np.ndarray) -> np.ndarray:
    """Radians -> [-pi, pi)."""
    return (x + np.pi) % (2.0 * np.pi) - np.pi


def difference(a: np.ndarray, b: np.ndarray, angle_dims: tuple[int, ...] = ()) -> np.ndarray:
    """a - b, the short way round in the angle dimensions."""
    d = np.asarray(a, dtype=np.float64) - b
    if angle_dims:
        idx = list(angle_dims)
        d[..., idx] = wrap_angle(d[..., idx])
    return d


def _wrapped(x: np.ndarray, angle_dims: tuple[int, ...]) -> np.ndarray:
    if angle_dims:
        idx = list(angle_dims)
        x[..., idx] = wrap_angle(x[..., idx])
    return x


def sample_chunk(
    actions: np.ndarray, index: float, angle_dims: tuple[int, ...] = ()
) -> np.ndarray | None:
    """Linearly interpolated action at a fractional index; None past the last action.

    Indices before 0 give action 0 (a chunk never starts before its first action).
    """
    last = actions.shape[0] - 1
    if index > last + 1e-9:
        return None
    index = min(max(index, 0.0), float(last))
    lo = int(np.floor(index))
    hi = min(lo + 1, last)
    frac = index - lo
    step = difference(actions[hi], actions[lo], angle_dims)
    return _wrapped(actions[lo] + frac * step, angle_dims)


def smoothstep(x: float) -> float:
    """0 -> 0, 1 -> 1 with zero slope at both ends."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def apply_limits(
    target: np.ndarray,
    previous: np.ndarray | None,
    config: ExecutorConfig,
    speed_scale: float = 1.0,
) -> tuple[np.ndarray, bool]:
    """Clip to position limits, then move at most max_velocity*period from previous.

    Returns (command, whether a limit changed the target).
    """
    angles = config.angle_dims
    out = _wrapped(np.array(target, dtype=np.float64), angles)
    if config.position_min is not None:
        out = np.maximum(out, config.position_min)
    if config.position_max is not None:
        out = np.minimum(out, config.position_max)
    if config.max_velocity is not None and previous is not None:
        max_step = config.max_velocity * config.control_period_s * speed_scale
        out = _wrapped(
            previous + np.clip(difference(out, previous, angles), -max_step, max_step), angles
        )
    changed = np.abs(difference(out, target, angles)) > 1e-12
    return out, bool(np.any(changed))


class ChunkExecutor:
    """Stateful wrapper: feed chunks with `add_chunk`, call `step(now_ns)` each control tick."""

    def __init__(self, config: ExecutorConfig, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        for name in ("position_min", "position_max", "max_velocity"):
            value = getattr(config, name)
            if value is not None and value.shape != (dim,):
                raise ValueError(f"{name} has shape {value.shape}, expected ({dim},)")
        if any(not 0 <= i < dim for i in config.angle_dims):
            raise ValueError(f"angle_dims {config.angle_dims} out of range for dim {dim}")
        self.config = config
        self.dim = dim
        self._chunk: Chunk | None = None
        self._playhead_ns = 0  # chunk-relative time being played (advances at speed)
        self._last_now_ns: int | None = None
        self._last_command: np.ndarray | None = None
        self._fade_offset: np.ndarray | None = None
        self._fade_start_ns = 0

    @property
    def current_chunk(self) -> Chunk | None:
        return self._chunk

    @property
    def last_command(self) -> np.ndarray | None:
        return None if self._last_command is None else self._last_command.copy()

    def seed(self, positions: np.ndarray) -> None:
        """Set the command to hold before the first chunk (e.g. the measured joint state)."""
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (self.dim,) or not np.all(np.isfinite(positions)):
            raise ValueError(f"seed must be finite with shape ({self.dim},), got {positions}")
        lo, hi = self.config.position_min, self.config.position_max
        if (lo is not None and np.any(positions < lo)) or (
            hi is not None and np.any(positions > hi)
        ):
            raise ValueError(f"seed {positions} outside the position limits")
        self._last_command = positions.copy()

    def reset(self) -> None:
        """Forget the chunk and the clock (e.g. after sim time jumped back on a bag loop).

        The last command is kept, so the next chunk crossfades from it.
        """
        self._chunk = None
        self._last_now_ns = None
        self._fade_offset = None

    def add_chunk(self, chunk: Chunk, now_ns: int) -> AddResult:
        """Switch to `chunk` at now_ns, crossfading from the last command.

        Returns a falsy AddResult with the reason (and keeps the current chunk) when
        the chunk has the wrong width, is already entirely in the past, is older than
        the current one or is stamped too far in the future.
        """
        if chunk.actions.shape[1] != self.dim:
            return AddResult(ChunkVerdict.WRONG_DIM,
                             f"chunk has {chunk.actions.shape[1]} dims, executor has {self.dim}")
        if now_ns > chunk.end_ns:
            ago_s = (now_ns - chunk.end_ns) / NS_PER_S
            return AddResult(ChunkVerdict.ALREADY_PAST,
                             f"chunk {chunk.chunk_id} ended {ago_s:.3f}s ago")
        if self._chunk is not None and chunk.t0_ns < self._chunk.t0_ns:
            return AddResult(ChunkVerdict.OLDER_THAN_CURRENT,
                             f"chunk {chunk.chunk_id} is older than chunk {self._chunk.chunk_id}")
        lead_s = (chunk.t0_ns - now_ns) / NS_PER_S
        if lead_s > self.config.max_chunk_lead_s:
            return AddResult(ChunkVerdict.FROM_FUTURE,
                             f"chunk {chunk.chunk_id} is stamped {lead_s:.3f}s in the future "
                             f"(> {self.config.max_chunk_lead_s}s)")
        self._chunk = chunk
        self._playhead_ns = now_ns - chunk.t0_ns  # < 0 (clock skew) plays action 0
        self._last_now_ns = now_ns
        angles = self.config.angle_dims
        start = sample_chunk(chunk.actions, chunk_index(now_ns, chunk.t0_ns, chunk.dt_s), angles)
        if self._last_command is not None and start is not None and self.config.crossfade_s > 0:
            self._fade_offset = difference(self._last_command, start, angles)
            self._fade_start_ns = now_ns
        else:
            self._fade_offset = None
        return AddResult(ChunkVerdict.ACCEPTED)

    def _guarded(self) -> bool:
        """logvar above the bound, or unknown (NaN/inf: compared false, so tested first)."""
        bound = self.config.logvar_bound
        chunk = self._chunk
        if bound is None or chunk is None or chunk.logvar is None:
            return False
        return not math.isfinite(chunk.logvar) or chunk.logvar > bound

    def _unknown_uncertainty(self) -> bool:
        chunk = self._chunk
        return (self.config.logvar_bound is not None and chunk is not None
                and chunk.logvar is not None and not math.isfinite(chunk.logvar))

    def _hold(self, now_ns: int, status: ExecStatus) -> Command:
        if self._last_command is None:
            return Command(now_ns, None, ExecStatus.NO_COMMAND)
        chunk_id = None if self._chunk is None else self._chunk.chunk_id
        return Command(now_ns, self._last_command.copy(), status, chunk_id)

    def step(self, now_ns: int) -> Command:
        """The command for this control tick."""
        chunk = self._chunk
        if chunk is None:
            return self._hold(now_ns, ExecStatus.HOLD_NO_CHUNK)
        guarded = self._guarded()
        hold_guard = guarded and (
            self.config.guard_mode is GuardMode.HOLD or self._unknown_uncertainty()
        )
        speed = 0.0 if hold_guard else (self.config.guard_speed_scale if guarded else 1.0)
        elapsed = max(0, now_ns - (self._last_now_ns if self._last_now_ns is not None else now_ns))
        self._last_now_ns = now_ns
        self._playhead_ns += round(elapsed * speed)
        if hold_guard:
            return self._hold(now_ns, ExecStatus.HOLD_UNCERTAIN)
        index = self._playhead_ns / (chunk.dt_s * NS_PER_S)
        target = sample_chunk(chunk.actions, index, self.config.angle_dims)
        past_end = target is None
        if past_end:  # hold the chunk's last action (reached, never extrapolated)
            target = chunk.actions[-1].copy()
            status = ExecStatus.HOLD_CHUNK_END
        else:
            status = ExecStatus.SLOW_UNCERTAIN if guarded else ExecStatus.TRACKING
        if self._fade_offset is not None:
            progress = (now_ns - self._fade_start_ns) / (self.config.crossfade_s * NS_PER_S)
            if progress >= 1.0:
                self._fade_offset = None
            else:
                blend = target + self._fade_offset * (1.0 - smoothstep(progress))
                target = _wrapped(blend, self.config.angle_dims)
                if status is ExecStatus.TRACKING:
                    status = ExecStatus.CROSSFADE
        out, limited = apply_limits(target, self._last_command, self.config, speed)
        self._last_command = out
        played = None if past_end else index
        return Command(now_ns, out.copy(), status, chunk.chunk_id, played, limited)
