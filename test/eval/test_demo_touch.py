"""The touch demo's pipeline on a tiny config: sim episode -> VQ-VAE -> policy trained with
the frozen VQ-VAE's outputs precomputed once per training frame -> checkpoint with codes.

Real parts throughout: a restac_sim recording, the published-layout VQ-VAE trainer, its
JAX port inside the model, restac-train-policy, RestacPolicy.from_checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from restac_ros.eval import demo_touch as dt

REPO = Path(__file__).resolve().parents[2]
# One 4.5 s episode: the pads meet the box at ~3.5 s, so frames of both kinds.
TINY = dt.TouchDemoConfig(
    train_seeds=(1000,), episode_seconds=4.5, successful_only=False,
    vqvae=dt.VQVAETrainSpec(steps=3, event_steps=200, rate_hz=5.0),
    policy=dataclasses.replace(dt.DEMO_TOUCH.policy, steps=3, batch_size=4))


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> dt.TouchDemo:
    from restac_ros.eval.demo_checkpoint import enable_compile_cache

    enable_compile_cache(REPO / ".cache" / "jax")
    root = tmp_path_factory.mktemp("touch_demo")
    return dt.ensure_touch_demo(root, TINY, progress=False, log=lambda *_: None)


@pytest.fixture(scope="module")
def loaded(tiny_demo):
    """The trained checkpoint (model and policy) and its training examples, read back
    through the training path with the checkpoint's own norm stats and tokenizer."""
    from restac_ros.core.observation_spec import delta_action_mask_from_meta
    from restac_ros.eval import params, train_data
    from restac_ros.model.checkpoint import restore_params
    from restac_ros.model.policy import RestacPolicy, build_model, load_policy_config

    policy = RestacPolicy.from_checkpoint(tiny_demo.policy)
    model = build_model(load_policy_config(tiny_demo.policy),
                        restore_params(tiny_demo.policy / "params"))
    p = params.load_params(None)
    mask = tuple(delta_action_mask_from_meta(policy.meta, len(p["joint_names"])))
    builder = params.builder_for(p, policy.config, policy.norm_stats, policy.tokenizer, mask)
    data = train_data.extract(tiny_demo.episodes, builder, TINY.policy.rate_hz, progress=False)
    data.tactile_events = train_data.precompute_tactile_events(
        data, model.tactile_encoder, batch_size=8, progress=False)
    return model, policy, data


def test_checkpoint_holds_its_frozen_vqvae(tiny_demo):
    cfg = json.loads((tiny_demo.policy / "restac_config.json").read_text())
    assert cfg["residual_vqvae_checkpoint"] == "vqvae/vqvae.ckpt"
    assert (tiny_demo.policy / "vqvae" / "vqvae.ckpt").read_bytes() == tiny_demo.vqvae.read_bytes()
    meta = json.loads((tiny_demo.policy / "policy_meta.json").read_text())
    assert meta["training"]["vqvae_checkpoint"] == str(tiny_demo.vqvae)


def test_precomputed_events_are_what_the_compiled_sampler_computes(loaded):
    """The policy's jitted sampler runs the VQ-VAE itself: its q_event / logvar / codes
    on the same frames equal the precomputed ones (the first 8-batch and the padded
    last one)."""
    _, policy, data = loaded
    assert data.n > 8
    for idx in (np.arange(3), np.arange(data.n - 3, data.n)):
        obs, _, (q_event, logvar, codes) = data.batch(idx)
        diag = policy.infer_batch(obs, np.arange(len(idx))).diagnostics
        np.testing.assert_allclose(np.asarray(diag.q_event), q_event, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(diag.logvar), logvar, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(diag.codes), codes)


def test_training_loss_with_precomputed_events_equals_running_the_vqvae(loaded):
    import jax

    model, _, data = loaded
    obs, actions, event = data.batch(np.array([0, data.n - 1]))
    rng = jax.random.key(3)
    inside = np.asarray(model.compute_loss(rng, obs, actions))
    given = np.asarray(model.compute_loss(rng, obs, actions, tactile_event=event))
    np.testing.assert_allclose(given, inside, rtol=1e-5, atol=1e-6)
    # the events matter: other q_event / logvar give another loss
    other = (event[0][::-1].copy(), event[1][::-1].copy() + 1.0, event[2][::-1].copy())
    assert not np.allclose(np.asarray(model.compute_loss(rng, obs, actions,
                                                         tactile_event=other)), inside)


