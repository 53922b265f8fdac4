"""`RestacPolicy`: a Pi0_ResTac checkpoint as a jit-compiled `infer(obs, seed)`.

Checkpoint layout (docs/ARCHITECTURE.md):
  CKPT/restac_config.json   Pi0ResTacConfig fields (vqvae ckpt path relative to CKPT)
  CKPT/params/              orbax, openpi tree layout
  CKPT/assets/<asset_id>/norm_stats.json
  CKPT/assets/tokenizer.model
  CKPT/policy_meta.json     action space, action names, dt, camera slots, asset_id,
                            delta_action_mask (action dims predicted relative to the state)
An openpi / ResTacVLA directory (params/ + assets/<asset_id>/, no restac_config.json)
loads too: `model.openpi_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import shutil
import time

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np

from restac_ros.model import checkpoint as _ckpt
from restac_ros.model import norm_stats as _ns
from restac_ros.model import validation as _validation
from restac_ros.model.config import Pi0ResTacConfig
from restac_ros.model.observation import Observation
from restac_ros.model.pi0_restac import Pi0ResTac, TactileDiagnostics
from restac_ros.model.tokenizer import PromptTokenizer

CONFIG_FILE = "restac_config.json"
META_FILE = "policy_meta.json"
TOKENIZER_FILE = "tokenizer.model"
VQVAE_DIR = "vqvae"


@dataclasses.dataclass(frozen=True)
class PolicyResult:
    actions_norm: np.ndarray  # float32 [B, H, action_dim], normalised
    diagnostics: TactileDiagnostics  # numpy leaves
    inference_ms: float


def save_policy_checkpoint(directory, model: Pi0ResTac, config: Pi0ResTacConfig,
                           norm_stats: dict[str, _ns.NormStats], tokenizer_path,
                           meta: dict) -> pathlib.Path:
    """Writes the checkpoint directory (must not exist or be empty); returns its path."""
    d = pathlib.Path(directory).absolute()
    if d.exists() and any(d.iterdir()):
        raise FileExistsError(f"checkpoint directory {d} is not empty")
    d.mkdir(parents=True, exist_ok=True)
    cfg = config
    if config.residual_vqvae_checkpoint:
        # Copy the frozen VQ-VAE in so the directory is self-contained.
        src = pathlib.Path(config.residual_vqvae_checkpoint)
        (d / VQVAE_DIR).mkdir()
        shutil.copy2(src, d / VQVAE_DIR / src.name)
        cfg = dataclasses.replace(config, residual_vqvae_checkpoint=f"{VQVAE_DIR}/{src.name}")
    (d / CONFIG_FILE).write_text(cfg.to_json())
    _ckpt.save_model_params(d / "params", model)
    meta = dict(meta)
    asset_id = meta.setdefault("asset_id", "default")
    _ns.save_norm_stats(d / "assets" / asset_id / _ns.FILE_NAME, norm_stats)
    shutil.copy2(tokenizer_path, d / "assets" / TOKENIZER_FILE)
    (d / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return d


def load_policy_config(directory) -> Pi0ResTacConfig:
    d = pathlib.Path(directory).absolute()
    path = d / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a restac policy checkpoint")
    with _validation.naming_file(path):
        cfg = Pi0ResTacConfig.from_json(json.dumps(_validation.read_json(path)))
    vq = cfg.residual_vqvae_checkpoint
    if vq and not pathlib.Path(vq).is_absolute():
        cfg = dataclasses.replace(cfg, residual_vqvae_checkpoint=str(d / vq))
    return cfg


def build_model(cfg: Pi0ResTacConfig, params: dict, *, source=None) -> Pi0ResTac:
    """The model for `cfg` holding `params` (a restored param tree; every param must
    fit, see `checkpoint.merge_params`; `source` names the file in the error), plus the
    frozen VQ-VAE named in the config."""
    vqvae = None
    if cfg.use_tactile and cfg.residual_vqvae_checkpoint:
        from restac_ros.tactile.jax_port import load_jax_vqvae

        vqvae = load_jax_vqvae(cfg.residual_vqvae_checkpoint)
    # Abstract model (no random init of possibly billions of params), then the weights.
    model = nnx.eval_shape(lambda: Pi0ResTac(cfg, nnx.Rngs(0), vqvae=vqvae))
    try:
        _ckpt.merge_params(model, params)
    except _ckpt.CheckpointMismatchError as err:
        if source is None:
            raise
        raise _ckpt.CheckpointMismatchError(f"{source}: {err}") from None
    if vqvae is not None:
        model.tactile_encoder.vqvae.set_value(jax.tree.map(jnp.asarray, vqvae[0]))
    if cfg.dtype == "bfloat16":
        pg = nnx.state(model.PaliGemma, nnx.Param)
        nnx.update(model.PaliGemma, jax.tree.map(lambda x: x.astype(jnp.bfloat16), pg))
    return model


def _sample(graphdef, treedef, num_steps, leaves, obs, seed):
    """One noise seed for the batch (batch 1: the live node's call)."""
    model = nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))
    return model.sample_actions(jax.random.key(seed), obs, num_steps=num_steps)


def _sample_seeded(graphdef, treedef, num_steps, leaves, obs, seeds):
    """Batch of B observations, one noise seed each: sample i starts from the noise that
    `sample_actions(key(seeds[i]), obs_i)` draws for a batch of one."""
    model = nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))
    shape = (1, model.config.action_horizon, model.config.action_dim)
    noise = jax.vmap(lambda s: jax.random.normal(jax.random.key(s), shape)[0])(seeds)
    return model.sample_actions(None, obs, num_steps=num_steps, noise=noise)


