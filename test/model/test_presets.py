"""Presets, fork config mapping and reading a model config off a param tree."""

from __future__ import annotations

import dataclasses
import json

import flax.nnx as nnx
import numpy as np
import pytest

from restac_ros.model import checkpoint as ckpt
from restac_ros.model import openpi_checkpoint as oc
from restac_ros.model import presets
from restac_ros.model.pi0_restac import Pi0ResTac
from test.model.conftest import HORIZON, TOKENS, tiny_config

FIXED_BY_TREE = ("backbone", "paligemma_variant", "action_expert_variant", "vision_variant",
                 "action_dim", "vocab_size", "use_tactile")
FIXED_WITH_TACTILE = ("tactile_mode", "q_event_dim", "gate", "fusion", "num_fusion_heads")


def _tree(cfg):
    """The param tree's shapes (abstract: no init)."""
    model = nnx.eval_shape(lambda: Pi0ResTac(cfg, nnx.Rngs(0)))
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def _fork(**kw):
    small = dict(paligemma_variant="dummy", action_expert_variant="dummy",
                 vision_variant="tiny", action_dim=8, action_horizon=HORIZON,
                 max_token_len=TOKENS, vocab_size=128)
    return small | kw


@pytest.mark.parametrize("cfg", [
    tiny_config(),
    tiny_config(fusion="two_stage", gate="necessity"),
    tiny_config(gate="learnable", backbone="pi05"),
    tiny_config(use_tactile=False),
    presets.fork_restac(**_fork(tactile_encoder_dim=48, num_fusion_heads=4)),
    presets.fork_restac(**_fork(gate="fork_learnable")),
    presets.fork_token_in_ae(**_fork()),
], ids=["ours", "two_stage", "learnable", "backbone", "fork", "fork_learnable", "token_in_ae"])
def test_config_read_off_the_tree(cfg):
    tree = _tree(cfg)
    layout = oc.inspect_params(tree)
    got = layout.config(action_horizon=cfg.action_horizon, max_token_len=cfg.max_token_len)
    for f in FIXED_BY_TREE + (FIXED_WITH_TACTILE if cfg.use_tactile else ()):
        assert getattr(got, f) == getattr(cfg, f), f
    if cfg.use_tactile and cfg.fusion != "fork_token_in_ae":
        assert got.tactile_encoder_dim == cfg.tactile_encoder_dim
    if cfg.use_tactile and cfg.fusion in ("two_stage", "prefix_self_attn"):
        assert got.fusion_dim == cfg.fusion_dim
    assert layout.kind == {"fork_prefix_self_attn": "fork_restac",
                           "fork_token_in_ae": "fork_token_in_ae"}.get(
        cfg.fusion, "restac_ros" if cfg.use_tactile else "openpi")
    # The inferred config builds a model with exactly this tree.
    assert jax_shapes(_tree(got)) == jax_shapes(tree)


def jax_shapes(tree):
    import flax.traverse_util as tu

    return {k: tuple(v.shape) for k, v in tu.flatten_dict(tree, sep="/").items()}


def test_unknown_trees_are_refused_by_name():
    tree = _tree(tiny_config(use_tactile=False))
    tree["PaliGemma"]["llm"]["layers"]["attn"]["q_einsum"]["lora_a"] = np.zeros((1, 2))
    assert oc.inspect_params(tree).lora
    with pytest.raises(ckpt.CheckpointMismatchError, match="q_einsum/lora_a without"):
        oc.merge_lora(tree)
    tree = _tree(tiny_config(use_tactile=False))
    del tree["action_in_proj"]
    with pytest.raises(ckpt.CheckpointMismatchError, match="action_in_proj/kernel"):
        oc.inspect_params(tree)


def test_fork_fields_map_to_ours():
    cfg = presets.config_from_fork_fields(
        {"fusion_dim": 256, "num_cross_attn_heads": 4, "use_gate": False,
         "gate_type": "learnable", "cross_attn_dropout": 0.1, "action_horizon": 10})
    assert (cfg.tactile_encoder_dim, cfg.num_fusion_heads, cfg.use_gate, cfg.gate,
            cfg.fusion, cfg.backbone, cfg.action_horizon) == (
        256, 4, False, "fork_learnable", "fork_prefix_self_attn", "pi05", 10)
    tok = presets.config_from_fork_fields({"gate_type": "necessity"}, token_in_ae=True)
    assert (tok.fusion, tok.gate) == ("fork_token_in_ae", "fork_necessity")
    with pytest.raises(ValueError, match="unknown ResTacVLA config fields"):
        presets.config_from_fork_fields({"fusion_width": 3})
    with pytest.raises(ValueError, match="gate_type"):
        presets.config_from_fork_fields({"gate_type": "factorized"})
    with pytest.raises(ValueError, match="unknown model preset"):
        presets.preset("pi1")
    assert presets.preset("openpi_pi05").use_tactile is False


def test_config_rejects_mixed_variants():
    with pytest.raises(ValueError, match="tactile_encoder_mode must be 'vqvae'"):
        tiny_config(fusion="fork_prefix_self_attn")
    with pytest.raises(ValueError, match="pi0.5 model"):
        tiny_config(fusion="fork_token_in_ae", tactile_encoder_mode="vqvae")
    with pytest.raises(ValueError, match="use_gate=False"):
        tiny_config(use_gate=False)


def test_norm_stats_found_under_the_checkpoints_asset_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="absolute dataset path"):
        oc.find_norm_stats(tmp_path)
    stats = json.dumps({"norm_stats": {}})
    for asset in ("org/a", "b"):
        (tmp_path / "assets" / asset).mkdir(parents=True)
        (tmp_path / "assets" / asset / "norm_stats.json").write_text(stats)
    with pytest.raises(FileNotFoundError, match="several norm stats"):
        oc.find_norm_stats(tmp_path)
    path, asset = oc.find_norm_stats(tmp_path, "org/a")
    assert asset == "org/a" and path == tmp_path / "assets" / "org" / "a" / "norm_stats.json"
    (tmp_path / "assets" / "b" / "norm_stats.json").unlink()
    assert oc.find_norm_stats(tmp_path)[1] == "org/a"
    assert dataclasses.is_dataclass(oc.inspect_params(_tree(tiny_config())))
