"""Parity with the published code: openpi's Pi0 (pi0, pi0.5) and the ResTacVLA fork's
Pi0_ResTac / Pi0_ResTac_TokenInAE, loaded from the checkpoint directories THEIR code
wrote, fed the same observation, q_event/logvar and noise.

Fixtures: test/model/fixtures/openpi_parity/, made by scripts/gen_model_parity_fixtures.py
from Physical-Intelligence/openpi@15a9616a00943ada6c20a0f158e3adb39df2ccac and
Awilekong/openpi@b181a9b61c608a81d5395f6dfbae05de938afcce (jax 0.5.3, f32, dummy Gemma,
SigLIP "mu/14"; see the script for what it changes around the models and why).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import flax.nnx as nnx
import jax
import numpy as np
import pytest

from restac_ros.model import checkpoint as ckpt
from restac_ros.model import gemma, presets
from restac_ros.model import openpi_checkpoint as oc
from restac_ros.model.observation import IMAGE_KEYS, Observation
from restac_ros.model.policy import RestacPolicy, build_model

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "openpi_parity"
ATOL = 1e-5  # issue 10: actions within 1e-5 (f32)


def _case(name):
    d = FIXTURES / name
    ref = json.loads((d / "reference.json").read_text())
    with np.load(d / "expected.npz") as z:
        exp = {k: z[k] for k in z.files}
    return d, ref, exp


def _obs(exp, cfg) -> Observation:
    b = exp["state"].shape[0]
    return Observation(
        images={k: exp[f"images/{k}"].astype(np.float32) / 127.5 - 1.0 for k in IMAGE_KEYS},
        image_masks={k: exp[f"image_masks/{k}"] for k in IMAGE_KEYS},
        state=exp["state"], tokenized_prompt=exp["tokenized_prompt"],
        tokenized_prompt_mask=exp["tokenized_prompt_mask"],
        tactile_image=np.zeros((b, 128, 160, 3), np.float32),
        tactile_mask=np.ones((b,), bool),
        action_prev=np.zeros((b, cfg.action_dim), np.float32))


def _sample(model, obs, exp, tactile_event=None):
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, obs, noise, event):
        m = nnx.merge(graphdef, state)
        return m.sample_actions(None, obs, num_steps=int(exp["num_steps"]), noise=noise,
                                tactile_event=event)

    actions, diag = run(state, obs, exp["noise"], tactile_event)
    return np.asarray(actions), diag


def _load(name, **overrides):
    d, ref, exp = _case(name)
    params = ckpt.restore_params(d / "params")
    layout = oc.inspect_params(params)
    cfg = layout.config(action_horizon=exp["noise"].shape[1],
                        max_token_len=exp["tokenized_prompt"].shape[1], **overrides)
    return d, ref, exp, params, layout, cfg


@pytest.mark.parametrize("name,backbone", [("openpi_pi0", "pi0"), ("openpi_pi05", "pi05")])
def test_openpi_pi0_matches(name, backbone):
    d, ref, exp, params, layout, cfg = _load(name)
    assert layout.kind == "openpi" and layout.backbone == backbone
    assert (cfg.paligemma_variant, cfg.vision_variant, cfg.use_tactile) == ("dummy", "mu/14",
                                                                            False)
    actions, _ = _sample(build_model(cfg, params), _obs(exp, cfg), exp)
    err = np.abs(actions - exp["actions"]).max()
    assert err < ATOL, f"{name}: max abs diff {err:.2e} vs {ref['source_commit']}"


@pytest.mark.parametrize("name,gate,fusion", [
    ("fork_restac", "fork_necessity", "fork_prefix_self_attn"),
    ("fork_restac_learnable", "fork_learnable", "fork_prefix_self_attn"),
    ("fork_token_in_ae", "fork_necessity", "fork_token_in_ae"),
])
def test_fork_matches(name, gate, fusion):
    d, ref, exp, params, layout, cfg = _load(name)
    assert layout.kind == fusion.replace("_prefix_self_attn", "_restac")
    assert f"fusion {fusion}, gate {gate}" in "\n".join(layout.summary())
    assert (cfg.gate, cfg.fusion, cfg.backbone) == (gate, fusion, "pi05")
    fork_cfg = presets.config_from_fork_fields(
        {k: v for k, v in ref["config"].items() if k != "residual_vqvae_checkpoint"},
        token_in_ae=fusion == "fork_token_in_ae", vision_variant="mu/14")
    for f in ("tactile_encoder_dim", "num_fusion_heads", "gate", "fusion", "q_event_dim"):
        assert getattr(fork_cfg, f) == getattr(cfg, f), f  # the tree and the fork's config
    model = build_model(fork_cfg, params)
    event = (exp["q_event"], exp["logvar"])
    actions, diag = _sample(model, _obs(exp, fork_cfg), exp, event)
    err = np.abs(actions - exp["actions"]).max()
    assert err < ATOL, f"{name}: max abs diff {err:.2e} vs {ref['source_commit']}"
    assert np.all(np.asarray(diag.gate) > 0)


def test_openpi_lora_checkpoint_merges_and_matches():
    """A LoRA fine-tune (openpi's dummy Gemma with LoRA on both experts, alpha = rank):
    the LoRA weights fold into the base weights at load."""
    d, ref, exp = _case("openpi_pi05_lora")
    params = ckpt.restore_params(d / "params")
    layout = oc.inspect_params(params)
    assert layout.lora and layout.kind == "openpi"
    cfg = layout.config(action_horizon=exp["noise"].shape[1],
                        max_token_len=exp["tokenized_prompt"].shape[1])
    with pytest.raises(ckpt.CheckpointMismatchError, match="unexpected params: .*lora_a"):
        build_model(cfg, params)
    actions, _ = _sample(build_model(cfg, oc.merge_lora(params)), _obs(exp, cfg), exp)
    err = np.abs(actions - exp["actions"]).max()
    assert err < ATOL, f"LoRA: max abs diff {err:.2e} vs {ref['source_commit']}"
    assert RestacPolicy.from_checkpoint(d, config=cfg).meta["asset_id"] == ref["asset_id"]


def test_fork_fusion_attends_over_padding_and_ours_masks_it():
    """The fork preset reproduces the unmasked fusion; our masked prefix_self_attn on the
    same weights gives different actions on this padded prompt."""
    d, ref, exp, params, layout, cfg = _load("fork_restac")
    obs, event = _obs(exp, cfg), (exp["q_event"], exp["logvar"])
    fork_actions, _ = _sample(build_model(cfg, params), obs, exp, event)
    # Same tree (attention width = VLM width, the fork's gate), only the mask differs.
    ours = dataclasses.replace(cfg, fusion="prefix_self_attn",
                               fusion_dim=gemma.get_config(cfg.paligemma_variant).width)
    masked, _ = _sample(build_model(ours, params), obs, exp, event)
    assert np.abs(fork_actions - exp["actions"]).max() < ATOL
    assert np.abs(masked - exp["actions"]).max() > 1e-3


def test_fork_tree_refused_by_our_layout_names_params():
    d, ref, exp, params, layout, cfg = _load("fork_restac")
    ours = dataclasses.replace(cfg, fusion="prefix_self_attn", gate="necessity")
    with pytest.raises(ckpt.CheckpointMismatchError) as err:
        build_model(ours, params, source=d / "params")
    msg = str(err.value)
    assert str(d / "params") in msg and "gate/logvar_center" in msg


def test_policy_entry_point_takes_an_openpi_directory():
    """No restac_config.json: the config comes from the tree (+ what the tree does not
    fix) and the norm stats from assets/<the checkpoint's asset id>/."""
    d, ref, exp = _case("openpi_pi05")
    assert not (d / "restac_config.json").exists()
    cfg = oc.inspect_params(ckpt.restore_params(d / "params")).config(
        action_horizon=exp["noise"].shape[1], max_token_len=exp["tokenized_prompt"].shape[1])
    policy = RestacPolicy.from_checkpoint(d, config=cfg)
    assert policy.meta["asset_id"] == ref["asset_id"] == "lerobot/peg_hole_tac"
    assert set(policy.norm_stats) == {"state", "actions"}
    out = policy.infer(_obs(exp, cfg), seed=3)
    assert out.actions_norm.shape == exp["actions"].shape
    assert np.all(np.isfinite(out.actions_norm))
    with pytest.raises(FileNotFoundError, match="nope"):
        RestacPolicy.from_checkpoint(d, config=cfg, asset_id="nope")


def test_fork_checkpoint_without_vqvae_needs_q_event():
    d, ref, exp, params, layout, cfg = _load("fork_restac")
    model = build_model(cfg, params)
    with pytest.raises(ValueError, match="no Residual VQ-VAE loaded"):
        model.sample_actions(None, _obs(exp, cfg), num_steps=1, noise=exp["noise"])


def test_checkpoint_notes_name_the_fork_faults():
    d, ref, exp, params, layout, cfg = _load("fork_restac")
    notes = " ".join(oc.checkpoint_notes(cfg, params))
    assert "tactile_0" in notes and "action_prev" in notes and "jit" in notes
    assert "padded prompt" in notes
    untrained = jax.tree.map(np.asarray, params)
    untrained["gate"] = {"logvar_center": np.float32(-9.5), "sensitivity": np.float32(5.0),
                         "output_scale": np.float32(0.01)}
    assert "initial values" in " ".join(oc.checkpoint_notes(cfg, untrained))
    assert "initial values" not in notes
    openpi = oc.inspect_params(ckpt.restore_params(FIXTURES / "openpi_pi0" / "params"))
    assert "openpi backbone" in oc.checkpoint_notes(openpi.config())[0]
    lora = ckpt.restore_params(FIXTURES / "openpi_pi05_lora" / "params")
    assert "LoRA" in oc.checkpoint_notes(oc.inspect_params(lora).config(), lora)[0]


def test_fork_without_tactile_input_is_the_backbone():
    """tactile_mask False: the fork zeros features and gate, so the correction is zero and
    the actions are the backbone's (the same tree without its tactile params)."""
    d, ref, exp, params, layout, cfg = _load("fork_restac")
    obs = dataclasses.replace(_obs(exp, cfg), tactile_mask=np.zeros((2,), bool))
    event = (exp["q_event"], exp["logvar"])
    with_branch, diag = _sample(build_model(cfg, params), obs, exp, event)
    assert np.all(np.asarray(diag.gate) == 0)
    tactile = ("tactile_", "fusion_", "gate")
    backbone = {k: v for k, v in params.items() if not k.startswith(tactile)}
    plain, _ = _sample(build_model(dataclasses.replace(cfg, use_tactile=False), backbone),
                       obs, exp)
    np.testing.assert_array_equal(with_branch, plain)


def test_fork_use_gate_false_ignores_the_gate():
    """The fork's ablation: logvar only drives the gate, so without the gate it has no
    effect; with the gate it does."""
    d, ref, exp, params, layout, cfg = _load("fork_restac")
    obs = _obs(exp, cfg)
    ev1, ev2 = (exp["q_event"], exp["logvar"]), (exp["q_event"], exp["logvar"] + 1.0)
    ungated = build_model(dataclasses.replace(cfg, use_gate=False), params)
    np.testing.assert_array_equal(_sample(ungated, obs, exp, ev1)[0],
                                  _sample(ungated, obs, exp, ev2)[0])
    gated = build_model(cfg, params)
    assert np.abs(_sample(gated, obs, exp, ev1)[0] - _sample(gated, obs, exp, ev2)[0]).max() > 1e-3


def test_fork_directory_needs_its_vqvae_to_run():
    d, ref, exp, params, layout, cfg = _load("fork_restac")
    with pytest.raises(ValueError, match="residual_vqvae_checkpoint"):
        RestacPolicy.from_checkpoint(d, config=cfg)
    policy = oc.load_openpi_policy(d, cfg, external_q_event=True)
    assert policy.meta["asset_id"] == ref["asset_id"]
