"""Closed-loop episodes: a policy drives SimEnv in-process through the live pipeline's maths.

The same path as policy_node -> chunk_executor -> sim_node in lockstep, without DDS:
sensors go into the ObservationBuilder's StreamBuffers as the sim produces them (stamped
like sim_node: origin `EPOCH_NS`, step j at EPOCH_NS + round(j * 1e9 / 300)); at each
policy tick T (`core.ticks` grid from EPOCH_NS, params' rate) the observation is sampled
from the messages stamped <= T, built, inferred with `tick_seed(seed, T)` and
postprocessed to robot units; the chunk (t0 = T, float32 actions as the ActionChunk
carries them) reaches a `core.executor.ChunkExecutor` at the first joint-state stamp
>= T (where policy_node's tick completes), after the control tick at that stamp
(lockstep: a slow policy never costs sim time; sim_node's step protocol over DDS gives
the same order). The executor seeds from the measured joints like chunk_executor,
applies latency compensation, crossfade, limits, hold and the logvar guard, and its
command is held by the sim until the next control tick. Executor holds are counted per
status.

Ablations (options on the inputs / the call, one model):
  on           the observation as built (tactile branch active)
  zeroed       gate 0: the actions of the observation with tactile_mask False, which by
               the residual construction (pi0_restac: correction = fusion * gate, zero
               where there is no tactile input) are exactly the backbone's, i.e. what a
               closed gate gives; the tactile branch still runs on the real tactile input
               in a second call, so its logvar / gate / codes are reported (not applied)
  vision_only  no tactile stream at all (the spec without a tactile topic): what the
               policy does without the sensor; the same actions as `zeroed` by the same
               construction, and no tactile diagnostics
"""

from __future__ import annotations

import dataclasses
import enum
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np

from restac_ros.core import ticks
from restac_ros.core.executor import Chunk, ChunkExecutor, ExecStatus, ExecutorConfig, GuardMode
from restac_ros.core.observation import InvalidActions, InvalidObservation, JointSample
from restac_ros.core.observation_spec import delta_action_mask_from_meta
from restac_ros.eval import params as eval_params
from restac_ros.sample_bag.writer import EPOCH_NS

from .env import BASE_RATE_HZ, SimConfig, SimEnv, step_stamp_ns
from .recorder import CAMERA_TOPICS
from .world import JOINT_NAMES

NS_PER_S = 1_000_000_000


class Ablation(enum.StrEnum):
    ON = "on"
    ZEROED = "zeroed"
    VISION_ONLY = "vision_only"


@dataclasses.dataclass(frozen=True)
class ClosedLoopConfig:
    """What an episode runs: sim time, policy rate, the params the nodes would read.

    policy_params: the policy_node section (`eval.params.load_params`); executor_params:
    the chunk_executor section (`load_executor_params`).
    """

    policy_params: dict
    executor_params: dict
    seconds: float = 8.0
    rate_hz: float = 15.0  # config/sim.yaml's policy_node rate_hz
    control_rate_hz: float = 100.0  # config/sim.yaml's chunk_executor control_rate_hz
    sim: SimConfig = SimConfig()
    noise_seed: int | None = None  # None: the policy params' seed

    def __post_init__(self) -> None:
        steps = BASE_RATE_HZ / self.control_rate_hz
        if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
            raise ValueError(f"control_rate_hz {self.control_rate_hz}: the period must be a "
                             f"whole number of sim steps (1/{BASE_RATE_HZ} s)")
        if not self.seconds > 0:
            raise ValueError(f"seconds must be > 0, got {self.seconds}")

    @property
    def steps_per_control(self) -> int:
        return round(BASE_RATE_HZ / self.control_rate_hz)


@dataclasses.dataclass
class TickRecord:
    """One policy tick of an episode (absent fields: the tick had no valid observation)."""

    t_s: float
    in_contact: bool
    normal_force_n: float
    slipping: bool
    logvar: float | None = None
    gate: float | None = None  # the gate applied to the actions (0 in `zeroed`)
    gate_branch: float | None = None  # the gate the tactile branch computed
    codes: list[int] = dataclasses.field(default_factory=list)
    inference_ms: float | None = None
    invalid: str | None = None


