"""Run a policy over a bag in bag time and write every output of the evaluation.

Observations come from `restac_ros.core.bag_dataset.BagDataset` with the
ObservationBuilder built from the same parameters as policy_node; actions go
back to robot units with the builder's `postprocess_actions`. Ticks and noise seeds
follow `restac_ros.core.ticks` (tick grid from the bag start in stamp time, seed from
(seed, tick stamp)), as policy_node's `tick_on: stamps` does: replaying the bag through
DDS gives the same chunks (test/eval/test_live_parity.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from restac_ros.core import ticks
from restac_ros.core.bag_dataset import TEACHER_TOPIC, BagDataset
from restac_ros.core.observation_spec import delta_action_mask_from_meta
from restac_ros.model.policy import stack_observations

from . import metrics, params, plots, prediction_bag, report_html
from .prefetch import Prefetcher
from .records import StepRecord, stack

_log = logging.getLogger(__name__)
_PLOTS = ("actions.png", "error_by_horizon.png", "mae_per_dim.png", "logvar_gate.png",
          "vq_usage.png", "inference_ms.png")


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    rate_hz: float
    seed: int
    teacher_topic: str = TEACHER_TOPIC
    progress: bool = True
    max_steps: int | None = None  # stop after this many policy calls (None: whole bag)
    # Ticks per policy call. Ticks are independent offline (action_prev comes from the
    # recorded states), so they batch; chunks equal one call per tick up to ~1e-6
    # (test_live_parity). 1: one call per tick, inference_ms then is the live latency.
    batch_size: int = 8


@dataclasses.dataclass
class BagResult:
    bag: Path
    records: list[StepRecord]
    contact_intervals: list[tuple[int, int]]
    invalid: Counter
    ticks: int
    warmup_s: float
    wall_s: float
    bag_duration_s: float
    interrupted: bool = False
    damage: list[str] = dataclasses.field(default_factory=list)  # BagDataset.damage()

    @property
    def no_observation(self) -> str:
        """Why nothing was evaluated, for a bag without one valid observation."""
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.invalid.items())) or "no ticks"
        return f"no valid observation in {self.ticks} ticks ({reasons})"


def hold_commands(stamps: np.ndarray, commands: np.ndarray, t_ns: int) -> np.ndarray:
    """The last teacher command strictly before t_ns (what the robot was executing when the
    observation was taken); NaN when none. The command stamped exactly t_ns is the target."""
    i = int(np.searchsorted(stamps, t_ns, side="left")) - 1
    if i < 0:
        return np.full(commands.shape[1], np.nan)
    return commands[i]


def evaluate_bag(bag: Path, policy, p: dict, opts: EvalOptions) -> BagResult:
    """Run the policy at opts.rate_hz over the bag; KeyboardInterrupt keeps what is done.

    wall_s covers everything from opening the bag; warmup_s (jit compilation) is part of it.
    """
    t0 = time.perf_counter()
    mask = p.get("delta_action_mask")
    if mask is None:  # restac-eval's cli copies the checkpoint's; direct callers may not
        mask = delta_action_mask_from_meta(policy.meta or {}, params.action_space(p, 1).dim)
    builder = params.builder_for(p, policy.config, policy.norm_stats, policy.tokenizer,
                                 delta_action_mask=tuple(mask))
    ds = BagDataset(bag, builder, opts.rate_hz, teacher_topic=opts.teacher_topic,
                    prompt_topic=p["prompt_topic"] or None,
                    unstamped_policy=p["unstamped_policy"])
    try:
        return _evaluate(ds, policy, builder, opts, t0)
    finally:
        ds.close()


def _steps_with_hold(ds: BagDataset):
    """(step, hold-baseline command) per tick. Runs in the prefetch thread: the teacher
    series grows as the replay reads it, so only the producer touches the dataset."""
    for step in ds:
        hold = None
        if step.observation is not None:
            # The commands read so far include all those stamped before this tick.
            t_stamps, t_cmds = ds.teacher_series()
            hold = hold_commands(t_stamps, t_cmds, step.stamp_ns)
        yield step, hold


class _Batcher:
    """Collects valid ticks and infers them batch_size at a time (padded to a fixed shape:
    one compilation). inference_ms per record: the call's time over its real ticks."""

    def __init__(self, policy, builder, opts: EvalOptions, result: BagResult) -> None:
        self.policy, self.builder, self.opts, self.result = policy, builder, opts, result
        self.pending: list = []

    def add(self, step, hold) -> None:
        self.pending.append((step, hold))
        if len(self.pending) >= self.opts.batch_size:
            self.flush()

    def flush(self) -> None:
        """Infers the pending ticks; they stay pending until the call returns (an
        interrupted call is retried by the runner's interrupt handling)."""
        if not self.pending:
            return
        steps = self.pending
        pad = self.opts.batch_size - len(steps)
        observations = [s.observation for s, _ in steps] + [steps[-1][0].observation] * pad
        seeds = [ticks.tick_seed(self.opts.seed, s.stamp_ns) for s, _ in steps]
        seeds += seeds[-1:] * pad
        obs = stack_observations(observations)
        if self.result.warmup_s == 0.0:  # first call compiles; timed apart, then re-run
            t0 = time.perf_counter()
            self.policy.infer_batch(obs, seeds)
            self.result.warmup_s = time.perf_counter() - t0
        r = self.policy.infer_batch(obs, seeds)
        self.pending = []
        d = r.diagnostics
        for i, (step, hold) in enumerate(steps):
            actions = self.builder.postprocess_actions(
                r.actions_norm[i], self.builder.state_vector(step.sample.joints))
            self.result.records.append(StepRecord(
                stamp_ns=step.stamp_ns, actions=actions,
                target=np.where(step.target_mask[:, None], step.targets, np.nan), hold=hold,
                inference_ms=float(r.inference_ms) / len(steps),
                logvar=float(np.asarray(d.logvar[i]).reshape(-1)[0]),
                gate=float(np.asarray(d.gate[i]).reshape(-1)[0]),
                codes=np.asarray(d.codes[i]).reshape(-1),
                q_event=np.asarray(d.q_event[i]).reshape(-1),
                tactile_valid=bool(np.asarray(step.observation.tactile_mask)[0])))


