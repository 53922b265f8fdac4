"""Shapes and dtypes of every public method (traced with eval_shape: no compile)."""

from __future__ import annotations

import itertools

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test.model.conftest import ACTION_DIM, HORIZON, jit_method, make_obs, tiny_config

B = 2
COMBOS = list(itertools.product(["pi0", "pi05"], ["two_stage", "prefix_self_attn"],
                                ["factorized", "necessity", "learnable"]))


def _shapes(tree):
    return jax.tree.map(lambda x: (tuple(x.shape), jnp.dtype(x.dtype)), tree)


@pytest.mark.parametrize(("backbone", "fusion", "gate"), COMBOS)
def test_public_method_shapes(backbone, fusion, gate):
    cfg = tiny_config(backbone=backbone, fusion=fusion, gate=gate)
    model = nnx.eval_shape(lambda: cfg.create(jax.random.key(0)))
    obs = make_obs(cfg, B)
    graphdef, state = nnx.split(model)
    call = lambda name, *a, **kw: jax.eval_shape(
        lambda s, *a: getattr(nnx.merge(graphdef, s), name)(*a, **kw), state, *a)
    f32 = jnp.dtype(jnp.float32)
    e = cfg.tactile_encoder_dim

    loss = call("compute_loss", jax.random.key(0), obs, np.zeros((B, HORIZON, ACTION_DIM)))
    assert _shapes(loss) == ((B, HORIZON), f32)

    actions, diag = call("sample_actions", jax.random.key(0), obs)
    assert _shapes(actions) == ((B, HORIZON, ACTION_DIM), f32)
    assert _shapes(diag.codes) == ((B, 1), jnp.dtype(jnp.int32))
    assert _shapes(diag.q_event) == ((B, e), f32)
    assert _shapes(diag.logvar) == ((B, 1), f32)
    assert _shapes(diag.gate) == ((B, 1), f32)

    visual = np.zeros((B, 3, 224, 224, 3), np.float32)
    feats, g, logvar = call("encode_tactile", obs.tactile_image, visual, obs.action_prev)
    assert _shapes((feats, g, logvar)) == (((B, e), f32), ((B, 1), f32), ((B, 1), f32))

    prefix, pmask, par = call("embed_prefix", obs)
    n_prefix = 3 * (224 // 16) ** 2 + cfg.max_token_len
    assert _shapes(prefix) == ((B, n_prefix, 64), f32)
    bool_ = jnp.dtype(bool)
    assert _shapes((pmask, par)) == (((B, n_prefix), bool_), ((n_prefix,), bool_))

    out = call("embed_suffix", obs, np.zeros((B, HORIZON, ACTION_DIM), np.float32), np.ones(B))
    assert len(out) == 7
    tokens, smask, sar, cond, feats, g, logvar = out
    n_suffix = HORIZON + (backbone == "pi0")
    assert _shapes(tokens) == ((B, n_suffix, 64), f32)
    assert _shapes((smask, sar)) == (((B, n_suffix), bool_), ((n_suffix,), bool_))
    if backbone == "pi0":
        assert cond is None
    else:
        assert _shapes(cond) == ((B, 64), f32)
    assert _shapes((feats, g, logvar)) == (((B, e), f32), ((B, 1), f32), ((B, 1), f32))


@pytest.mark.parametrize("gate", ["factorized", "necessity", "learnable"])
def test_missing_tactile_gives_zero_features_gate_logvar(gate):
    cfg = tiny_config(gate=gate)
    model = cfg.create(jax.random.key(1))
    obs = make_obs(cfg, 3, tactile=[True, False, True])
    out = jit_method(model, "embed_suffix")(
        obs, np.zeros((3, HORIZON, ACTION_DIM), np.float32), np.full(3, 0.5, np.float32))
    feats, g, logvar = (np.asarray(x) for x in out[4:])
    for x in (feats, g, logvar):
        assert np.all(x[1] == 0.0)
    assert np.any(feats[0] != 0) and np.any(logvar[0] != 0) and np.all(g[[0, 2]] > 0)
    assert np.all((g >= 0) & (g <= 1))
    _, diag = jit_method(model, "sample_actions", num_steps=2)(jax.random.key(0), obs)
    assert np.all(np.asarray(diag.codes) == -1)  # placeholder mode: no codes
    assert np.all(np.asarray(diag.q_event)[1] == 0) and np.asarray(diag.gate)[1, 0] == 0


def test_gate_formulas():
    cfg = tiny_config(gate="necessity")
    model = cfg.create(jax.random.key(2))
    logvar = jnp.linspace(-12, 2, 7)[:, None]
    feats = jnp.zeros((7, cfg.tactile_encoder_dim))
    sp = lambda x: np.log1p(np.exp(x))
    sig = lambda x: 1 / (1 + np.exp(-x))
    lv = np.asarray(logvar)
    want = np.clip(sp(0.01) * sig((lv + 9.5) * (sp(5.0) + 0.1)), 0, 1)
    np.testing.assert_allclose(model.gate(feats, logvar), want, rtol=1e-5, atol=1e-7)

    learn = tiny_config(gate="learnable").create(jax.random.key(3)).gate
    w, b = float(learn.linear.kernel[0, 0]), float(learn.linear.bias[0])
    np.testing.assert_allclose(learn(feats, logvar), sig(lv * w + b), rtol=1e-5)

    fact = tiny_config(gate="factorized").create(jax.random.key(4)).gate
    f = np.random.default_rng(0).normal(size=(7, cfg.tactile_encoder_dim)).astype(np.float32)
    content = sig(f @ np.asarray(fact.content_proj.kernel) + np.asarray(fact.content_proj.bias))
    np.testing.assert_allclose(fact(jnp.asarray(f), logvar), np.clip(want * content, 0, 1),
                               rtol=1e-5, atol=1e-7)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="gate"):
        tiny_config(gate="nope")
    with pytest.raises(ValueError, match="fusion"):
        tiny_config(fusion="nope")
    with pytest.raises(ValueError, match="gemma variant"):
        tiny_config(paligemma_variant="gemma_7b")
    assert tiny_config(backbone="pi05", max_token_len=None).max_token_len == 200


@pytest.mark.parametrize("fusion", ["two_stage", "prefix_self_attn"])
def test_bf16_compute_traces_for_pi05(fusion):
    cfg = tiny_config(backbone="pi05", fusion=fusion, dtype="bfloat16")
    model = nnx.eval_shape(lambda: cfg.create(jax.random.key(0)))
    graphdef, state = nnx.split(model)
    state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.bfloat16)
                         if x.dtype == jnp.float32 else x, state)  # bf16 weights everywhere
    obs = make_obs(cfg, B)
    actions, diag = jax.eval_shape(
        lambda s: nnx.merge(graphdef, s).sample_actions(jax.random.key(0), obs), state)
    assert actions.dtype == jnp.float32 and diag.gate.dtype == jnp.float32
    loss = jax.eval_shape(lambda s: nnx.merge(graphdef, s).compute_loss(
        jax.random.key(0), obs, np.zeros((B, HORIZON, ACTION_DIM), np.float32)), state)
    assert loss.shape == (B, HORIZON)
