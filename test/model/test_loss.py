"""Loss = flow + w*mean(gate)*exp(mean(logvar)); gradients reach the tactile branch."""

from __future__ import annotations

import flax.nnx as nnx
import flax.traverse_util as tu
import jax
import jax.numpy as jnp
import numpy as np

from test.model.conftest import ACTION_DIM, HORIZON, make_obs, tiny_config


def test_sparse_term_value_and_gradients():
    cfg = tiny_config(fusion="two_stage", sparse_loss_weight=0.5)
    model = cfg.create(jax.random.key(0))
    obs = make_obs(cfg, 3, seed=2, tactile=[True, True, False])
    actions = np.random.default_rng(0).normal(size=(3, HORIZON, ACTION_DIM)).astype(np.float32)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def run(p):
        m = nnx.merge(graphdef, p, rest)
        terms = m.loss_terms(jax.random.key(1), obs, actions)
        total = m.compute_loss(jax.random.key(1), obs, actions)
        visual = jnp.stack([obs.images[k] for k in sorted(obs.images)], 1)
        enc = m.encode_tactile(obs.tactile_image, visual, obs.action_prev)
        return jnp.mean(total), (terms, total, enc)

    (_, (terms, total, enc)), grads = jax.jit(jax.value_and_grad(run, has_aux=True))(params)
    _, gate, logvar = (np.asarray(x) for x in enc)
    mask = np.array([1.0, 1.0, 0.0])[:, None]  # the third sample has no tactile input
    want = 0.5 * np.mean(gate * mask) * np.exp(np.mean(logvar * mask))
    np.testing.assert_allclose(float(terms["sparse"]), want, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(total), np.asarray(terms["flow"]) + want, rtol=1e-5)
    assert float(terms["sparse"]) > 0

    flat = tu.flatten_dict(nnx.to_pure_dict(grads), sep="/")
    for prefix in ("tactile_encoder/", "gate/", "tactile_to_vlm_proj/", "fusion_out_proj/",
                   "fusion_cross_attn_1/", "fusion_action_queries", "action_out_proj/",
                   "PaliGemma/llm/layers/"):
        norms = [float(np.abs(v).max()) for k, v in flat.items() if k.startswith(prefix)]
        assert norms and max(norms) > 0, f"no gradient reaches {prefix}"
    assert all(np.all(np.isfinite(v)) for v in flat.values())