@dataclasses.dataclass
class EpisodeResult:
    seed: int
    ablation: str
    success: bool
    time_to_success_s: float | None
    duration_s: float
    peak_force_n: float
    closest_approach_m: float  # min distance gripper TCP - box centre (control ticks)
    hold_ticks: dict[str, int]  # executor control ticks per hold status
    control_ticks: int
    chunks_accepted: int
    chunks_refused: dict[str, int]
    invalid_ticks: dict[str, int]
    ticks: list[TickRecord]
    diverged: bool
    wall_s: float
    final_joints: list[float]  # measured at the end: what the policy did, in one line
    mcap: str | None = None

    @property
    def holds(self) -> int:
        return int(sum(self.hold_ticks.values()))

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["holds"] = self.holds
        return d


def load_executor_params(path: str | Path | None = None) -> dict:
    """`chunk_executor.ros__parameters` of a params file (default: config/policy.yaml)."""
    import yaml

    path = Path(path) if path is not None else eval_params.default_params_path()
    try:
        return dict(yaml.safe_load(path.read_text())["chunk_executor"]["ros__parameters"])
    except (KeyError, TypeError):
        raise eval_params.ParamsError(f"{path}: no chunk_executor.ros__parameters") from None


def executor_config(p: dict, dim: int, control_rate_hz: float) -> ExecutorConfig:
    """chunk_executor's parameters -> ExecutorConfig (nodes/chunk_executor.executor_config's
    mapping; that module imports rclpy, so the few lines are mirrored here)."""

    def limit(name: str) -> np.ndarray | None:
        value = p.get(name)
        if value is None or len(value) == 0:
            return None
        if len(value) != dim:
            raise ValueError(f"parameter {name} has {len(value)} values, chunks have {dim} dims")
        return np.asarray(value, dtype=np.float64)

    return ExecutorConfig(
        control_period_s=1.0 / control_rate_hz,
        crossfade_s=float(p["crossfade_s"]),
        position_min=limit("position_min"),
        position_max=limit("position_max"),
        max_velocity=limit("max_velocity"),
        logvar_bound=float(p["logvar_bound"]) if p["logvar_guard"] else None,
        guard_mode=GuardMode(p["guard_mode"]),
        guard_speed_scale=float(p["guard_speed_scale"]),
        max_chunk_lead_s=float(p["max_chunk_lead_s"]),
    )


def _first(x) -> float:
    return float(np.asarray(x).reshape(-1)[0])


