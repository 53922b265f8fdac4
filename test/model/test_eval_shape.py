"""The full-size model (gemma_2b + gemma_300m + So400m) traced without allocating params."""

from __future__ import annotations

import math

import flax.nnx as nnx
import jax

from restac_ros.model import gemma, siglip
from restac_ros.model.config import PALIGEMMA_VOCAB_SIZE, Pi0ResTacConfig


def _expert(c: gemma.GemmaConfig, adarms: bool) -> int:
    norm = (c.width * 3 * c.width + 3 * c.width) if adarms else c.width
    attn = c.num_heads * c.width * c.head_dim * 2 + 2 * c.num_kv_heads * c.width * c.head_dim
    mlp = 3 * c.width * c.mlp_dim
    return c.depth * (attn + mlp + 2 * norm) + norm


def _siglip(c: siglip.SiglipConfig, out: int) -> int:
    w = c.width
    block = 4 * w + 4 * (w * w + w) + 2 * w * c.mlp_dim + c.mlp_dim + w
    return (c.patch**2 * 3 * w + w) + 256 * w + c.depth * block + 2 * w + w * out + out


def test_full_config_param_count_without_allocating():
    cfg = Pi0ResTacConfig()  # pi0, gemma_2b + gemma_300m, So400m/14, action_dim 32
    abstract = nnx.eval_shape(lambda: cfg.create(jax.random.key(0)))
    leaves = jax.tree.leaves(nnx.state(abstract, nnx.Param))
    assert leaves and all(isinstance(x, jax.ShapeDtypeStruct) for x in leaves)
    total = sum(math.prod(x.shape) for x in leaves)
    tactile = sum(math.prod(x.shape) for k in ("tactile_encoder", "gate", "tactile_to_vlm_proj",
                                               "fusion_self_attn")
                  for x in jax.tree.leaves(nnx.state(getattr(abstract, k), nnx.Param)))
    pg, ae = gemma.get_config("gemma_2b"), gemma.get_config("gemma_300m")
    a, w = cfg.action_dim, ae.width
    heads = (a * w + w) * 2 + (2 * w * w + w) + (w * w + w) + (w * a + a)
    backbone = (PALIGEMMA_VOCAB_SIZE * pg.width + _expert(pg, False) + _expert(ae, False)
                + _siglip(siglip.get_config("So400m/14"), pg.width) + heads)
    assert total - tactile == backbone
    assert 3.2e9 < backbone < 3.4e9  # openpi's pi0 is ~3.3B
    assert 0 < tactile < 0.01 * backbone
    print(f"Pi0_ResTac full config: {total:,} params ({tactile:,} in the tactile branch)")
