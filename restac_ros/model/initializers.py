"""Parameter initialisers that draw from numpy when called eagerly.

Eager `jax.random` init compiles a PRNG kernel per parameter shape and jit-ing
the whole init compiles one huge program (each ~1 min on a small CPU). numpy,
seeded from the jax key, is instant. Under tracing (`nnx.eval_shape`, jit) the
key is abstract and plain `jax.random` is used.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def normal(key, shape, std: float, dtype=jnp.float32):
    if isinstance(key, jax.core.Tracer):
        return jax.random.normal(key, shape, jnp.float32).astype(dtype) * std
    seed = np.asarray(jax.random.key_data(key)).ravel().astype(np.uint64)
    gen = np.random.default_rng(seed)
    return jnp.asarray((gen.standard_normal(shape, dtype=np.float32) * std).astype(dtype))


def lecun_normal(fan_in_axes: int | None = None):
    """Initializer(key, shape, dtype): std = 1/sqrt(prod(shape[:fan_in_axes])) (default: all
    but the last axis, as for Linear [in, out] and Conv [kh, kw, in, out])."""

    def init(key, shape, dtype=jnp.float32):
        axes = len(shape) - 1 if fan_in_axes is None else fan_in_axes
        return normal(key, shape, 1.0 / math.sqrt(max(1, math.prod(shape[:axes]))), dtype)

    return init
