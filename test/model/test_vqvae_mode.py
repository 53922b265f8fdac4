"""Frozen Residual VQ-VAE mode: outputs come from restac_ros.tactile.jax_port, get no
gradients, and only project_vq (q_event -> features) is trained."""

from __future__ import annotations

import flax.nnx as nnx
import flax.traverse_util as tu
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from restac_ros.model.observation import IMAGE_KEYS
from restac_ros.model.tactile import FrozenVQVAE
from test.model.conftest import ACTION_DIM, HORIZON, make_obs, tiny_config

torch = pytest.importorskip("torch", reason="building a test VQ-VAE checkpoint needs torch")
jax_port = pytest.importorskip("restac_ros.tactile.jax_port")


@pytest.fixture(scope="module")
def vq_ckpt(tmp_path_factory):
    from restac_ros.tactile.checkpoint import save_checkpoint
    from restac_ros.tactile.config import default_hparams
    from restac_ros.tactile.model import ResidualVQVAE

    torch.manual_seed(0)
    # Small trunk input and channels: a CPU-cheap checkpoint in the published layout.
    hp = default_hparams(ch=32, n_e=16, num_res_blocks=1, prophet_input_size=32)
    path = tmp_path_factory.mktemp("vq") / "vqvae.ckpt"
    save_checkpoint(path, ResidualVQVAE(hp), hp)
    return path


@pytest.fixture(scope="module")
def vq_model(vq_ckpt):
    cfg = tiny_config(residual_vqvae_checkpoint=str(vq_ckpt), fusion="two_stage")
    return cfg.create(jax.random.key(0))


def test_outputs_come_from_the_jax_port_and_get_no_gradients(vq_model, vq_ckpt):
    model = vq_model
    assert model.tactile_encoder.mode == "vqvae"
    params_tree = tu.flatten_dict(nnx.to_pure_dict(nnx.state(model, nnx.Param)), sep="/")
    assert "tactile_encoder/project_vq/kernel" in params_tree
    assert not [k for k in params_tree if "vqvae" in k]  # frozen weights are not Params
    obs = make_obs(model.config, 2, seed=1, tactile=[True, False])
    actions = np.zeros((2, HORIZON, ACTION_DIM), np.float32)
    graphdef, params, frozen, rest = nnx.split(model, nnx.Param, FrozenVQVAE, ...)

    def run(p, f):
        m = nnx.merge(graphdef, p, f, rest)
        (feats, gate, logvar), diag = m._tactile(obs)
        return jnp.mean(m.compute_loss(jax.random.key(0), obs, actions)), (feats, diag)

    (_, (feats, diag)), (g_params, g_frozen) = jax.jit(
        jax.value_and_grad(run, argnums=(0, 1), has_aux=True))(params, frozen)

    vq_params, hp = jax_port.load_jax_vqvae(vq_ckpt)
    visual = np.stack([obs.images[k] for k in IMAGE_KEYS], axis=1)
    ref = jax.jit(jax_port.vqvae_forward, static_argnums=1)(
        vq_params, hp, obs.tactile_image, visual, obs.action_prev[:, :7])
    np.testing.assert_array_equal(np.asarray(diag.codes)[0], np.asarray(ref.codes)[0])
    assert np.all(np.asarray(diag.codes)[1] == -1)  # no tactile input -> no codes
    np.testing.assert_allclose(np.asarray(diag.q_event)[0], np.asarray(ref.q_event)[0],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(diag.logvar)[0], np.asarray(ref.logvar)[0],
                               rtol=1e-5, atol=1e-6)
    proj = model.tactile_encoder.project_vq
    want = np.asarray(ref.q_event)[0] @ np.asarray(proj.kernel) + np.asarray(proj.bias)
    np.testing.assert_allclose(np.asarray(feats)[0], want, rtol=1e-4, atol=1e-5)

    g_proj = np.asarray(g_params["tactile_encoder"]["project_vq"]["kernel"][...])
    assert np.abs(g_proj).max() > 0
    frozen_leaves = jax.tree.leaves(g_frozen)
    assert frozen_leaves and all(np.all(np.asarray(x) == 0) for x in frozen_leaves)


