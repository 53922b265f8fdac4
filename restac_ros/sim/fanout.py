"""Closed-loop episodes fanned out: in this process, a spawn process pool, or Ray actors.

Every worker (process or Ray actor) loads the policy once (`EpisodeWorker`) and runs
(seed, ablation) tasks; results come back as `EpisodeResult.as_dict()` in task order,
whatever ran where. Episodes are independent and deterministic (same seed, ablation and
checkpoint -> the same result), so the fan-out changes wall time only. Ray is the
multi-machine path (`ray.init(address=...)` to join a user's cluster); there is no
scheduler of our own.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from pathlib import Path

from .closed_loop import Ablation, ClosedLoopConfig, ClosedLoopRunner, load_executor_params
from .env import SimConfig
from .tactile import TactileConfig


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to build its runner (picklable, paths as strings)."""

    checkpoint: str
    params_path: str | None = None
    seconds: float = 8.0
    noise_seed: int | None = None
    tactile_shape: tuple[int, int] = (128, 160)
    mcap_dir: str | None = None  # OUT/episodes: <ablation>_seed<NNN>/ per episode
    mcap_images: bool = True
    compile_cache: str | None = None  # persistent XLA cache directory


@dataclasses.dataclass(frozen=True)
class Task:
    seed: int
    ablation: str

    @property
    def name(self) -> str:
        return f"{self.ablation}_seed{self.seed:03d}"


def make_tasks(seeds, ablations) -> list[Task]:
    return [Task(int(s), Ablation(a).value) for a in ablations for s in seeds]


class EpisodeWorker:
    """One loaded policy and its runner; `run(task)` -> the episode's result dict."""

    def __init__(self, spec: RunSpec) -> None:
        from restac_ros.eval import params as eval_params
        from restac_ros.model.policy import RestacPolicy

        if spec.compile_cache:
            from restac_ros.eval.demo_checkpoint import enable_compile_cache

            enable_compile_cache(spec.compile_cache)
        p = eval_params.load_params(spec.params_path)
        self.spec = spec
        policy = RestacPolicy.from_checkpoint(spec.checkpoint, num_steps=int(p["num_steps"]))
        config = ClosedLoopConfig(
            policy_params=p, executor_params=load_executor_params(spec.params_path),
            seconds=spec.seconds, noise_seed=spec.noise_seed,
            sim=SimConfig(tactile=TactileConfig(shape=tuple(spec.tactile_shape))))
        self.runner = ClosedLoopRunner(policy, config)

    def run(self, task: Task) -> dict:
        mcap = None if self.spec.mcap_dir is None else Path(self.spec.mcap_dir) / task.name
        result = self.runner.run_episode(task.seed, task.ablation, mcap_path=mcap,
                                         mcap_images=self.spec.mcap_images)
        return result.as_dict()


_WORKER: EpisodeWorker | None = None  # one per pool process
_INIT_ERROR: str | None = None


class WorkerError(RuntimeError):
    """A worker could not build its runner (checkpoint, params); names the cause."""


def _init_process(spec: RunSpec) -> None:
    global _WORKER, _INIT_ERROR
    try:
        _WORKER = EpisodeWorker(spec)
    except Exception as err:  # re-raised by every task: a Pool respawns a dying initializer
        _INIT_ERROR = f"{type(err).__name__}: {err}"  # forever, so the error travels as text


def _run_in_process(task: Task) -> dict:
    if _INIT_ERROR is not None:
        raise WorkerError(_INIT_ERROR)
    return _WORKER.run(task)


def run_local(spec: RunSpec, tasks: list[Task], workers: int = 1) -> list[dict]:
    """workers 1: here, in this process; more: a spawn pool (fork would copy JAX's threads)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or len(tasks) <= 1:
        worker = EpisodeWorker(spec)
        return [worker.run(t) for t in tasks]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(workers, len(tasks)), _init_process, (spec,)) as pool:
        return pool.map(_run_in_process, tasks, chunksize=1)


def run_ray(spec: RunSpec, tasks: list[Task], workers: int = 1,
            address: str | None = None) -> list[dict]:
    """The same workers as Ray actors (one CPU each), over a running runtime if there is
    one, else `ray.init(address)` (None: a local runtime)."""
    import ray
    from ray.util import ActorPool

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False)
    actor = ray.remote(num_cpus=1)(EpisodeWorker)
    actors = [actor.remote(spec) for _ in range(min(workers, max(len(tasks), 1)))]
    try:
        pool = ActorPool(actors)
        return list(pool.map(lambda a, t: a.run.remote(t), tasks))
    finally:
        for a in actors:
            ray.kill(a)
