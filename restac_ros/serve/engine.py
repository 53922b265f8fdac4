"""The server's model side: requests -> one compiled policy call per batch -> replies.

Each request goes through the core ObservationBuilder (the node's and restac-eval's
path), the batch through `RestacPolicy.infer` (one request: the live node's exact
call) or `infer_batch` (several, padded to a power of two so only log2(max_batch)+1
programs ever compile, all at warm-up), and each chunk back through
`postprocess_actions` with its own raw state. A request that fails (invalid
observation, non-finite actions) fails alone; the rest of its batch is answered.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from restac_ros.core.observation import InvalidActions, InvalidObservation, ObservationBuilder
from restac_ros.model.policy import RestacPolicy, stack_observations
from restac_ros.serve.requests import FORK, KEYSETS, ServeRequest, accepted_keys

PROTOCOL_VERSION = 1


class RequestFailed(Exception):
    """One request refused by the core or the model; `reason` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    def __reduce__(self):  # crosses process boundaries (Ray) intact
        return type(self), (self.reason, self.message)


@dataclasses.dataclass(frozen=True)
class Job:
    request: ServeRequest
    seed: int  # the request's seed, or the server's per-client one


def bucket_sizes(max_batch: int) -> tuple[int, ...]:
    """Batch sizes that get compiled: 1, 2, 4, ... up to and including max_batch."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    sizes, n = [], 1
    while n < max_batch:
        sizes.append(n)
        n *= 2
    return (*sizes, max_batch)


class PolicyEngine:
    def __init__(self, policy: RestacPolicy, builder: ObservationBuilder, *,
                 max_batch: int = 8, tactile_mode: str = "placeholder",
                 describe: str = "") -> None:
        self.policy = policy
        self.builder = builder
        self.max_batch = int(max_batch)
        self.buckets = bucket_sizes(self.max_batch)
        self.tactile_mode = tactile_mode
        self.describe = describe

    def warmup(self) -> float:
        """Compile every bucket size; returns seconds."""
        t0 = time.perf_counter()
        obs = self.policy.config.fake_obs(1, tactile=True)
        self.policy.infer(obs, 0)
        for n in self.buckets[1:]:
            self.policy.infer_batch(stack_observations([obs] * n), np.arange(n))
        return time.perf_counter() - t0

    def metadata(self) -> dict:
        """The first frame every client receives (openpi: the policy's metadata)."""
        spec = self.builder.spec
        cfg = self.policy.config
        return {
            "server": "restac-serve",
            "protocol_version": PROTOCOL_VERSION,
            "policy": self.describe,
            "action_space": spec.action_space.preset,
            "action_names": list(spec.action_space.names),
            "joint_names": list(spec.joint_names),
            "action_horizon": int(cfg.action_horizon),
            "action_dim": int(cfg.action_dim),
            "dt": float(spec.action_space.dt_s),
            "camera_slots": list(spec.camera_streams),
            "tactile": spec.tactile_stream is not None,
            "tactile_required": bool(spec.tactile_required),
            "tactile_mode": self.tactile_mode,
            "default_prompt": spec.default_prompt or "",
            "pipeline": getattr(spec, "pipeline", "default"),
            "max_batch": self.max_batch,
            "observation_keys": {name: accepted_keys(spec, name) for name in KEYSETS},
        }

    def run(self, jobs: list[Job]) -> list[dict | RequestFailed]:
        """One reply (or the reason it failed) per job, in order."""
        results: list[dict | RequestFailed | None] = [None] * len(jobs)
        ready: list[tuple[int, object]] = []
        for i, job in enumerate(jobs):
            try:
                ready.append((i, self.builder.build(job.request.sample)))
            except InvalidObservation as exc:
                results[i] = RequestFailed(exc.reason.value, exc.message)
        if ready:
            chunks, diag, model_ms = self._infer([o for _, o in ready],
                                                 [jobs[i].seed for i, _ in ready])
            for row, (i, _) in enumerate(ready):
                results[i] = self._reply(jobs[i], chunks[row], diag, row, model_ms, len(ready))
        return results

    def _infer(self, observations: list, seeds: list[int]):
        n = len(observations)
        if n == 1:
            r = self.policy.infer(observations[0], seeds[0])
        else:
            size = next(b for b in self.buckets if b >= n)
            pad = size - n  # repeat the first observation; its rows are discarded
            obs = stack_observations(observations + observations[:1] * pad)
            r = self.policy.infer_batch(obs, np.asarray(seeds + [0] * pad, np.int64))
        return r.actions_norm, r.diagnostics, r.inference_ms

    def _reply(self, job: Job, chunk: np.ndarray, diag, row: int, model_ms: float,
               batch: int) -> dict | RequestFailed:
        try:
            actions = self.builder.postprocess_actions(chunk, job.request.state)
        except InvalidActions as exc:
            return RequestFailed("invalid_actions", str(exc))
        reply = {
            "actions": actions,
            "tactile": {
                "vq_codes": np.asarray(diag.codes[row], np.int32).reshape(-1),
                "q_event": np.asarray(diag.q_event[row], np.float32).reshape(-1),
                "logvar": float(np.asarray(diag.logvar[row]).reshape(-1)[0]),
                "gate": float(np.asarray(diag.gate[row]).reshape(-1)[0]),
                "mode": self.tactile_mode,
                "valid": job.request.sample.tactile is not None,
            },
            "seed": int(job.seed),
            "policy_timing": {"infer_ms": float(model_ms), "batch_size": int(batch)},
        }
        if job.request.keyset == FORK:
            reply["action"] = actions  # the fork's ResTacOutputs key
        if job.request.request_id is not None:
            reply["request_id"] = job.request.request_id
        return reply
