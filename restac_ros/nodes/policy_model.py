"""The policy_node's model backend: `backend: local | remote`.

local (`LoadedPolicy`): loads the checkpoint named by the node's parameters onto the
configured JAX device; `step` builds the Observation with the core builder, runs the
batch-1 `infer` and maps the chunk back to robot units.

remote (`RemotePolicy`): a restac-serve server does the model part (same builder path
on the server); `step` validates the sample locally, sends it and checks the reply
within `remote_timeout_s`. A lost, late or refused reply raises `PolicyDropped` (the
node counts it by reason and shows it on /diagnostics); the connection reconnects by
itself with backoff, so a restarted server is picked up without the node noticing
more than the dropped ticks. Both run on the node's inference worker thread, never on
the executor.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import jax
import numpy as np

from restac_ros.core.action_space import make_action_space
from restac_ros.core.observation import ObservationBuilder, ObservationSpec, RawSample
from restac_ros.model.observation import Observation
from restac_ros.model.policy import RestacPolicy
from restac_ros.model.tokenizer import PromptTokenizer
from restac_ros.serve import client as remote_client
from restac_ros.serve import remote

BACKENDS = ("local", "remote")


@dataclasses.dataclass(frozen=True)
class Inference:
    """One batch-1 policy call, batch dimension dropped."""

    actions_norm: np.ndarray  # [H, action_dim]
    codes: np.ndarray  # int32 [n_q], -1 in placeholder mode
    q_event: np.ndarray  # float32 [e_dim]
    logvar: float
    gate: float
    inference_ms: float


@dataclasses.dataclass(frozen=True)
class PolicyStep:
    """One tick's chunk in robot units, with what the node reports about it."""

    actions: np.ndarray  # float32 [H, robot_dim]
    inference: Inference
    build_ms: float  # observation preprocessing on the node


