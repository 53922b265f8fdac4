"""SigLIP ViT image tower (`PaliGemma/img`, big_vision / openpi parameter layout).

Patch embedding (`embedding`, a stride=patch conv done as a matmul over patches),
learned `pos_embedding`, a pre-LN encoder stacked over depth
(`Transformer/encoderblock/...`), `Transformer/encoder_norm` and a `head`
projecting every token to the LLM width (pool_type "none").
"""

from __future__ import annotations

import dataclasses

import flax.nnx as nnx
import jax
import jax.numpy as jnp

from restac_ros.model import initializers as _init


@dataclasses.dataclass(frozen=True)
class SiglipConfig:
    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    patch: int


VARIANTS: dict[str, SiglipConfig] = {
    "So400m/14": SiglipConfig(1152, 27, 4304, 16, 14),
    # big_vision's smallest ViT at openpi's patch grid (the parity fixtures' tower).
    "mu/14": SiglipConfig(32, 1, 128, 2, 14),
    # CPU-test tower: 224/16 -> 14x14 = 196 tokens per camera.
    "tiny": SiglipConfig(64, 2, 128, 2, 16),
    # Training tests: 224/56 -> 4x4 = 16 tokens per camera.
    "micro": SiglipConfig(32, 1, 64, 2, 56),
}


def get_config(variant: str) -> SiglipConfig:
    if variant not in VARIANTS:
        raise ValueError(f"unknown vision variant {variant!r}; known: {sorted(VARIANTS)}")
    return VARIANTS[variant]


def _ln(rngs, lead, width):
    return nnx.Dict(scale=nnx.Param(jnp.ones((*lead, width))),
                    bias=nnx.Param(jnp.zeros((*lead, width))))


def _dense(rngs, shape, fan_in, bias_shape):
    w = _init.normal(rngs.params(), shape, fan_in**-0.5)
    return nnx.Dict(kernel=nnx.Param(w), bias=nnx.Param(jnp.zeros(bias_shape)))


def layer_norm(x, p, eps: float = 1e-6):
    xf = x.astype(jnp.float32)
    mean = jnp.mean(xf, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(xf - mean), axis=-1, keepdims=True)
    y = (xf - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]
    return y.astype(x.dtype)


class Siglip(nnx.Module):
    """images float [B,H,W,3] in [-1,1] -> tokens [B, (H/p)*(W/p), out_dim]."""

    def __init__(self, cfg: SiglipConfig, *, out_dim: int, image_size=(224, 224),
                 dtype: str = "float32", rngs: nnx.Rngs):
        self.cfg = cfg
        self.dtype = jnp.dtype(dtype)
        p, w, d, m, nh = cfg.patch, cfg.width, cfg.depth, cfg.mlp_dim, cfg.num_heads
        n_tok = (image_size[0] // p) * (image_size[1] // p)
        self.embedding = _dense(rngs, (p, p, 3, w), p * p * 3, (w,))
        pos = _init.normal(rngs.params(), (1, n_tok, w), w**-0.5)
        self.pos_embedding = nnx.Param(pos)
        hd = w // nh
        mha = nnx.Dict(
            query=_dense(rngs, (d, w, nh, hd), w, (d, nh, hd)),
            key=_dense(rngs, (d, w, nh, hd), w, (d, nh, hd)),
            value=_dense(rngs, (d, w, nh, hd), w, (d, nh, hd)),
            out=_dense(rngs, (d, nh, hd, w), w, (d, w)),
        )
        block = nnx.Dict(
            LayerNorm_0=_ln(rngs, (d,), w),
            LayerNorm_1=_ln(rngs, (d,), w),
            MultiHeadDotProductAttention_0=mha,
            MlpBlock_0=nnx.Dict(Dense_0=_dense(rngs, (d, w, m), w, (d, m)),
                                Dense_1=_dense(rngs, (d, m, w), m, (d, w))),
        )
        self.Transformer = nnx.Dict(encoderblock=block, encoder_norm=_ln(rngs, (), w))
        self.head = _dense(rngs, (w, out_dim), w, (out_dim,))

    def __call__(self, images):
        cfg, dt = self.cfg, self.dtype
        b, h, w, c = images.shape
        p = cfg.patch
        x = images.astype(dt).reshape(b, h // p, p, w // p, p, c)
        x = x.transpose(0, 1, 3, 2, 4, 5).reshape(b, (h // p) * (w // p), p * p * c)
        kern = self.embedding["kernel"][...].reshape(p * p * c, cfg.width).astype(dt)
        x = x @ kern + self.embedding["bias"][...].astype(dt)
        x = x + self.pos_embedding[...].astype(dt)
        params = nnx.to_pure_dict(nnx.state(self.Transformer["encoderblock"]))

        def block(x, bp):
            a = bp["MultiHeadDotProductAttention_0"]
            y = layer_norm(x, bp["LayerNorm_0"])
            q, k, v = (jnp.einsum("BTD,DNH->BTNH", y, a[n]["kernel"].astype(dt))
                       + a[n]["bias"].astype(dt) for n in ("query", "key", "value"))
            q = q * (q.shape[-1] ** -0.5)
            logits = jnp.einsum("BTNH,BSNH->BNTS", q, k, preferred_element_type=jnp.float32)
            probs = jax.nn.softmax(logits, axis=-1).astype(dt)
            y = jnp.einsum("BNTS,BSNH->BTNH", probs, v)
            y = jnp.einsum("BTNH,NHD->BTD", y, a["out"]["kernel"].astype(dt))
            x = x + y + a["out"]["bias"].astype(dt)
            mlp = bp["MlpBlock_0"]
            y = layer_norm(x, bp["LayerNorm_1"])
            dense = lambda y, n: y @ mlp[n]["kernel"].astype(dt) + mlp[n]["bias"].astype(dt)
            y = dense(jax.nn.gelu(dense(y, "Dense_0")), "Dense_1")
            return x + y, None

        x, _ = jax.lax.scan(block, x, params)
        x = layer_norm(x, nnx.to_pure_dict(nnx.state(self.Transformer["encoder_norm"])))
        return x @ self.head["kernel"][...].astype(dt) + self.head["bias"][...].astype(dt)
