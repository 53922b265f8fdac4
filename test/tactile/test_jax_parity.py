"""The JAX port reproduces the PyTorch reference (CPU, full fp32)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from restac_ros.tactile.checkpoint import save_checkpoint
from restac_ros.tactile.config import default_hparams
from restac_ros.tactile.jax_layers import bilinear_matrix
from restac_ros.tactile.jax_port import load_jax_vqvae, load_jax_vqvae_from_state, vqvae_forward
from restac_ros.tactile.model import ResidualVQVAE

from .conftest import random_inputs, randomise

TOL = 1e-4


def rel_err(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def _compare(model: ResidualVQVAE, params, hp, batch: int, seed: int):
    t, v, a = random_inputs(batch, seed)
    with torch.no_grad():
        ref = model(t, v, a)
    fwd = jax.jit(vqvae_forward, static_argnums=1)
    out = fwd(params, hp, jnp.asarray(t.permute(0, 2, 3, 1).numpy()),
              jnp.asarray(v.permute(0, 1, 3, 4, 2).numpy()), jnp.asarray(a.numpy()))
    assert out.codes.dtype == jnp.int32 and out.codes.shape == (batch, hp.num_quantizers)
    assert out.q_event.shape == (batch, 64) and out.logvar.shape == (batch, 1)
    errs = {
        "q_event": rel_err(out.q_event, ref.q_event),
        "mu": rel_err(out.mu, ref.mu.permute(0, 2, 3, 1)),
        "logvar": rel_err(out.logvar, ref.logvar),
        "z_real": rel_err(out.z_real, ref.z_real.permute(0, 2, 3, 1)),
        "h_event": rel_err(out.h_event, ref.h_event),
    }
    assert all(e <= TOL for e in errs.values()), errs
    np.testing.assert_array_equal(np.asarray(out.codes), ref.codes.numpy())
    return ref


def test_parity_published_shapes_from_ckpt(small_model, small_ckpt):
    params, hp = load_jax_vqvae(small_ckpt)
    assert hp == small_model.hp
    hash(hp)  # static jit argument
    ref = _compare(small_model, params, hp, batch=3, seed=7)
    assert len(set(ref.codes[:, 0].tolist())) > 1  # codes really depend on the input


def test_parity_extensions_multistage_per_view_trunks_small_prophet_input():
    hp = default_hparams(ch=32, n_e=8, num_quantizers=3, num_res_blocks=1,
                         prophet_input_size=64, bottleneck_resolution=(8, 10),
                         shared_visual_backbone=False)
    torch.manual_seed(1)
    model = randomise(ResidualVQVAE(hp), seed=1)
    params, hp2 = load_jax_vqvae_from_state(model.state_dict(), hp.to_dict())
    assert hp2 == hp
    _compare(model, params, hp2, batch=2, seed=11)


def test_parity_published_variants_mean_fusion_avgpool_depth4_no_ema():
    """Published options the fork's classes take: view_fusion 'mean', resamp_with_conv
    False (average-pool downsampling), fusion_depth 4 (three blocks), use_ema False."""
    base = default_hparams(ch=32, n_e=8, num_res_blocks=1, prophet_input_size=64)
    hp = dataclasses.replace(
        base, dd=dataclasses.replace(base.dd, resamp_with_conv=False),
        prophet=dataclasses.replace(base.prophet, view_fusion="mean", fusion_depth=4),
        rvq=dataclasses.replace(base.rvq, use_ema=False))
    torch.manual_seed(2)
    model = randomise(ResidualVQVAE(hp), seed=2)
    keys = model.state_dict()
    assert "prophet_encoder.fusion_body.8.weight" in keys
    assert keys["prophet_encoder.fusion_body.0.weight"].shape == (256, 512 + 128)
    assert "residual_vq.cluster_size" not in keys and "obs_encoder.down.0.downsample.conv.weight" \
        not in keys
    params, hp2 = load_jax_vqvae_from_state(keys, hp.to_dict())
    assert hp2 == hp
    _compare(model, params, hp2, batch=2, seed=12)


def test_parity_loader_rejects_bad_state(small_model, tmp_path):
    state = dict(small_model.state_dict())
    state.pop("quant_conv.bias")
    from restac_ros.tactile.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="quant_conv.bias"):
        load_jax_vqvae_from_state(state, small_model.hp.to_dict())


@pytest.mark.parametrize("n_in,n_out", [(8, 16), (5, 20), (224, 64), (3, 3)])
def test_bilinear_matrix_matches_torch(n_in, n_out):
    x = torch.randn(1, 1, n_in, 1, dtype=torch.float64)
    want = torch.nn.functional.interpolate(x, size=(n_out, 1), mode="bilinear",
                                           align_corners=False)[0, 0, :, 0].numpy()
    got = bilinear_matrix(n_in, n_out).astype(np.float64) @ x[0, 0, :, 0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_saved_then_loaded_jax_matches(tmp_path):
    hp = default_hparams(ch=32, n_e=4, num_res_blocks=1, prophet_input_size=32)
    model = randomise(ResidualVQVAE(hp), seed=3)
    path = tmp_path / "p.ckpt"
    save_checkpoint(path, model, hp)
    params, hp2 = load_jax_vqvae(path)
    assert "prophet_encoder.visual_backbone.1.running_mean" in params
    assert not any(k.endswith("num_batches_tracked") for k in params)
    _compare(model, params, hp2, batch=1, seed=5)


def test_stack_views_order():
    from restac_ros.tactile.jax_port import VIEW_ORDER, stack_views

    imgs = {k: jnp.full((2, 224, 224, 3), float(i)) for i, k in enumerate(reversed(VIEW_ORDER))}
    v = stack_views(imgs)
    assert v.shape == (2, 3, 224, 224, 3)
    assert [float(v[0, i, 0, 0, 0]) for i in range(3)] == [2.0, 1.0, 0.0]
    with pytest.raises(KeyError, match="left_wrist_0_rgb"):
        stack_views({"base_0_rgb": imgs["base_0_rgb"]})