def _evaluate(ds: BagDataset, policy, builder, opts: EvalOptions, t0: float) -> BagResult:
    if opts.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {opts.batch_size}")
    bag = ds.path
    intervals = ds.info.contact_intervals()
    result = BagResult(Path(bag), [], intervals, Counter(), 0, 0.0, 0.0, ds.info.duration_s)
    total = len(ds) if opts.max_steps is None else min(len(ds), opts.max_steps)
    bar = tqdm(total=total, desc=f"eval {Path(bag).name}", unit="tick",
               disable=not opts.progress)
    batcher = _Batcher(policy, builder, opts, result)
    # The bag is read one thread ahead of the policy (prefetch.py): reading overlaps inference.
    reader = Prefetcher(_steps_with_hold(ds), depth=2 * opts.batch_size, name="eval-bag-reader")
    try:
        for step, hold in reader:
            if opts.max_steps is not None and \
                    len(result.records) + len(batcher.pending) >= opts.max_steps:
                break
            result.ticks += 1
            bar.update(1)
            if step.observation is None:
                result.invalid[step.invalid.reason.value] += 1
                continue
            batcher.add(step, hold)
        batcher.flush()
    except KeyboardInterrupt:
        result.interrupted = True
        reader.close()
        # The ticks already read are kept too (a second Ctrl-C skips them).
        with contextlib.suppress(KeyboardInterrupt):
            batcher.flush()
        _log.warning("interrupted after %d policy calls; writing partial results",
                     len(result.records))
    finally:
        reader.close()
        bar.close()
        result.damage = ds.damage()
        result.wall_s = time.perf_counter() - t0
    return result


