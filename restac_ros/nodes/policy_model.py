"""The policy_node's view of a RestacPolicy checkpoint (restac_ros.model.policy).

Loads the checkpoint named by the node's parameters onto the configured JAX
device and exposes what the node needs: shapes, norm stats, tokenizer,
warm-up and a batch-1 `infer` returning plain numpy values.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import jax
import numpy as np

from restac_ros.model.observation import Observation
from restac_ros.model.policy import RestacPolicy
from restac_ros.model.tokenizer import PromptTokenizer


@dataclasses.dataclass(frozen=True)
class Inference:
    """One batch-1 policy call, batch dimension dropped."""

    actions_norm: np.ndarray  # [H, action_dim]
    codes: np.ndarray  # int32 [n_q], -1 in placeholder mode
    q_event: np.ndarray  # float32 [e_dim]
    logvar: float
    gate: float
    inference_ms: float


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


def load_policy(p: dict) -> LoadedPolicy:
    """checkpoint_dir / tokenizer_path / vqvae_checkpoint / device / num_steps -> LoadedPolicy.

    Cached per process by (checkpoint path, its restac_config.json mtime, device,
    num_steps, tokenizer_path).
    """
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
