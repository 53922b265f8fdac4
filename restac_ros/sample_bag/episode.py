"""The scripted episode: world, contact model and the touch-driven teacher.

One episode moves an egg-shaped object back and forth between two marks on
the table. The teacher (a 15 Hz state machine, the behaviour the policy is to
imitate) only acts on what a real robot could sense: it descends to the
object's equator, closes the gripper *until the tactile pad reports contact*,
squeezes, lifts, carries the object over the other mark and lowers it *until
the tactile shear says the table carries the load*, then opens and retreats.
Contact onset depends on the object's radius and height (seeded), so the
command stream depends on touch.

The world is simulated at 1 kHz with plain Python floats (deterministic); the
writer samples it at the topic rates.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from . import kinematics as kin

SIM_DT = 0.001  # s; one step = 1 ms
TICK_HZ = 15  # teacher / camera rate

# Controller and gripper dynamics.
TAU_JOINT = 0.05  # s, first-order tracking of the commanded joints
VMAX_JOINT = 2.5  # rad/s
GRIP_SPEED = 0.05  # m/s, gripper width rate
OPEN_W = 0.085  # m, open width used by the teacher

# Tactile pad on the inner face of the +closing-axis finger.
PAD_Z0 = 0.003  # sensing area starts this far above the fingertip
PAD_H = 0.018  # sensing area height (image rows, 240 px)
PAD_W = 0.024  # sensing area width (image columns, 320 px)
PEN_MAX = 0.0009  # m, largest gel indentation
PEN_S0 = 0.002  # m of squeeze for 63 % of PEN_MAX
FORCE_FULL = 0.006  # m of squeeze for full grip force
ELASTIC = 0.5  # contact patch shrink factor of the gel
SHEAR_TAU = 0.04  # s
INERTIA_SHEAR = 0.15  # mm of shear per m/s^2 of tip acceleration

HOVER_Z = 0.20
HOME = (0.42, 0.0, 0.30)
SQUEEZE = 0.005  # m per side beyond the contact width
CLOSE_SPEED = 0.03  # m/s, guarded closing until touch
GRASP_RAISE = 0.001  # m the equator sits above the pad centre at grasp
PAD_CENTER = PAD_Z0 + PAD_H / 2

COLORS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (200, 45, 40)),
    ("blue", (40, 80, 200)),
    ("green", (40, 160, 70)),
    ("yellow", (225, 195, 40)),
    ("orange", (235, 120, 30)),
    ("purple", (130, 60, 170)),
)

PHASES = (
    "home",
    "approach",
    "descend",
    "close",
    "squeeze",
    "lift",
    "transport",
    "place",
    "release",
    "retreat",
)


@dataclass(frozen=True)
class EpisodeParams:
    seed: int
    radius: float  # object equatorial radius (m)
    half_height: float  # object vertical semi-axis (m)
    color_name: str
    color: tuple[int, int, int]
    mark_a: tuple[float, float]  # where the object starts
    mark_b: tuple[float, float]  # the other mark
    grasp_offset: float  # teacher's grasp error across the fingers (m)
    yaw_offset: float  # hand yaw relative to perpendicular-to-radial (rad)
    slip: float  # m the object slips in the grasp when lifted
    shear: float  # mm of gel shear under the object's weight
    start_delay: float  # s the teacher waits at home

    @property
    def prompt(self) -> str:
        return f"move the {self.color_name} egg back and forth between the two marks"

    @classmethod
    def from_seed(cls, seed: int) -> EpisodeParams:
        rng = random.Random(f"restac-sample-bag:{seed}")  # stable across Python versions
        name, color = COLORS[rng.randrange(len(COLORS))]
        left = (rng.uniform(0.46, 0.56), rng.uniform(0.12, 0.20))
        right = (rng.uniform(0.46, 0.56), rng.uniform(-0.20, -0.12))
        a, b = (left, right) if rng.random() < 0.5 else (right, left)
        return cls(
            seed=seed,
            radius=rng.uniform(0.022, 0.030),
            half_height=rng.uniform(0.030, 0.052),
            color_name=name,
            color=color,
            mark_a=a,
            mark_b=b,
            grasp_offset=rng.uniform(-0.003, 0.003),
            yaw_offset=rng.uniform(-0.35, 0.35),
            slip=rng.uniform(0.0003, 0.0012),
            shear=rng.uniform(0.6, 1.1),
            start_delay=rng.uniform(0.3, 1.0),
        )


@dataclass
class Episode:
    """Simulation record. Per-step arrays have one row per millisecond."""

    params: EpisodeParams
    n_steps: int
    q: np.ndarray  # [N, 8] joint positions (gripper = finger gap, m)
    qd: np.ndarray  # [N, 8] joint velocities
    contact: np.ndarray  # [N] bool, ground truth (pad touches the object)
    blob: np.ndarray  # [N, 7] depth 0..1, u, v, a_u, a_v (pad m), shear_u, shear_v (mm)
    obj: np.ndarray  # [N, 3] object centre
    tick_cmd: np.ndarray  # [T, 8] commanded joint targets, one row per teacher tick
    tick_phase: list[str]
    events: list[tuple[str, int]] = field(default_factory=list)  # (name, step)

    def contact_intervals_steps(self) -> list[tuple[int, int]]:
        """Half-open [start, end) step ranges with contact."""
        c = self.contact.astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], c, [0]))))
        return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def stamp_ns(k: int, rate_hz: int) -> int:
    """Time of the k-th message of a `rate_hz` stream, ns from the episode start."""
    return (2 * k * 10**9 + rate_hz) // (2 * rate_hz)  # k / rate rounded to the nanosecond


def count(rate_hz: int, duration_ns: int) -> int:
    """Messages of a `rate_hz` stream with stamp < duration_ns."""
    n = -(-duration_ns * rate_hz // 10**9)
    while n > 0 and stamp_ns(n - 1, rate_hz) >= duration_ns:
        n -= 1
    while stamp_ns(n, rate_hz) < duration_ns:
        n += 1
    return n


def step_of(t_ns: int) -> int:
    """Simulation step holding the world state at time t_ns (from the episode start)."""
    return t_ns // 1_000_000


def _radius_at(p: EpisodeParams, zc: float, z: float) -> float:
    dz = (z - zc) / p.half_height
    return p.radius * math.sqrt(1.0 - dz * dz) if abs(dz) < 1.0 else 0.0


class _Teacher:
    """15 Hz state machine over a Cartesian fingertip target."""

    def __init__(self, p: EpisodeParams) -> None:
        self.p = p
        self.phase = "home"
        self.t_phase = 0.0
        self.target = list(HOME)
        self.yaw = math.pi / 2
        self.grip = OPEN_W
        self.src, self.dst = p.mark_a, p.mark_b
        self.shear_ref = 0.0
        self.offset = (0.0, 0.0)
        self.events: list[str] = []

    def _goto(self, phase: str, t: float) -> None:
        self.phase, self.t_phase = phase, t
        self.events.append(phase)

    def _move(self, wp: tuple[float, float, float], speed: float) -> float:
        d = [w - c for w, c in zip(wp, self.target, strict=True)]
        n = math.sqrt(sum(x * x for x in d))
        step = speed / TICK_HZ
        if n <= step:
            self.target = list(wp)
        else:
            self.target = [c + x * step / n for c, x in zip(self.target, d, strict=True)]
        return n

    def tick(self, t: float, tip: tuple[float, float, float], obs: dict) -> list[float]:
        p, el = self.p, t - self.t_phase
        # Fingertip height that puts the egg's equator just above the pad centre (the
        # egg slips and shears downwards on the pad once lifted).
        zg = obs["obj_z"] - PAD_CENTER - GRASP_RAISE
        ax, ay = self.src
        tip_err = math.dist(tip, self.target)
        if self.phase == "home":
            if el >= p.start_delay:
                self._goto("approach", t)
        elif self.phase == "approach":
            radial = math.atan2(ay, ax)
            self.yaw = radial + math.pi / 2 + p.yaw_offset
            off = p.grasp_offset
            self.offset = (-math.sin(self.yaw) * off, math.cos(self.yaw) * off)
            self.grip = OPEN_W
            wp = (ax + self.offset[0], ay + self.offset[1], HOVER_Z)
            if self._move(wp, 0.3) < 1e-9 and tip_err < 0.004:
                self._goto("descend", t)
        elif self.phase == "descend":
            x, y, _ = self.target
            if self._move((x, y, zg), 0.12) < 1e-9 and tip_err < 0.002:
                self._goto("close", t)
        elif self.phase == "close":
            if obs["contact"]:
                self.grip = max(0.0, obs["width"] - 2 * SQUEEZE)
                self._goto("squeeze", t)
            else:
                self.grip = max(0.0, self.grip - CLOSE_SPEED / TICK_HZ)
                if self.grip <= 0.0:  # missed: open again and retreat
                    self._goto("release", t)
        elif self.phase == "squeeze":
            if el >= 0.35:
                self._goto("lift", t)
                self.shear_ref = 0.0
        elif self.phase in ("lift", "transport"):
            self.shear_ref = max(self.shear_ref, obs["shear_v"])
            x, y, _ = self.target
            bx, by = self.dst[0] + self.offset[0], self.dst[1] + self.offset[1]
            if self.phase == "lift":
                if self._move((x, y, HOVER_Z), 0.2) < 1e-9 and tip_err < 0.005:
                    self._goto("transport", t)
            elif self._move((bx, by, HOVER_Z), 0.3) < 1e-9 and tip_err < 0.004:
                self._goto("place", t)
        elif self.phase == "place":
            x, y, z = self.target
            if obs["shear_v"] < 0.4 * max(self.shear_ref, 0.1) or not obs["contact"]:
                self._goto("release", t)
            else:
                z_touch = p.half_height - PAD_CENTER - GRASP_RAISE  # egg meets the table
                if z > z_touch + 0.02 + 1e-9:
                    self._move((x, y, z_touch + 0.02), 0.15)
                else:
                    self._move((x, y, z_touch - 0.02), 0.03)
        elif self.phase == "release":
            self.grip = OPEN_W
            if el >= 0.25 and not obs["contact"]:
                self._goto("retreat", t)
        elif self.phase == "retreat":
            x, y, _ = self.target
            if self._move((x, y, HOVER_Z), 0.2) < 1e-9 and tip_err < 0.005:
                self.src, self.dst = self.dst, self.src
                self._goto("approach", t)
        q = kin.inverse(*self.target, self.yaw)
        return [*q, self.grip]


def simulate(params: EpisodeParams, duration_ns: int) -> Episode:
    """Run the closed loop (teacher + arm + gripper + object + gel) for duration_ns."""
    p = params
    n = max(1, -(-duration_ns // 1_000_000))
    teacher = _Teacher(p)
    q = kin.inverse(*HOME, math.pi / 2)
    w_motor = OPEN_W
    obj = [p.mark_a[0], p.mark_a[1], p.half_height]
    held, rel, slip, supported = False, (0.0, 0.0, 0.0), 0.0, True
    shear_u = shear_v = 0.0
    tip_prev = kin.forward(q).tip
    vel_prev = (0.0, 0.0, 0.0)
    acc = [0.0, 0.0, 0.0]
    width_prev = w_motor
    cmd = [*q, OPEN_W]
    rows_q, rows_qd, rows_c, rows_b, rows_o = [], [], [], [], []
    tick_cmd, tick_phase, events = [], [], []
    k_next, tick_next = 0, 0
    qd = [0.0] * 7
    contact, width = False, w_motor
    blob = (0.0,) * 7
    for i in range(n):
        pose = kin.forward(q)
        tip = pose.tip
        # ---- teacher tick (observes the state at this step) ----
        if i == tick_next:
            obs = {
                "contact": contact,
                "width": width,
                "shear_v": shear_v,
                "obj_z": obj[2],
            }
            n_ev = len(teacher.events)
            cmd = teacher.tick(i * SIM_DT, tip, obs)
            events += [(name, i) for name in teacher.events[n_ev:]]
            tick_cmd.append(cmd)
            tick_phase.append(teacher.phase)
            k_next += 1
            tick_next = step_of(stamp_ns(k_next, TICK_HZ))
        # ---- object, contact and gel at this step ----
        vel = tuple((a - b) / SIM_DT for a, b in zip(tip, tip_prev, strict=True))
        for j in range(3):
            acc[j] += ((vel[j] - vel_prev[j]) / SIM_DT - acc[j]) * SIM_DT / 0.03
        if held:
            obj = [tip[0] + rel[0], tip[1] + rel[1], tip[2] + rel[2] - slip]
            supported = obj[2] <= p.half_height
            obj[2] = max(obj[2], p.half_height)
            if not supported and vel[2] > 0.01:
                slip += (p.slip - slip) * SIM_DT / 0.25
        gx, gy, _ = pose.closing_axis
        dx, dy = obj[0] - tip[0], obj[1] - tip[1]
        d_g, d_t = dx * gx + dy * gy, -dx * gy + dy * gx
        pad_lo = tip[2] + PAD_Z0
        r_star = _radius_at(p, obj[2], min(max(obj[2], pad_lo), pad_lo + PAD_H))
        squeeze = r_star - (w_motor / 2 - d_g)
        contact = r_star > 0 and squeeze > 0 and abs(d_t) < r_star
        if contact:
            pen = PEN_MAX * (1.0 - math.exp(-squeeze / PEN_S0))
            force = min(squeeze / FORCE_FULL, 1.0)
            width = 2 * (r_star - pen + d_g)
            f = math.sqrt(max(0.0, 1.0 - ((p.radius - pen) / p.radius) ** 2))
            if not held and force >= 0.6 and vel[2] > 0.005:
                held, rel, slip = True, (dx, dy, obj[2] - tip[2]), 0.0
            if held and not supported:
                sv_t = p.shear * force
            elif held:
                sv_t = -0.3 * p.shear
            else:
                sv_t = 0.0
            a_t = -acc[0] * gy + acc[1] * gx
            su_t = max(-1.2, min(1.2, -INERTIA_SHEAR * a_t)) if held else 0.0
        else:
            pen = force = f = sv_t = su_t = 0.0
            width = w_motor
            if held:
                held = False
                obj[2] = p.half_height  # released: rests on the table
        if held and force < 0.3:
            held = False
        shear_v += (sv_t - shear_v) * SIM_DT / SHEAR_TAU
        shear_u += (su_t - shear_u) * SIM_DT / SHEAR_TAU
        blob = (
            pen / PEN_MAX,
            d_t,
            obj[2] - pad_lo,
            ELASTIC * p.radius * f,
            ELASTIC * p.half_height * f,
            shear_u,
            shear_v,
        )
        gw_vel = (width - width_prev) / SIM_DT if i else 0.0
        rows_q.append((*q, width))
        rows_qd.append((*qd, gw_vel))
        rows_c.append(contact)
        rows_b.append(blob)
        rows_o.append(tuple(obj))
        # ---- integrate the controller to the next step ----
        for j in range(7):
            v = (cmd[j] - q[j]) / TAU_JOINT
            qd[j] = max(-VMAX_JOINT, min(VMAX_JOINT, v))
            q[j] += qd[j] * SIM_DT
        dw = max(-GRIP_SPEED * SIM_DT, min(GRIP_SPEED * SIM_DT, cmd[7] - w_motor))
        w_motor = max(0.0, w_motor + dw)
        tip_prev, vel_prev, width_prev = tip, vel, width
    return Episode(
        params=p,
        n_steps=n,
        q=np.asarray(rows_q, dtype=np.float64).reshape(n, 8),
        qd=np.asarray(rows_qd, dtype=np.float64).reshape(n, 8),
        contact=np.asarray(rows_c, dtype=bool).reshape(n),
        blob=np.asarray(rows_b, dtype=np.float64).reshape(n, 7),
        obj=np.asarray(rows_o, dtype=np.float64).reshape(n, 3),
        tick_cmd=np.asarray(tick_cmd, dtype=np.float64).reshape(-1, 8),
        tick_phase=tick_phase,
        events=events,
    )
