"""End-to-end: the tactile branch learns a contact-dependent action (design note's e2e test).

Vision, prompt and state are identical for every sample; only the tactile image
says contact / no contact, and the target action chunk is +pattern / -pattern.
"""

from __future__ import annotations

import dataclasses

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from test.model.conftest import ACTION_DIM, HORIZON, make_obs, tiny_config

STEPS, BATCH = 200, 8


def _tactile(rng, contact: np.ndarray) -> np.ndarray:
    img = rng.normal(-0.5, 0.1, (len(contact), 128, 160, 3)).astype(np.float32)
    yy, xx = np.mgrid[:128, :160]
    blob = ((yy - 64) ** 2 + (xx - 80) ** 2 < 50**2)[None, :, :, None]  # a pressed gel pad
    return np.where(contact[:, None, None, None] & blob, 0.8, img).astype(np.float32)


def _batch(rng, cfg, contact):
    obs = make_obs(cfg, len(contact), seed=0)  # same images/prompt/state for everyone
    obs = dataclasses.replace(
        obs, images={k: np.repeat(v[:1], len(contact), 0) for k, v in obs.images.items()},
        state=np.zeros_like(obs.state), action_prev=np.zeros_like(obs.action_prev),
        tokenized_prompt=np.repeat(obs.tokenized_prompt[:1], len(contact), 0),
        tactile_image=_tactile(rng, contact))
    pattern = np.linspace(0.4, 0.9, HORIZON * ACTION_DIM, dtype=np.float32)
    sign = np.where(contact, 1.0, -1.0).astype(np.float32)[:, None, None]
    return obs, sign * pattern.reshape(HORIZON, ACTION_DIM)


@pytest.mark.slow
def test_tactile_branch_learns_contact_dependent_actions():
    cfg = tiny_config(vision_variant="micro", fusion="two_stage", gate="factorized")
    model = cfg.create(jax.random.key(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    opt = optax.adam(3e-3)
    opt_state = opt.init(params)

    @jax.jit
    def train_step(p, opt_state, rng, obs, actions):
        def loss_fn(p):
            # loss_terms is compute_loss split into its two terms (one forward pass).
            terms = nnx.merge(graphdef, p, rest).loss_terms(rng, obs, actions)
            return jnp.mean(terms["flow"] + terms["sparse"]), jnp.mean(terms["flow"])

        (_, flow), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
        updates, opt_state = opt.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, flow

    np_rng = np.random.default_rng(1)
    rng = jax.random.key(1)
    losses = []
    for _ in range(STEPS):
        contact = np_rng.random(BATCH) < 0.5
        obs, actions = _batch(np_rng, cfg, contact)
        rng, step_rng = jax.random.split(rng)
        params, opt_state, loss = train_step(params, opt_state, step_rng, obs, actions)
        losses.append(float(loss))
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    print(f"flow loss {first:.3f} -> {last:.3f} over {STEPS} steps; curve:", np.round(
        [np.mean(losses[i:i + 20]) for i in range(0, STEPS, 20)], 3))
    assert last * 5 <= first, f"flow loss only went {first:.3f} -> {last:.3f}"

    model = nnx.merge(graphdef, params, rest)
    sample = jax.jit(lambda o, n: model.sample_actions(jax.random.key(0), o, noise=n)[0])
    contact = np.array([True] * 4 + [False] * 4)
    obs, targets = _batch(np.random.default_rng(2), cfg, contact)
    noise = jnp.tile(jax.random.normal(jax.random.key(3), (1, HORIZON, ACTION_DIM)), (8, 1, 1))
    acts = np.asarray(sample(obs, noise))
    gap = np.mean(acts[:4], 0) - np.mean(acts[4:], 0)
    target_gap = targets[0] - targets[-1]
    err = np.mean(np.abs(gap - target_gap)) / np.mean(np.abs(target_gap))
    print(f"contact/no-contact gap error: {err:.3f} of the target gap")
    assert err < 0.25, gap
    # Zeroed tactile input (or none at all): nothing left to tell the groups apart.
    for zeroed in (dataclasses.replace(obs, tactile_image=np.zeros_like(obs.tactile_image)),
                   dataclasses.replace(obs, tactile_mask=np.zeros(8, bool))):
        acts = np.asarray(sample(zeroed, noise))
        gap = np.mean(acts[:4], 0) - np.mean(acts[4:], 0)
        assert np.mean(np.abs(gap)) < 0.1 * np.mean(np.abs(target_gap))