def _seed_array(seeds) -> np.ndarray:
    """Noise seed(s) as uint32; out of [0, 2^32) is an error, not a silent wrap."""
    arr = np.asarray(seeds)
    if arr.dtype.kind not in "iu" or arr.size and (arr.min() < 0 or arr.max() >= 2**32):
        raise ValueError(f"noise seeds must be integers in [0, 2^32), got {seeds!r}")
    return arr.astype(np.uint32)


def stack_observations(observations) -> Observation:
    """Concatenate observations (numpy leaves, batch axis first) into one batch."""
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *observations)


class RestacPolicy:
    def __init__(self, model: Pi0ResTac, *, norm_stats=None, tokenizer=None, meta=None,
                 num_steps: int = 10):
        self.config: Pi0ResTacConfig = model.config
        self.norm_stats = norm_stats
        self.tokenizer = tokenizer
        self.meta = dict(meta or {})
        self.num_steps = num_steps
        graphdef, state = nnx.split(model)
        # The weights as a flat list: the per-call dispatch then flattens a list in C++
        # instead of the nnx.State tree in Python (~0.5 ms a call on this CPU).
        self._leaves, self._treedef = jax.tree.flatten(state)
        # One jitted function per policy: it compiles once per input shape.
        fixed = (graphdef, self._treedef, num_steps)
        self._sample = jax.jit(functools.partial(_sample, *fixed))
        self._sample_seeded = jax.jit(functools.partial(_sample_seeded, *fixed))

    @classmethod
    def from_checkpoint(cls, directory, *, dtype: str | None = None, num_steps: int = 10,
                        config: Pi0ResTacConfig | None = None, asset_id: str | None = None):
        """Loads CKPT (layout above), or an openpi / ResTacVLA checkpoint directory (no
        restac_config.json: `params/` + `assets/<asset_id>/norm_stats.json`; `config`
        given or inferred from the param tree, see `model.openpi_checkpoint`).
        `dtype="bfloat16"` stores the VLM/vision weights in bf16 and computes in bf16
        (GPU); default: the saved config's dtype."""
        d = pathlib.Path(directory).absolute()
        if not (d / CONFIG_FILE).is_file():
            if not (d / "params").is_dir():
                raise FileNotFoundError(f"{d}: neither {CONFIG_FILE} (restac_ros checkpoint) "
                                        "nor params/ (openpi / ResTacVLA checkpoint) found")
            from restac_ros.model.openpi_checkpoint import load_openpi_policy

            return load_openpi_policy(d, config=config, asset_id=asset_id, dtype=dtype,
                                      num_steps=num_steps)
        cfg = config or load_policy_config(d)
        if dtype is not None:
            cfg = dataclasses.replace(cfg, dtype=dtype)
        meta = _validation.read_json(d / META_FILE) if (d / META_FILE).is_file() else {}
        asset_id = asset_id or meta.get("asset_id", "default")
        stats = _ns.load_norm_stats(d / "assets" / asset_id / _ns.FILE_NAME)
        _validation.check_norm_stats(stats, d / "assets" / asset_id / _ns.FILE_NAME,
                                     use_quantiles=cfg.pi05)
        tok_path = d / "assets" / TOKENIZER_FILE
        tokenizer = PromptTokenizer(tok_path, cfg.max_token_len) if tok_path.is_file() else None
        model = build_model(cfg, _ckpt.restore_params(d / "params"), source=d / "params")
        return cls(model, norm_stats=stats, tokenizer=tokenizer, meta=meta, num_steps=num_steps)

    @property
    def state(self) -> nnx.State:
        """The weights (and frozen VQ-VAE tables) the policy samples with."""
        return jax.tree.unflatten(self._treedef, self._leaves)

    @property
    def num_compiles(self) -> int:
        """Programs `infer` has compiled so far (one per input shape)."""
        return self._sample._cache_size()

    def infer(self, obs: Observation, seed: int) -> PolicyResult:
        """One noise seed for the batch (the live node: batch 1). inference_ms: the whole
        call, numpy in to numpy out (upload, sampling, download of the results)."""
        t0 = time.perf_counter()
        # numpy leaves go straight to the jitted call: it uploads them in one C++ pass.
        out = self._sample(self._leaves, obs, _seed_array(seed))
        return self._result(out, t0)

    def infer_batch(self, obs: Observation, seeds) -> PolicyResult:
        """B observations (batch axis first) with one noise seed each, in one call: the
        chunks of B `infer(obs_i, seeds[i])` calls, up to float reassociation (~1e-6).
        A live robot infers one tick at a time; this is for offline use. inference_ms is
        the whole batch's."""
        seeds = _seed_array(seeds)
        if seeds.shape != (obs.batch_size,):
            raise ValueError(f"need one seed per observation: {seeds.shape} for batch "
                             f"{obs.batch_size}")
        t0 = time.perf_counter()
        return self._result(self._sample_seeded(self._leaves, obs, seeds), t0)

    @staticmethod
    def _result(out, t0: float) -> PolicyResult:
        actions, diag = jax.device_get(out)  # one transfer for every output
        return PolicyResult(np.asarray(actions), TactileDiagnostics(*map(np.asarray, diag)),
                            (time.perf_counter() - t0) * 1e3)

    def warmup(self, obs: Observation) -> float:
        """Compiles `infer` for this observation's shapes; returns the seconds it took."""
        t0 = time.perf_counter()
        self.infer(obs, 0)
        return time.perf_counter() - t0