def write_outputs(out: Path, result: BagResult, policy, p: dict, opts: EvalOptions,
                  checkpoint: Path) -> dict:
    """metrics.json, steps.csv, PNG plots, report.html, summary.png and predictions/ (MCAP)."""
    out.mkdir(parents=True, exist_ok=True)
    cfg = policy.config
    names = list(p["joint_names"]) if p["action_space"] == "joint_position" else list(
        params.action_space(p, cfg.action_horizon).names)
    dt = float(p["action_dt_s"])
    if not result.records:
        return _write_empty_outputs(out, result, cfg, names, dt, opts, checkpoint)
    arrays = stack(result.records)
    m = metrics.compute_metrics(arrays, dt, names, result.contact_intervals)
    mode = "vqvae" if cfg.residual_vqvae_checkpoint else "placeholder"
    evaluated_s = (arrays.stamp_ns[-1] - arrays.stamp_ns[0]) / 1e9 + 1.0 / opts.rate_hz
    m["run"] = {
        "bag": str(result.bag), "checkpoint": str(checkpoint), "rate_hz": opts.rate_hz,
        "seed": opts.seed, "num_steps": int(p["num_steps"]), "ticks": result.ticks,
        "batch_size": opts.batch_size,
        "invalid_ticks": dict(result.invalid), "warmup_s": result.warmup_s,
        "wall_s": result.wall_s, "bag_duration_s": result.bag_duration_s,
        # Speed excludes the one-off compilation (warmup_s, reported separately).
        "realtime_factor": (evaluated_s / (result.wall_s - result.warmup_s))
        if result.wall_s > result.warmup_s else None,
        "interrupted": result.interrupted, "tactile_mode": mode, "damage": result.damage,
    }
    (out / "metrics.json").write_text(json.dumps(m, indent=2, allow_nan=False))
    metrics.write_step_csv(out / "steps.csv", arrays, names, result.contact_intervals)
    spans = plots.contact_intervals_s(arrays, result.contact_intervals)
    figs = [
        plots.plot_actions(out / "actions.png", arrays, names, spans, dt_s=dt),
        plots.plot_error_by_horizon(out / "error_by_horizon.png", arrays),
        plots.plot_mae_per_dim(out / "mae_per_dim.png", m),
        plots.plot_logvar_gate(out / "logvar_gate.png", arrays, spans),
        plots.plot_vq_usage(out / "vq_usage.png", m["vq_code_usage"]),
        plots.plot_inference(out / "inference_ms.png", arrays),
    ]
    title = f"restac-eval: {result.bag.name} with {checkpoint.name}"
    plots.render_summary_png(out / "summary.png", arrays, m, spans, title)
    notes = _notes(result)
    inputs = {"bag": result.bag, "checkpoint": checkpoint, "params": p.get("_path"),
              "rate": f"{opts.rate_hz} Hz", "seed": opts.seed, "tactile encoder": mode,
              "model": f"{cfg.backbone} {cfg.paligemma_variant}/{cfg.action_expert_variant}/"
                       f"{cfg.vision_variant}",
              "hold baseline": "last teacher command strictly before the observation time",
              "policy calls": f"{opts.batch_size} tick(s) per call; inference ms per tick = "
                              "call time / ticks in it (--batch 1: the live per-tick latency)",
              "speed": f"{m['run']['realtime_factor']:.1f}x real time"
                       if m["run"]["realtime_factor"] else "n/a"}
    report_html.write_report(out / "report.html", title, m, figs, inputs, notes)
    pred_dir = out / "predictions"
    if pred_dir.exists():
        shutil.rmtree(pred_dir)
    m["run"]["prediction_messages"] = prediction_bag.write_prediction_bag(
        pred_dir, arrays, names, dt, mode, tactile_frame=p["tactile_frame_id"],
        action_frame=p["ee_frame_id"] if p["action_space"] != "joint_position" else "")
    (out / "metrics.json").write_text(json.dumps(m, indent=2, allow_nan=False))
    return m


def _notes(result: BagResult) -> list[str]:
    notes = []
    if result.interrupted:
        notes.append(f"Interrupted: partial results over the first {len(result.records)} "
                     "policy calls.")
    notes += [f"Damaged bag: {d}" for d in result.damage]
    if not result.records:
        notes.append(f"Nothing evaluated: {result.no_observation}.")
    elif result.invalid:
        notes.append(f"Ticks without an observation: {dict(result.invalid)}.")
    return notes


def _write_empty_outputs(out: Path, result: BagResult, cfg, names: list[str], dt: float,
                         opts: EvalOptions, checkpoint: Path) -> dict:
    """The report of a bag with no policy call (no valid observation, or interrupted before
    the first): metrics.json with steps 0 and the run's counts, a header-only steps.csv
    and a report.html saying why. No plots, no predictions/."""
    m = {
        "steps": 0, "duration_s": 0.0, "horizon": cfg.action_horizon, "dt_s": dt,
        "action_names": names, "horizon_steps": [], "policy": {}, "hold_baseline": {},
        "policy_vs_hold": {},
        "run": {
            "bag": str(result.bag), "checkpoint": str(checkpoint), "rate_hz": opts.rate_hz,
            "seed": opts.seed, "ticks": result.ticks, "batch_size": opts.batch_size,
            "invalid_ticks": dict(result.invalid), "warmup_s": result.warmup_s,
            "wall_s": result.wall_s, "bag_duration_s": result.bag_duration_s,
            "realtime_factor": None, "interrupted": result.interrupted,
            "damage": result.damage, "prediction_messages": 0,
            "no_observation": result.no_observation,
        },
    }
    (out / "metrics.json").write_text(json.dumps(m, indent=2, allow_nan=False))
    header = ["step", "stamp_ns", "time_s", "inference_ms", "logvar", "gate", "tactile_valid",
              "in_contact", "vq_codes"]
    (out / "steps.csv").write_text(",".join(header) + "\n")
    for stale in (*_PLOTS, "summary.png"):  # a previous run's, into the same directory
        (out / stale).unlink(missing_ok=True)
    if (out / "predictions").is_dir():
        shutil.rmtree(out / "predictions")
    title = f"restac-eval: {result.bag.name} with {checkpoint.name}"
    report_html.write_notice(out / "report.html", title, _notes(result))
    return m
