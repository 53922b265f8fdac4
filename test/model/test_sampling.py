"""sample_actions: deterministic, compiled once per shape, one program with the tactile
encoder and fusion outside the Euler while loop."""

from __future__ import annotations

import flax.nnx as nnx
import jax
import jax.extend
import numpy as np

from restac_ros.model.fusion import SCOPE as FUSION_SCOPE
from restac_ros.model.pi0_restac import ENCODE_SCOPE
from restac_ros.model.policy import RestacPolicy
from test.model.conftest import make_obs, method


def _eqns(jaxpr):
    """All equations of a jaxpr, recursing into sub-jaxprs (scan, pjit, custom_jvp, ...)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from _eqns(sub)


def _scoped(eqns, scope):
    return [e for e in eqns if scope in str(e.source_info.name_stack)]


def test_deterministic_and_compiled_once_per_shape(pi0_model):
    policy = RestacPolicy(pi0_model, num_steps=4)
    cfg = pi0_model.config
    obs = make_obs(cfg, 2, seed=3)
    a = policy.infer(obs, seed=7)
    b = policy.infer(make_obs(cfg, 2, seed=3), seed=7)
    c = policy.infer(obs, seed=8)
    np.testing.assert_array_equal(a.actions_norm, b.actions_norm)
    for x, y in zip(a.diagnostics, b.diagnostics, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a.actions_norm, c.actions_norm)
    assert a.actions_norm.shape == (2, cfg.action_horizon, cfg.action_dim)
    assert a.inference_ms > 0
    assert policy.num_compiles == 1
    policy.warmup(make_obs(cfg, 1))
    policy.infer(make_obs(cfg, 1, seed=4), seed=1)
    assert policy.num_compiles == 2  # a new batch size compiles once more


def test_fixed_noise_makes_rng_irrelevant(pi0_model):
    obs = make_obs(pi0_model.config, 1, seed=5)
    noise = np.random.default_rng(0).normal(size=(1, 10, 8)).astype(np.float32)
    graphdef, state = nnx.split(pi0_model)
    fn = jax.jit(lambda s, rng: nnx.merge(graphdef, s).sample_actions(rng, obs, 2, noise)[0])
    a = fn(state, jax.random.key(0))
    b = fn(state, jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_one_program_with_fusion_outside_the_while_loop(pi0_model):
    obs = make_obs(pi0_model.config, 1)
    closed = jax.make_jaxpr(method(pi0_model, "sample_actions", num_steps=10))(
        nnx.state(pi0_model), jax.random.key(0), obs)
    top = closed.jaxpr
    everything = list(_eqns(top))
    loops = [e for e in everything if e.primitive.name == "while"]
    assert len(loops) == 1, "exactly one Euler while loop"
    assert not [e for e in everything if "callback" in e.primitive.name]
    body = list(_eqns(loops[0].params["body_jaxpr"].jaxpr))
    assert [e for e in body if e.primitive.name == "dot_general"], "the expert runs in the loop"
    for scope in (FUSION_SCOPE, ENCODE_SCOPE):
        assert _scoped(everything, scope), f"{scope} is in the program"
        assert not _scoped(body, scope), f"{scope} must not run inside the Euler loop"
    # The VLM prefix runs once too: the SigLIP patch embedding is outside the loop.
    assert not [e for e in body if e.primitive.name == "conv_general_dilated"]