class PolicyDropped(Exception):
    """No chunk for this tick, for a reason that is not the observation's (remote only)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class LoadedPolicy:
    def __init__(self, policy: RestacPolicy, device: jax.Device, checkpoint: Path) -> None:
        self.policy = policy
        self.device = device
        self.checkpoint = checkpoint
        cfg = policy.config
        self.horizon = int(cfg.action_horizon)
        self.action_dim = int(cfg.action_dim)
        self.quantile_norm = bool(cfg.pi05)
        self.norm_stats = policy.norm_stats
        self.tokenizer = policy.tokenizer
        self.tactile_mode = "vqvae" if cfg.residual_vqvae_checkpoint else "placeholder"
        self.meta = policy.meta
        self._warm_lock = threading.Lock()
        self._warmup_ms: float | None = None

    def describe(self) -> str:
        c = self.policy.config
        return (
            f"{self.checkpoint.name}: {c.backbone} {c.paligemma_variant}/"
            f"{c.action_expert_variant}/{c.vision_variant}, H={self.horizon}, "
            f"action_dim={self.action_dim}, tactile={self.tactile_mode}, device={self.device}"
        )

    def warmup(self) -> float:
        """Compile for the batch-1 shapes (once per process); returns milliseconds."""
        with self._warm_lock:
            if self._warmup_ms is None:
                t0 = time.perf_counter()
                with jax.default_device(self.device):
                    self.policy.warmup(self.policy.config.fake_obs(1, tactile=True))
                self._warmup_ms = (time.perf_counter() - t0) * 1e3
            return self._warmup_ms

    def make_builder(self, spec: ObservationSpec) -> ObservationBuilder:
        return ObservationBuilder(spec, self.norm_stats, self.tokenizer)

    def step(self, builder: ObservationBuilder, sample: RawSample, seed: int) -> PolicyStep:
        """Build, infer, postprocess; raises InvalidObservation / InvalidActions."""
        t0 = time.perf_counter()
        obs = builder.build(sample)
        build_ms = (time.perf_counter() - t0) * 1e3
        result = self.infer(obs, seed)
        actions = builder.postprocess_actions(result.actions_norm,
                                              builder.state_vector(sample.joints))
        return PolicyStep(actions, result, build_ms)

    def diagnostic_values(self) -> dict[str, object]:
        return {"backend": "local"}

    def infer(self, obs: Observation, seed: int) -> Inference:
        with jax.default_device(self.device):
            r = self.policy.infer(obs, seed)
        d = r.diagnostics
        return Inference(
            actions_norm=np.asarray(r.actions_norm[0]),
            codes=np.asarray(d.codes[0], dtype=np.int32).reshape(-1),
            q_event=np.asarray(d.q_event[0], dtype=np.float32).reshape(-1),
            logvar=float(np.asarray(d.logvar).reshape(-1)[0]),
            gate=float(np.asarray(d.gate).reshape(-1)[0]),
            inference_ms=float(r.inference_ms),
        )


# Loaded + compiled policies of this process, so a lifecycle cleanup -> configure
# cycle (or several nodes in one process) does not reload an unchanged checkpoint.
_LOADED: dict[tuple, LoadedPolicy] = {}
_LOADED_LOCK = threading.Lock()


def load_policy(p: dict) -> LoadedPolicy | RemotePolicy:
    """backend remote: RemotePolicy (connects now). Otherwise checkpoint_dir /
    tokenizer_path / vqvae_checkpoint / device / num_steps -> LoadedPolicy.

    Cached per process by (checkpoint path, its restac_config.json mtime, device,
    num_steps, tokenizer_path).
    """
    if p.get("backend", "local") == "remote":
        return RemotePolicy(p)
    if not p["checkpoint_dir"]:
        raise ValueError("parameter checkpoint_dir is empty: point it at a policy checkpoint")
    ckpt = Path(p["checkpoint_dir"]).expanduser().resolve()
    config_file = ckpt / "restac_config.json"
    mtime = config_file.stat().st_mtime_ns if config_file.is_file() else 0
    key = (
        str(ckpt),
        mtime,
        p["device"],
        int(p["num_steps"]),
        p["tokenizer_path"],
        p["vqvae_checkpoint"],
    )
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load(p, ckpt)
        return _LOADED[key]


def _load(p: dict, ckpt: Path) -> LoadedPolicy:
    if p["vqvae_checkpoint"]:
        raise ValueError(
            "vqvae_checkpoint override is not supported by RestacPolicy.from_checkpoint yet; "
            "save the VQ-VAE into the policy checkpoint (restac-train-policy) and leave it ''"
        )
    devices = jax.devices(p["device"])
    with jax.default_device(devices[0]):
        policy = RestacPolicy.from_checkpoint(ckpt, num_steps=int(p["num_steps"]))
    if p["tokenizer_path"]:
        policy.tokenizer = PromptTokenizer(p["tokenizer_path"], policy.config.max_token_len)
    if policy.tokenizer is None:
        raise ValueError(f"{ckpt} has no assets/tokenizer.model and tokenizer_path is empty")
    if policy.norm_stats is None:
        raise ValueError(f"{ckpt} has no norm stats")
    return LoadedPolicy(policy, devices[0], ckpt)


class RemotePolicy:
    """The node's view of a restac-serve server (see the module doc)."""

    tactile_mode = "placeholder"
    norm_stats = None
    tokenizer = None
    quantile_norm = False  # the server's builder normalises; the node only validates
    meta: dict = {}

    def __init__(self, p: dict) -> None:
        self.client = remote_client.RemoteClient(
            p["remote_host"], int(p["remote_port"]), api_key=p["remote_api_key"],
            timeout_s=float(p["remote_timeout_s"]))
        self._expect = remote.ServerExpectation(
            joint_names=tuple(p["joint_names"]), action_space=p["action_space"],
            action_names=make_action_space(p["action_space"], p["joint_names"],
                                           float(p["action_dt_s"]), 1).names,
            dt_s=float(p["action_dt_s"]),
            camera_slots=tuple(p["camera_slots"]), tactile=bool(p["tactile_topic"]))
        self._connect_ms = self._first_connect(float(p["remote_connect_timeout_s"]))
        meta = self.client.metadata
        self.metadata = meta
        self.horizon = int(meta["action_horizon"])
        self.action_dim = int(meta["action_dim"])
        self.tactile_mode = str(meta.get("tactile_mode", "placeholder"))
        self._checked = meta
        self._server_ms = float("nan")
        self._batch = 0

    def _first_connect(self, timeout_s: float) -> float:
        """configure waits up to remote_connect_timeout_s for the server (backoff between
        attempts); then it fails, naming the server and the last error."""
        t0 = time.monotonic()
        while True:
            try:
                meta = self.client.connect()
                break
            except remote_client.RemoteError as err:
                if time.monotonic() - t0 > timeout_s:
                    raise ValueError(f"remote backend: no server at {self.client.url} within "
                                     f"remote_connect_timeout_s {timeout_s:g}: {err}") from None
                time.sleep(min(remote_client.FIRST_BACKOFF_S, timeout_s))
        if problems := self._expect.mismatches(meta):
            self.client.close()
            raise ValueError(f"remote backend: server {self.client.url} does not fit this "
                             f"node: {'; '.join(problems)}")
        return (time.monotonic() - t0) * 1e3

    def describe(self) -> str:
        return f"remote {self.client.url}: {self.metadata.get('policy', '?')}"

    def warmup(self) -> float:
        """The server compiled at its start; this is the connect time (ms)."""
        return self._connect_ms

    def make_builder(self, spec: ObservationSpec) -> ObservationBuilder:
        """Buffers, sampling and validation only: the server normalises and tokenises."""
        return remote.validation_builder(spec)

    def step(self, builder: ObservationBuilder, sample: RawSample, seed: int) -> PolicyStep:
        """Raises InvalidObservation (validated here) or PolicyDropped (no reply to use)."""
        t0 = time.perf_counter()
        request = remote.request_from_sample(builder, sample, seed, self._checked)
        build_ms = (time.perf_counter() - t0) * 1e3
        t1 = time.perf_counter()
        try:
            reply = self.client.infer(request)
        except remote_client.RemoteError as err:
            raise PolicyDropped(err.kind, str(err)) from None
        rtt_ms = (time.perf_counter() - t1) * 1e3
        if self.client.metadata is not self._checked:  # reconnected: maybe another server
            if problems := self._expect.mismatches(self.client.metadata):
                self.client.close()
                raise PolicyDropped("remote_server_changed", "; ".join(problems))
            self._checked = self.client.metadata
        try:
            chunk = remote.parse_reply(reply, self.horizon, builder.spec.robot_dim)
        except remote.BadReply as err:
            raise PolicyDropped("remote_bad_reply", str(err)) from None
        self._server_ms, self._batch = chunk.server_infer_ms, chunk.batch_size
        inference = Inference(actions_norm=chunk.actions, codes=chunk.codes,
                              q_event=chunk.q_event, logvar=chunk.logvar, gate=chunk.gate,
                              inference_ms=rtt_ms)
        return PolicyStep(chunk.actions, inference, build_ms)

    def diagnostic_values(self) -> dict[str, object]:
        c = self.client
        values: dict[str, object] = {
            "backend": "remote",
            "remote.url": c.url,
            "remote.connected": c.connected,
            "remote.last_error": c.last_error or "<none>",
            "remote.server_infer_ms_last": self._server_ms,
            "remote.server_batch_last": self._batch,
        }
        for key, count in sorted(c.counters.items()):
            values[f"remote.{key}"] = count
        return values