def test_codes_are_valid_and_not_degenerate(loaded):
    model, _, data = loaded
    ev = data.tactile_events
    n_e = model.tactile_encoder.vqvae_hparams.value.rvq.n_e
    assert ev.codes.shape == (data.n, 1) and ev.q_event.shape == (data.n, 64)
    assert ev.codes.min() >= 0 and ev.codes.max() < n_e
    assert len(np.unique(ev.codes)) >= 2  # free-motion and contact frames differ
    assert np.isfinite(ev.logvar).all() and np.ptp(ev.logvar) > 0


def test_cache_is_reused_and_keys_follow_their_stage(tiny_demo, tmp_path):
    root = tiny_demo.policy.parents[1]
    stamps = {d: (root / d / dt.KEY_FILE).stat().st_mtime_ns
              for d in ("episodes", "vqvae", "policy")}
    again = dt.ensure_touch_demo(root, TINY, progress=False, log=lambda *_: None)
    assert again == tiny_demo
    assert stamps == {d: (root / d / dt.KEY_FILE).stat().st_mtime_ns for d in stamps}
    keys = dt.stage_keys(TINY)
    more_policy = dt.stage_keys(dataclasses.replace(
        TINY, policy=dataclasses.replace(TINY.policy, steps=4)))
    more_vqvae = dt.stage_keys(dataclasses.replace(
        TINY, vqvae=dataclasses.replace(TINY.vqvae, steps=4)))
    assert more_policy["episodes"] == keys["episodes"] and more_policy["vqvae"] == keys["vqvae"]
    assert more_policy["policy"] != keys["policy"]
    assert more_vqvae["episodes"] == keys["episodes"]
    assert more_vqvae["vqvae"] != keys["vqvae"] and more_vqvae["policy"] != keys["policy"]


def test_gate_is_centred_on_the_training_logvar(loaded):
    """center_gate_on_data: the necessity gate starts at the data's mean logvar (3 small
    steps move it little), so it opens with the VQ-VAE's uncertainty instead of saturating."""
    model, _, data = loaded
    assert TINY.policy.center_gate_on_data and model.config.gate == "necessity"
    centre = float(np.asarray(model.gate.logvar_center.get_value()).reshape(-1)[0])
    assert abs(centre - float(np.mean(data.tactile_events.logvar))) < 0.05
    assert centre != -9.5  # not the published init


def test_vision_baseline_is_the_same_policy_without_touch(tiny_demo):
    """--vision-baseline: the demo's training config on the same episodes, no tactile
    branch; built once (a second call reuses it), keyed on the episodes and the config."""
    from restac_ros.model.policy import RestacPolicy

    root = tiny_demo.policy.parents[1]
    quiet = dict(progress=False, log=lambda *_: None)
    ckpt = dt.ensure_vision_baseline(root, TINY, **quiet)
    policy = RestacPolicy.from_checkpoint(ckpt)
    assert not policy.config.use_tactile
    meta = json.loads((ckpt / "policy_meta.json").read_text())["training"]
    assert meta["bags"] == [p.name for p in tiny_demo.episodes]
    assert meta["steps"] == TINY.policy.steps and meta["rate_hz"] == TINY.policy.rate_hz
    stamp = (ckpt.parent / dt.KEY_FILE).stat().st_mtime_ns
    assert dt.ensure_vision_baseline(root, TINY, **quiet) == ckpt
    assert (ckpt.parent / dt.KEY_FILE).stat().st_mtime_ns == stamp
    other = dataclasses.replace(TINY, policy=dataclasses.replace(TINY.policy, steps=4))
    assert dt.vision_baseline_key(other) != dt.vision_baseline_key(TINY)
    more_vqvae = dataclasses.replace(TINY, vqvae=dataclasses.replace(TINY.vqvae, steps=4))
    assert dt.vision_baseline_key(more_vqvae) == dt.vision_baseline_key(TINY)  # no VQ-VAE