def test_sample_actions_reports_codes(vq_model):
    obs = make_obs(vq_model.config, 1, seed=2)
    graphdef, state = nnx.split(vq_model)
    actions, diag = jax.jit(lambda s: nnx.merge(graphdef, s).sample_actions(
        jax.random.key(0), obs, num_steps=2))(state)
    assert actions.shape == (1, HORIZON, ACTION_DIM)
    codes = np.asarray(diag.codes)
    assert codes.dtype == np.int32 and codes.shape == (1, 1) and 0 <= codes[0, 0] < 16
    assert diag.q_event.shape == (1, 64) and diag.logvar.shape == (1, 1)


def test_policy_checkpoint_carries_the_vqvae(vq_model, vq_ckpt, tmp_path):
    import sentencepiece as spm

    from restac_ros.model import norm_stats as ns
    from restac_ros.model.policy import RestacPolicy, load_policy_config, save_policy_checkpoint
    from test.model.test_tokenizer import CORPUS

    (tmp_path / "c.txt").write_text("\n".join(CORPUS * 20))
    spm.SentencePieceTrainer.train(input=str(tmp_path / "c.txt"), model_prefix=str(tmp_path / "t"),
                                   vocab_size=40, minloglevel=2)
    stats = {k: ns.NormStats(np.zeros(8, np.float32), np.ones(8, np.float32))
             for k in ("state", "actions")}
    d = save_policy_checkpoint(tmp_path / "ckpt", vq_model, vq_model.config, stats,
                               tmp_path / "t.model", {"asset_id": "a"})
    raw = (d / "restac_config.json").read_text()
    assert '"residual_vqvae_checkpoint": "vqvae/vqvae.ckpt"' in raw
    assert (d / "vqvae" / "vqvae.ckpt").stat().st_size == vq_ckpt.stat().st_size
    cfg = load_policy_config(d)
    assert cfg.residual_vqvae_checkpoint == str(d / "vqvae" / "vqvae.ckpt")
    policy = RestacPolicy.from_checkpoint(d, num_steps=2)
    assert policy.config.residual_vqvae_checkpoint == cfg.residual_vqvae_checkpoint
    leaves = jax.tree.leaves(policy.state)  # every weight concrete, the VQ-VAE's included
    assert leaves and all(isinstance(x, jax.Array) for x in leaves)
    got = policy.state["tactile_encoder"]["vqvae"].get_value()
    want = jax.tree.leaves(vq_model.tactile_encoder.vqvae.get_value())
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(got), want, strict=True))


@pytest.mark.parametrize("preset", ["fork_restac", "fork_token_in_ae"])
def test_fork_presets_run_on_the_jax_vqvae(vq_ckpt, preset):
    """The fork's models on a VQ-VAE checkpoint: the obs path (JAX port inside the jitted
    sample) gives the actions of the same model fed the port's q_event/logvar."""
    from restac_ros.model import presets

    small = dict(paligemma_variant="dummy", action_expert_variant="dummy",
                 vision_variant="tiny", action_dim=ACTION_DIM, action_horizon=HORIZON,
                 max_token_len=16, vocab_size=128, residual_vqvae_checkpoint=str(vq_ckpt))
    if preset == "fork_restac":
        small |= dict(tactile_encoder_dim=32, num_fusion_heads=4)
    model = presets.preset(preset, **small).create(jax.random.key(5))
    obs = make_obs(model.config, 2, seed=3)
    noise = np.random.default_rng(0).normal(size=(2, HORIZON, ACTION_DIM)).astype(np.float32)
    graphdef, state = nnx.split(model)
    run = jax.jit(lambda s, ev: nnx.merge(graphdef, s).sample_actions(
        None, obs, num_steps=2, noise=noise, tactile_event=ev))
    actions, diag = run(state, None)
    again, _ = run(state, (diag.q_event, diag.logvar))
    np.testing.assert_allclose(np.asarray(again), np.asarray(actions), atol=1e-6)
    assert np.all(np.asarray(diag.codes) >= 0) and np.all(np.asarray(diag.gate) > 0)
