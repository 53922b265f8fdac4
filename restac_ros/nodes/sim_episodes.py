"""Closed-loop episodes over DDS: sim_node -> policy_node -> chunk_executor -> sim_node.

`restac-eval-sim --transport dds` (restac_ros.eval.sim_cli) and the parity test use this:
the real nodes run in their own process (`restac-bringup --launch sim`, the same nodes and
YAML as launch/sim.launch.py), this process starts each seeded episode on `/sim/reset`
and reads `/sim/episode` (the sim's report), the ActionChunks and the tactile
diagnostics, and returns each episode in the in-process runner's result layout
(restac_ros.sim.closed_loop.EpisodeResult.as_dict()), so sim_report writes the same
metrics and report. Lockstep makes the episode independent of timing: for the same
seed it matches the in-process run to float round-off (test/nodes/test_sim_dds.py).
Over the wire the executor's hold statuses are not visible: `hold_ticks` counts the
control ticks the sim had no command for (`no_command`), `invalid_ticks` the policy
ticks no chunk answered (`no_chunk`). Every wait is bounded; nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Int64, String

from restac_ros.msg import ActionChunk, TactileDiagnostics
from restac_ros.nodes import conversions, qos
from restac_ros.nodes.sim_node import EPISODE_QOS
from restac_ros.paths import config_path

START_TIMEOUT_S = 600.0  # bringup: import JAX, load and compile the policy
STOP_TIMEOUT_S = 30.0


class PipelineDied(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class DdsSpec:
    checkpoint: str
    params_path: str | None = None  # policy_node + chunk_executor (default config/policy.yaml)
    sim_params_path: str | None = None  # layered over it (default config/sim.yaml)
    seconds: float = 8.0
    noise_seed: int | None = None
    tactile_shape: tuple[int, int] = (128, 160)
    episode_timeout_s: float | None = None  # wall; None: 120 s + 60 x the episode length
    ablation: str = "on"  # on | vision_only (policy_node without a tactile topic)


# What the nodes can run: `zeroed` needs the branch's diagnostics and the closed gate's
# actions from one tick (two policy calls), which policy_node does not make.
DDS_ABLATIONS = ("on", "vision_only")


@dataclasses.dataclass
class ReceivedChunk:
    stamp_ns: int
    chunk_id: int
    actions: np.ndarray  # [H, D] as sent (float32 values)
    logvar: float
    gate: float
    inference_ms: float


class EpisodeClient(Node):
    """Requests episodes and records what the pipeline publishes about them."""

    def __init__(self, context=None) -> None:
        super().__init__("restac_eval_sim", context=context)
        self.reports: list[dict] = []
        self.chunks: list[ReceivedChunk] = []
        self.codes: dict[int, list[int]] = {}  # chunk stamp -> VQ codes
        self._reset_pub = self.create_publisher(Int64, "/sim/reset", qos.OUTPUT)
        self._subs = [
            self.create_subscription(String, "/sim/episode", self._on_report, EPISODE_QOS),
            self.create_subscription(ActionChunk, "/restac/action_chunk", self._on_chunk,
                                     qos.OUTPUT),
            self.create_subscription(TactileDiagnostics, "/restac/tactile/diagnostics",
                                     self._on_tactile, qos.OUTPUT),
        ]
        self._consumed = 0  # chunks of the episodes already returned

    def _on_report(self, msg: String) -> None:
        self.reports.append(json.loads(msg.data))

    def _on_chunk(self, msg: ActionChunk) -> None:
        rows = np.asarray(msg.actions, np.float32).reshape(int(msg.horizon), int(msg.action_dim))
        self.chunks.append(ReceivedChunk(conversions.stamp_to_ns(msg.header.stamp),
                                         int(msg.chunk_id), rows, float(msg.logvar),
                                         float(msg.gate), float(msg.inference_ms)))

    def _on_tactile(self, msg: TactileDiagnostics) -> None:
        self.codes[conversions.stamp_to_ns(msg.header.stamp)] = [int(c) for c in msg.vq_codes]

    def connected(self) -> bool:
        """The sim listens for resets and the policy's outputs reach this node."""
        return self._reset_pub.get_subscription_count() >= 1 and all(
            s.get_publisher_count() >= 1 for s in self._subs)

    def request(self, seed: int) -> int:
        """Start an episode; returns the index of the first report that can answer it."""
        start = len(self.reports)
        self._reset_pub.publish(Int64(data=int(seed)))
        return start

    def report_of(self, seed: int, since: int, state: str) -> dict | None:
        for r in self.reports[since:]:
            if r["seed"] == seed and (r["state"] == state or
                                      (state == "done" and r["state"] == "diverged")):
                return r
        return None

    def take_chunks(self, count: int) -> list[ReceivedChunk] | None:
        """The next `count` chunks (the sim's verdict count for the episode), once here."""
        if len(self.chunks) < self._consumed + count:
            return None
        out = self.chunks[self._consumed:self._consumed + count]
        self._consumed += count
        return out


