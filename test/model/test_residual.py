"""Residual property: gate 0 or no tactile input reproduces the backbone exactly."""

from __future__ import annotations

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from restac_ros.model import checkpoint as ckpt
from test.model.conftest import ACTION_DIM, HORIZON, make_obs, tiny_config


def _backbone_twin(model, cfg):
    """A use_tactile=False model holding `model`'s backbone params."""
    import dataclasses

    import flax.traverse_util as tu

    backbone = dataclasses.replace(cfg, use_tactile=False).create(jax.random.key(9))
    want = tu.flatten_dict(ckpt.model_params(backbone), sep="/")
    have = tu.flatten_dict(ckpt.model_params(model), sep="/")
    ckpt.merge_params(backbone, tu.unflatten_dict({k: have[k] for k in want}, sep="/"))
    return backbone


@pytest.mark.parametrize("backbone", ["pi0", "pi05"])
def test_no_tactile_or_closed_gate_gives_backbone_actions(backbone):
    cfg = tiny_config(backbone=backbone, gate="necessity")
    model = cfg.create(jax.random.key(0))
    twin = _backbone_twin(model, cfg)
    obs = make_obs(cfg, 2, seed=1)
    noise = jax.random.normal(jax.random.key(5), (2, HORIZON, ACTION_DIM))
    ref = np.asarray(jax.jit(lambda s: nnx.merge(nnx.graphdef(twin), s).sample_actions(
        jax.random.key(0), obs, num_steps=3, noise=noise)[0])(nnx.state(twin)))
    sample = jax.jit(lambda state, o: nnx.merge(nnx.graphdef(model), state).sample_actions(
        jax.random.key(0), o, num_steps=3, noise=noise))

    open_gate = np.asarray(sample(nnx.state(model), obs)[0])
    assert np.max(np.abs(open_gate - ref)) > 1e-3  # the branch does act when open

    no_tactile = obs.__class__(**{**obs.__dict__, "tactile_mask": np.zeros(2, bool)})
    np.testing.assert_allclose(np.asarray(sample(nnx.state(model), no_tactile)[0]), ref,
                               rtol=0, atol=1e-6)

    model.gate.output_scale[...] = jnp.full((1,), -1e4)  # softplus -> exactly 0
    acts, diag = sample(nnx.state(model), obs)
    assert np.all(np.asarray(diag.gate) == 0.0)
    np.testing.assert_allclose(np.asarray(acts), ref, rtol=0, atol=1e-6)
