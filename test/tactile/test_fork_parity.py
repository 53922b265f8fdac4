"""Parity with the published fork's own classes, on a checkpoint the fork's classes wrote.

Reference numbers: Awilekong/openpi b181a9b61c608a81d5395f6dfbae05de938afcce
(src/openpi/models/pi0_restac.py: ResidualVQVAEWrapper and the modules under it) with
ZhengtongXu/UniT 52a286520b09708934b25c77aa826360d72c79db (taming Encoder), run unchanged
by scripts/make_vqvae_fork_fixture.py in a scratch environment outside the project
(torch 2.14.1, CPU) on seeded random weights of a reduced-width config: ch 32, one res
block, mid 128, hidden 64, bottleneck 8x10 (upsampled to 16x20), n_e 64, e_dim 64,
ResNet18, B = 4.  test/tactile/fixtures/vqvae_fork_small holds that checkpoint
(xz-compressed, exactly as the fork's classes named and shaped it), the inputs and the
fork's outputs.  The published-size comparison is bench/vqvae_parity.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from restac_ros.tactile.checkpoint import read_checkpoint
from restac_ros.tactile.jax_port import load_jax_vqvae, vqvae_forward
from restac_ros.tactile.model import expected_shapes
from restac_ros.tactile.wrapper import ResidualVQVAEWrapper

from .conftest import fork_inputs

FORK_COMMIT = "b181a9b61c608a81d5395f6dfbae05de938afcce"
TOL = 1e-4  # relative L2


def rel_l2(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def test_fixture_comes_from_the_named_fork_commit(fork_meta, fork_io):
    assert fork_meta["fork"]["commit"] == FORK_COMMIT
    assert fork_meta["fork"]["file"] == "src/openpi/models/pi0_restac.py"
    assert fork_meta["batch"] >= 4 and fork_io["ref_q_event"].shape == (4, 64)
    assert len(set(fork_meta["codes"])) > 1  # codes really depend on the input
    assert min(fork_meta["code_margins"]) > 1e-2  # no near-tie that rounding could flip


def test_fork_checkpoint_loads_strictly(fork_ckpt, fork_meta):
    state, hp, raw = read_checkpoint(fork_ckpt)
    assert hp.ext.is_published()
    assert set(state) == set(expected_shapes(hp))
    assert raw["hyper_parameters"] == fork_meta["hyper_parameters"]
    assert hp.prophet.num_fusion_blocks == 2 and hp.prophet.bottleneck_resolution == (8, 10)
    assert state["prophet_encoder.fusion_body.4.weight"].shape == (128, 128)
    assert state["residual_vq.embed"].shape == (64, 64)


def _check(out: dict[str, np.ndarray], io: dict[str, np.ndarray]) -> dict[str, float]:
    errs = {k: rel_l2(out[k], io[f"ref_{k}"]) for k in ("q_event", "mu", "logvar", "z_real",
                                                         "h_event")}
    print("rel-L2 vs fork:", errs)
    assert all(e <= TOL for e in errs.values()), errs
    np.testing.assert_array_equal(out["codes"], io["ref_codes"])
    return errs


def test_torch_reference_matches_the_fork(fork_ckpt, fork_io):
    tactile, views, action = fork_inputs(fork_io)
    w = ResidualVQVAEWrapper(fork_ckpt, tactile_layout="HWC", tactile_range="[0,1]",
                             visual_layout="CHW", visual_range="[-1,1]", device="cpu")
    o = w(tactile, views, action)
    assert o.codes.shape == (4, 1)
    _check({"q_event": o.q_event.numpy(), "mu": o.mu.numpy(), "logvar": o.logvar.numpy(),
            "z_real": o.z_real.numpy(), "h_event": o.h_event.numpy(),
            "codes": o.codes[:, 0].numpy()}, fork_io)


def test_jax_port_matches_the_fork(fork_ckpt, fork_io):
    tactile, views, action = fork_inputs(fork_io)
    params, hp = load_jax_vqvae(fork_ckpt)
    o = jax.jit(vqvae_forward, static_argnums=1)(
        params, hp, jnp.asarray(tactile * np.float32(2.0) - np.float32(1.0)),
        jnp.asarray(views.transpose(0, 1, 3, 4, 2)), jnp.asarray(action))
    _check({"q_event": o.q_event, "mu": np.asarray(o.mu).transpose(0, 3, 1, 2),
            "logvar": o.logvar, "z_real": np.asarray(o.z_real).transpose(0, 3, 1, 2),
            "h_event": o.h_event, "codes": np.asarray(o.codes)[:, 0]}, fork_io)


@pytest.mark.parametrize("key", ["prophet_encoder.visual_backbone.4.0.conv1.weight",
                                 "event_encoder.pre_pool.bias", "residual_vq.embed_avg"])
def test_fork_checkpoint_missing_one_key_is_refused(fork_ckpt, tmp_path, key):
    import torch

    from restac_ros.tactile.checkpoint import CheckpointError

    raw = torch.load(fork_ckpt, weights_only=True)
    del raw["state_dict"][key]
    path = tmp_path / "cut.ckpt"
    torch.save(raw, path)
    for load in (read_checkpoint, load_jax_vqvae):
        with pytest.raises(CheckpointError) as err:
            load(path)
        assert str(path) in str(err.value) and key in str(err.value)