def result_dict(report: dict, chunks: list[ReceivedChunk], codes: dict[int, list[int]],
                ablation: str = "on") -> dict:
    """The sim's report + the episode's chunks -> the in-process result layout."""
    by_tick_us = {round((c.stamp_ns - _epoch()) / 1e3): c for c in chunks}
    ticks, no_chunk = [], 0
    for t in report["ticks"]:
        c = by_tick_us.get(round(t["t_s"] * 1e6))
        rec = {**t, "logvar": None, "gate": None, "gate_branch": None, "codes": [],
               "inference_ms": None, "invalid": None}
        if c is None:
            rec["invalid"] = "no_chunk"
            no_chunk += 1
        elif ablation == "vision_only":  # no sensor: no tactile diagnostics (as in-process)
            rec.update(inference_ms=c.inference_ms)
        else:
            rec.update(logvar=c.logvar, gate=c.gate, gate_branch=c.gate,
                       codes=[x for x in codes.get(c.stamp_ns, []) if x >= 0],
                       inference_ms=c.inference_ms)
        ticks.append(rec)
    verdicts = dict(report["chunk_verdicts"])
    accepted = verdicts.pop("accepted", 0)
    holds = {"no_command": report["control_ticks_without_command"]}
    result = {
        "seed": report["seed"], "ablation": ablation, "success": report["success"],
        "time_to_success_s": report["time_to_success_s"], "duration_s": report["duration_s"],
        "peak_force_n": report["peak_force_n"], "closest_approach_m": report["closest_approach_m"],
        "hold_ticks": {k: v for k, v in holds.items() if v}, "control_ticks":
        report["control_ticks"], "chunks_accepted": accepted, "chunks_refused": verdicts,
        "invalid_ticks": {"no_chunk": no_chunk} if no_chunk else {}, "ticks": ticks,
        "diverged": report["diverged"], "wall_s": report["wall_s"],
        "final_joints": report["final_joints"], "mcap": None,
        "transport": "dds", "lockstep_timeouts": report["lockstep_timeouts"],
        "ungated_verdicts": report["ungated_verdicts"],
    }
    result["holds"] = int(sum(result["hold_ticks"].values()))
    return result


def _epoch() -> int:
    from restac_ros.sample_bag.writer import EPOCH_NS

    return EPOCH_NS


def write_params(spec: DdsSpec, directory: Path) -> tuple[Path, Path]:
    """The params files bringup reads: the policy's, and the sim overlay with this run's
    episode length, tactile shape, noise seed, episodes on request (autostart false)."""
    policy = Path(spec.params_path) if spec.params_path else config_path("policy.yaml")
    sim_src = Path(spec.sim_params_path) if spec.sim_params_path else config_path("sim.yaml")
    data = yaml.safe_load(sim_src.read_text())
    sim = data.setdefault("sim_node", {}).setdefault("ros__parameters", {})
    # episodes on request; steps as fast as the pipeline answers (up to 1000 a second)
    sim.update(autostart=False, episode_s=float(spec.seconds), wall_step_period_s=0.001,
               tactile_shape="x".join(str(int(v)) for v in spec.tactile_shape))
    policy_params = data.setdefault("policy_node", {}).setdefault("ros__parameters", {})
    if spec.noise_seed is not None:
        policy_params["seed"] = int(spec.noise_seed)
    if spec.ablation not in DDS_ABLATIONS:
        raise ValueError(f"ablation {spec.ablation!r}: over DDS only {DDS_ABLATIONS}")
    if spec.ablation == "vision_only":  # the spec without a tactile topic
        policy_params.update(tactile_topic="", tactile_required=False)
    directory.mkdir(parents=True, exist_ok=True)
    sim_path = directory / "sim_run.yaml"
    sim_path.write_text(yaml.safe_dump(data))
    return policy, sim_path