class ClosedLoopRunner:
    """One loaded policy, any number of seeded episodes (a worker holds one of these)."""

    def __init__(self, policy, config: ClosedLoopConfig) -> None:
        self.policy, self.config = policy, config
        p = dict(config.policy_params)
        if tuple(p["joint_names"]) != JOINT_NAMES:
            raise ValueError(f"policy joint_names {p['joint_names']} != the sim's {JOINT_NAMES}")
        if p["action_space"] != "joint_position":
            raise ValueError("the sim takes joint_position actions, params say "
                             f"{p['action_space']!r}")
        missing = set(CAMERA_TOPICS.values()) - set(p["camera_topics"])
        if missing or p["joint_states_topic"] != "/joint_states":
            raise ValueError(f"params read topics the sim does not publish: {sorted(missing)}")
        dim = eval_params.action_space(p, 1).dim
        mask = tuple(delta_action_mask_from_meta(policy.meta or {}, dim))
        cfg = policy.config
        self.builders = {
            Ablation.ON: eval_params.builder_for(p, cfg, policy.norm_stats, policy.tokenizer,
                                                 delta_action_mask=mask),
            Ablation.VISION_ONLY: eval_params.builder_for(
                {**p, "tactile_topic": "", "tactile_required": False}, cfg,
                policy.norm_stats, policy.tokenizer, delta_action_mask=mask),
        }
        self.builders[Ablation.ZEROED] = self.builders[Ablation.ON]
        self.dim = dim
        self.dt_s = float(p["action_dt_s"])
        self.exec_config = executor_config(config.executor_params, dim, config.control_rate_hz)
        self.seed = int(p["seed"] if config.noise_seed is None else config.noise_seed)

    def run_episode(self, seed: int, ablation: Ablation | str, mcap_path: Path | None = None,
                    mcap_images: bool = True) -> EpisodeResult:
        ablation = Ablation(ablation)
        if ablation is Ablation.ZEROED and self.policy.config.use_tactile and \
                not self.policy.config.use_gate:
            raise ValueError("ablation 'zeroed' needs a gated checkpoint (use_gate=False "
                             "applies the tactile correction without a gate)")
        t_wall = time.perf_counter()
        cfg = self.config
        builder = self.builders[ablation]
        builder.prepared.clear()  # a previous episode's images
        spec = builder.spec
        buffers = builder.make_buffers(max_stamp_age_s=None)
        executor = ChunkExecutor(self.exec_config, self.dim)
        n_steps = int(round(cfg.seconds * BASE_RATE_HZ))
        ctrl = cfg.steps_per_control
        holds: Counter = Counter()
        refused: Counter = Counter()
        invalid: Counter = Counter()
        records: list[TickRecord] = []
        pending: Chunk | None = None
        accepted, control_ticks, peak, closest = 0, 0, 0.0, math.inf
        next_tick = 0
        bag = None
        if mcap_path is not None:
            from .episode_bag import EpisodeBag

            bag = EpisodeBag(mcap_path, images=mcap_images)
        with SimEnv(cfg.sim) as env:
            task = env.reset(seed)
            if bag is not None:
                bag.open(task, ablation.value)
            command = None
            for j in range(n_steps + 1):
                stamp = EPOCH_NS + step_stamp_ns(j)
                due, contact = env.streams_due(), env.contact()
                peak = max(peak, contact.normal_force_n)
                self._push_sensors(env, buffers, builder, due, stamp, bag)
                if bag is not None and due.tactile:
                    bag.contact(stamp, contact)
                tick_ns = ticks.tick_at(EPOCH_NS, cfg.rate_hz, next_tick)
                if stamp >= tick_ns:  # every stream stamped <= T is in: the tick completes
                    next_tick += 1
                    rec, chunk = self._policy_tick(builder, buffers, tick_ns, task.prompt,
                                                   ablation, contact, next_tick - 1)
                    records.append(rec)
                    if rec.invalid:
                        invalid[rec.invalid] += 1
                    if chunk is not None:
                        pending = chunk
                        if bag is not None:
                            bag.chunk(chunk, rec, spec.joint_names)
                if j % ctrl == 0:
                    out = executor.step(stamp)
                    control_ticks += 1
                    closest = min(closest, float(np.linalg.norm(
                        env.tcp_pose()[0] - env.object_pose()[0])))
                    if out.status.value.startswith("hold") or out.status is ExecStatus.NO_COMMAND:
                        holds[out.status.value] += 1
                    command = out.positions
                    if bag is not None and command is not None:
                        bag.command(stamp, command, out.status.value)
                if pending is not None and due.joints:
                    # the tick completes (policy_node has the joint state >= T): the chunk
                    # reaches chunk_executor now, after its control tick at this stamp
                    if executor.last_command is None:  # chunk_executor's seed
                        try:
                            executor.seed(env.joint_positions())
                        except ValueError:  # outside the limits: no seed, like the node
                            refused["seed_refused"] += 1
                    reason = self._refusal(pending, stamp)  # chunk_executor's own checks
                    verdict = None if reason else executor.add_chunk(pending, stamp)
                    accepted += bool(verdict)
                    if not verdict:
                        refused[reason or verdict.reason.value] += 1
                    pending = None
                if j < n_steps:
                    env.step(command)
                    command = None  # held by the sim until the next control tick
                    if env.diverged:
                        break
            success_ns = env.success_ns
            result = EpisodeResult(
                seed=int(seed), ablation=ablation.value, success=env.success,
                time_to_success_s=None if success_ns is None else success_ns / NS_PER_S,
                duration_s=env.time_ns / NS_PER_S, peak_force_n=float(peak),
                closest_approach_m=closest,
                hold_ticks=dict(holds), control_ticks=control_ticks, chunks_accepted=accepted,
                chunks_refused=dict(refused), invalid_ticks=dict(invalid), ticks=records,
                diverged=env.diverged, wall_s=0.0,
                final_joints=[float(x) for x in env.joint_positions()],
                mcap=None if mcap_path is None else str(mcap_path))
            if bag is not None:
                bag.close(result)
        result.wall_s = time.perf_counter() - t_wall
        return result

    def _refusal(self, chunk: Chunk, now_ns: int) -> str:
        """chunk_executor's checks before ChunkExecutor.add_chunk ('' = none applies)."""
        p = self.config.executor_params
        if chunk.dt_s > float(p["max_chunk_dt_s"]):
            return "invalid_chunk"
        if (now_ns - chunk.t0_ns) / NS_PER_S > float(p["max_chunk_age_s"]):
            return "stale_chunk"
        return ""

    def _push_sensors(self, env, buffers, builder, due, stamp: int, bag) -> None:
        spec = builder.spec
        if due.joints:
            q = env.joint_positions()
            buffers.push(spec.joint_stream, stamp, JointSample(JOINT_NAMES, q, stamp), stamp)
            if bag is not None:
                bag.joints(stamp, q, env.joint_velocities())
        if due.cameras:
            for name, img in env.render_cameras().items():
                topic = CAMERA_TOPICS[name]
                if topic in spec.camera_streams.values():
                    buffers.push(topic, stamp, img, stamp)
                    builder.prepare_image(topic, img)
                if bag is not None:
                    bag.image(topic, stamp, img, f"camera_{name}")
        if due.tactile and (spec.tactile_stream is not None or bag is not None):
            img = env.render_tactile()
            if spec.tactile_stream is not None:
                buffers.push(spec.tactile_stream, stamp, img, stamp)
                builder.prepare_image(spec.tactile_stream, img)
            if bag is not None:
                bag.image("/tactile/image_raw", stamp, img, "gelsight")

    def _policy_tick(self, builder, buffers, tick_ns: int, prompt: str, ablation: Ablation,
                     contact, chunk_id: int) -> tuple[TickRecord, Chunk | None]:
        rec = TickRecord(t_s=(tick_ns - EPOCH_NS) / NS_PER_S, in_contact=contact.in_contact,
                         normal_force_n=float(contact.normal_force_n),
                         slipping=contact.slipping)
        try:
            sample = builder.sample_from_buffers(buffers, tick_ns, prompt)
            obs = builder.build(sample)
        except InvalidObservation as err:
            rec.invalid = err.reason.value
            return rec, None
        seed = ticks.tick_seed(self.seed, tick_ns)
        if ablation is Ablation.ZEROED:
            branch = self.policy.infer(obs, seed).diagnostics  # reported, not applied
            closed = dataclasses.replace(obs, tactile_mask=np.zeros_like(obs.tactile_mask))
            result = self.policy.infer(closed, seed)
            rec.logvar, rec.gate_branch = _first(branch.logvar), _first(branch.gate)
            rec.gate = 0.0
            rec.codes = [int(c) for c in np.asarray(branch.codes).reshape(-1) if c >= 0]
        else:
            result = self.policy.infer(obs, seed)
            d = result.diagnostics
            rec.logvar, rec.gate = _first(d.logvar), _first(d.gate)
            rec.gate_branch = rec.gate
            rec.codes = [int(c) for c in np.asarray(d.codes).reshape(-1) if c >= 0]
            if ablation is Ablation.VISION_ONLY:
                rec.logvar = rec.gate = rec.gate_branch = None
        rec.inference_ms = float(result.inference_ms)
        try:
            actions = builder.postprocess_actions(result.actions_norm[0],
                                                  builder.state_vector(sample.joints))
            # as the ActionChunk carries them (float32); the guard reads the sensor's logvar
            # (a NaN one holds: unknown uncertainty)
            actions = np.asarray(actions, np.float32).astype(np.float64)
            logvar = None if rec.logvar is None else float(np.float32(rec.logvar))
            chunk = Chunk(tick_ns, self.dt_s, actions, logvar=logvar, chunk_id=chunk_id)
        except (InvalidActions, ValueError):
            rec.invalid = "invalid_actions"  # NaN/inf or wrong shape: never executed
            return rec, None
        return rec, chunk
