"""Shared helpers for the model tests: tiny configs, random observations, jit by split."""

from __future__ import annotations

import dataclasses
import os

# Tiny models: LLVM -O0 compiles 3-4x faster and these programs are compile-bound.
# Only takes effect if no test initialised the JAX backend before this conftest.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_backend_optimization_level=0").strip()

import flax.nnx as nnx
import jax
import numpy as np
import pytest

from restac_ros.model.config import Pi0ResTacConfig
from restac_ros.model.observation import IMAGE_KEYS, Observation

ACTION_DIM, HORIZON, TOKENS = 8, 10, 16


def tiny_config(**kw) -> Pi0ResTacConfig:
    base = dict(paligemma_variant="dummy", action_expert_variant="dummy", vision_variant="tiny",
                action_dim=ACTION_DIM, action_horizon=HORIZON, max_token_len=TOKENS,
                vocab_size=128, fusion_dim=32, num_fusion_heads=4)
    base.update(kw)
    return Pi0ResTacConfig(**base)


def make_obs(cfg: Pi0ResTacConfig, batch: int = 2, seed: int = 0, *, tactile=True) -> Observation:
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.uniform(-1, 1, s).astype(np.float32)
    n_tok = cfg.max_token_len
    mask = np.zeros((batch, n_tok), bool)
    mask[:, : n_tok // 2] = True
    return Observation(
        images={k: f(batch, 224, 224, 3) for k in IMAGE_KEYS},
        image_masks={k: np.ones(batch, bool) for k in IMAGE_KEYS},
        state=f(batch, cfg.action_dim),
        tokenized_prompt=rng.integers(1, cfg.vocab_size, (batch, n_tok)).astype(np.int32),
        tokenized_prompt_mask=mask,
        tactile_image=f(batch, 128, 160, 3),
        tactile_mask=np.broadcast_to(np.asarray(tactile, bool), (batch,)).copy(),
        action_prev=f(batch, cfg.action_dim) * 0.1,
    )


def with_tactile_mask(obs: Observation, mask) -> Observation:
    return dataclasses.replace(obs, tactile_mask=np.asarray(mask, bool))


def method(model, name: str, **static):
    """Pure function (state, *args) -> model.name(*args, **static), for jit/eval_shape/grad."""
    graphdef, _ = nnx.split(model)

    def fn(state, *args):
        return getattr(nnx.merge(graphdef, state), name)(*args, **static)

    return fn


def jit_method(model, name: str, **static):
    fn = jax.jit(method(model, name, **static))
    state = nnx.state(model)
    return lambda *args: fn(state, *args)


@pytest.fixture(scope="session")
def pi0_model():
    return tiny_config().create(jax.random.key(0))