class DdsEpisodes:
    """The pipeline in a child process + an EpisodeClient here; a context manager."""

    def __init__(self, spec: DdsSpec, workdir: Path,
                 log: Callable[[str], None] | None = None) -> None:
        self.spec, self.workdir, self._log = spec, Path(workdir), log or (lambda s: None)
        self.proc: subprocess.Popen | None = None
        self.context = None
        self.client: EpisodeClient | None = None
        self._executor: SingleThreadedExecutor | None = None

    def __enter__(self) -> DdsEpisodes:
        policy, sim = write_params(self.spec, self.workdir)
        self._stderr = open(self.workdir / "bringup.log", "w")  # noqa: SIM115 (closed in exit)
        cmd = [sys.executable, "-m", "restac_ros.nodes.bringup", "--launch", "sim",
               "--params", str(policy), "--sim-params", str(sim),
               "--checkpoint", str(Path(self.spec.checkpoint).absolute())]
        self.proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=self._stderr,
                                     stderr=subprocess.STDOUT, text=True)
        try:
            self.context = rclpy.Context()
            rclpy.init(context=self.context)
            self.client = EpisodeClient(self.context)
            self._executor = SingleThreadedExecutor(context=self.context)
            self._executor.add_node(self.client)
            self._wait(self.client.connected, START_TIMEOUT_S, "the pipeline to come up")
        except BaseException:
            self.__exit__(None, None, None)  # no child process or participant left behind
            raise
        return self

    def _wait(self, condition: Callable[[], bool], timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.proc.poll() is not None:
                raise PipelineDied(f"restac-bringup exited ({self.proc.returncode}) while "
                                   f"waiting for {what}:\n{self.log_tail()}")
            self._executor.spin_once(timeout_sec=0.05)
        raise TimeoutError(f"no {what} within {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        self._stderr.flush()
        return (self.workdir / "bringup.log").read_text()[-chars:]

    def run(self, seed: int) -> tuple[dict, list[ReceivedChunk]]:
        """One seeded episode: (result dict, its chunks in order)."""
        timeout = self.spec.episode_timeout_s or 120.0 + 60.0 * self.spec.seconds
        client = self.client
        since = client.request(seed)
        t0 = time.monotonic()
        report = self._wait(lambda: client.report_of(seed, since, "done"), timeout,
                            f"the end of episode seed {seed}")
        count = sum(report["chunk_verdicts"].values())
        chunks = self._wait(lambda: client.take_chunks(count), 60.0,
                            f"the {count} chunks of episode seed {seed}")
        result = result_dict(report, chunks, client.codes, self.spec.ablation)
        self._log(f"seed {seed}: success {report['success']}, {len(chunks)} chunks, "
                  f"{time.monotonic() - t0:.1f}s wall")
        return result, chunks

    def __exit__(self, *exc) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(timeout_sec=2.0)
            if self.client is not None:
                self.client.destroy_node()
            if self.context is not None:
                rclpy.try_shutdown(context=self.context)
            self._stderr.close()


def run_dds(spec: DdsSpec, seeds, workdir: Path, ablations=("on",),
            log: Callable[[str], None] | None = None) -> list[dict]:
    """Every seed per ablation, one pipeline per ablation (its own policy_node params)."""
    results = []
    for ablation in ablations:
        run = dataclasses.replace(spec, ablation=ablation)
        with DdsEpisodes(run, Path(workdir) / ablation, log) as episodes:
            results += [episodes.run(int(s))[0] for s in seeds]
    return results
