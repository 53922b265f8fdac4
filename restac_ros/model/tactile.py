"""Tactile encoder (`tactile_encoder`) and gates (`gate`) of the residual branch.

Encoder modes:
- placeholder (no VQ-VAE checkpoint): a small trainable conv net, tactile image
  [B,128,160,3] -> features [B,E] and logvar [B,1];
- vqvae: the frozen Residual VQ-VAE (`restac_ros.tactile.jax_port`) gives
  q_event [B,64], code indices [B,n_q] and logvar [B,1]; only `project_vq`
  (q_event -> features) is trained. The VQ-VAE weights live in a
  `FrozenVQVAE` variable (not an `nnx.Param`, so optimizers never see them) and
  its outputs pass through `stop_gradient`.
"""

from __future__ import annotations

import typing

import flax.nnx as nnx
import jax
import jax.numpy as jnp

from restac_ros.model import initializers as _init
from restac_ros.model.observation import VQ_ACTION_DIM


class FrozenVQVAE(nnx.Variable):
    """Non-trainable VQ-VAE weights (a whole pytree in one variable)."""


class _Opaque:
    """Hashable-by-identity holder for static, possibly unhashable, metadata."""

    def __init__(self, value):
        self.value = value


class TactileEncoding(typing.NamedTuple):
    features: jax.Array  # [B, E]
    logvar: jax.Array  # [B, 1]
    codes: jax.Array  # int32 [B, n_q]; -1 in placeholder mode
    q_event: jax.Array  # [B, E] placeholder (= features) / [B, 64] vqvae


class TactileEncoder(nnx.Module):
    def __init__(self, out_dim: int, *, vqvae_checkpoint: str | None, rngs: nnx.Rngs,
                 vqvae=None):
        """vqvae: already loaded (params, hparams), else read from `vqvae_checkpoint`."""
        kw = dict(rngs=rngs, kernel_init=_init.lecun_normal())
        self.mode = "placeholder" if vqvae_checkpoint is None and vqvae is None else "vqvae"
        if self.mode == "placeholder":
            # 128x160 -> 32x40 -> 8x10 -> 4x5, then global mean pool.
            self.conv_0 = nnx.Conv(3, 16, (4, 4), strides=(4, 4), padding="VALID", **kw)
            self.conv_1 = nnx.Conv(16, 32, (4, 4), strides=(4, 4), padding="VALID", **kw)
            self.conv_2 = nnx.Conv(32, 64, (2, 2), strides=(2, 2), padding="VALID", **kw)
            self.feature_proj = nnx.Linear(64, out_dim, **kw)
            self.logvar_head = nnx.Linear(64, 1, **kw)
        else:
            if vqvae is None:
                from restac_ros.tactile.jax_port import load_jax_vqvae

                vqvae = load_jax_vqvae(vqvae_checkpoint)
            params, hparams = vqvae
            self.vqvae = FrozenVQVAE(jax.tree.map(jnp.asarray, params))
            self.vqvae_hparams = _Opaque(hparams)
            q_dim = _q_event_dim(params, hparams)
            self.project_vq = nnx.Linear(q_dim, out_dim, **kw)

    def __call__(self, tactile, visual3=None, action_prev=None) -> TactileEncoding:
        """tactile [B,128,160,3]; visual3 [B,3,224,224,3]; action_prev [B,>=7] (vqvae only)."""
        if self.mode == "placeholder":
            x = jax.nn.gelu(self.conv_0(tactile.astype(jnp.float32)))
            x = jax.nn.gelu(self.conv_1(x))
            x = jnp.mean(jax.nn.gelu(self.conv_2(x)), axis=(1, 2))
            feats = self.feature_proj(x)
            codes = jnp.full((tactile.shape[0], 1), -1, jnp.int32)
            return TactileEncoding(feats, self.logvar_head(x), codes, feats)
        from restac_ros.tactile.jax_port import vqvae_forward

        params = jax.lax.stop_gradient(self.vqvae.get_value())
        out = vqvae_forward(params, self.vqvae_hparams.value, tactile.astype(jnp.float32),
                            visual3.astype(jnp.float32),
                            action_prev[:, :VQ_ACTION_DIM].astype(jnp.float32))
        q_event = jax.lax.stop_gradient(out.q_event.astype(jnp.float32))
        logvar = jax.lax.stop_gradient(out.logvar.astype(jnp.float32))
        codes = out.codes.astype(jnp.int32).reshape(tactile.shape[0], -1)
        return TactileEncoding(self.project_vq(q_event), logvar, codes, q_event)


def _q_event_dim(params, hparams) -> int:
    """Codebook width (`residual_vq_config.dim`, 64 in the published v4 layout)."""
    return int(hparams.rvq.dim)


class Gate(nnx.Module):
    """Maps (features [B,E], logvar [B,1]) to a gate in [0,1] of shape [B,1].

    necessity:  clip(softplus(s_out) * sigmoid((logvar - c) * (softplus(sens) + 0.1)), 0, 1)
    learnable:  sigmoid(Linear(1,1)(logvar))
    factorized: necessity's uncertainty factor times a content factor
                sigmoid(content_proj(features)): "is there a tactile event worth
                acting on" (from the features) AND "is vision unsure" (from logvar),
                so either factor can close the gate on its own.
    """

    def __init__(self, kind: str, feature_dim: int, *, rngs: nnx.Rngs):
        if kind not in ("factorized", "necessity", "learnable"):
            raise ValueError(f"unknown gate {kind!r}")
        self.kind = kind
        kw = dict(rngs=rngs, kernel_init=_init.lecun_normal())
        if kind == "learnable":
            self.linear = nnx.Linear(1, 1, **kw)
            return
        self.logvar_center = nnx.Param(jnp.full((1,), -9.5, jnp.float32))
        self.sensitivity = nnx.Param(jnp.full((1,), 5.0, jnp.float32))
        self.output_scale = nnx.Param(jnp.full((1,), 0.01, jnp.float32))
        if kind == "factorized":
            self.content_proj = nnx.Linear(feature_dim, 1, **kw)

    def __call__(self, features, logvar):
        logvar = logvar.astype(jnp.float32)
        if self.kind == "learnable":
            return jax.nn.sigmoid(self.linear(logvar))
        slope = jax.nn.softplus(self.sensitivity[...]) + 0.1
        uncertainty = jax.nn.sigmoid((logvar - self.logvar_center[...]) * slope)
        g = jax.nn.softplus(self.output_scale[...]) * uncertainty
        if self.kind == "factorized":
            g = g * jax.nn.sigmoid(self.content_proj(features.astype(jnp.float32)))
        return jnp.clip(g, 0.0, 1.0)
