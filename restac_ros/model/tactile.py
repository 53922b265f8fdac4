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
    def __init__(self, out_dim: int | None, *, mode: str, rngs: nnx.Rngs, vqvae=None,
                 vqvae_checkpoint: str | None = None, q_event_dim: int = 64):
        """mode "placeholder" or "vqvae". vqvae: already loaded (params, hparams), else
        read from `vqvae_checkpoint`; with neither, only `project_vq` exists and q_event
        must come from outside (`from_q_event`). out_dim None: no `project_vq`
        (features = q_event, the fork's token-in-AE model)."""
        kw = dict(rngs=rngs, kernel_init=_init.lecun_normal())
        self.mode = mode
        if mode == "placeholder":
            # 128x160 -> 32x40 -> 8x10 -> 4x5, then global mean pool.
            self.conv_0 = nnx.Conv(3, 16, (4, 4), strides=(4, 4), padding="VALID", **kw)
            self.conv_1 = nnx.Conv(16, 32, (4, 4), strides=(4, 4), padding="VALID", **kw)
            self.conv_2 = nnx.Conv(32, 64, (2, 2), strides=(2, 2), padding="VALID", **kw)
            self.feature_proj = nnx.Linear(64, out_dim, **kw)
            self.logvar_head = nnx.Linear(64, 1, **kw)
            return
        if vqvae is None and vqvae_checkpoint is not None:
            from restac_ros.tactile.jax_port import load_jax_vqvae

            vqvae = load_jax_vqvae(vqvae_checkpoint)
        self.has_vqvae = vqvae is not None
        if vqvae is not None:
            params, hparams = vqvae
            self.vqvae = FrozenVQVAE(jax.tree.map(jnp.asarray, params))
            self.vqvae_hparams = _Opaque(hparams)
            if _q_event_dim(params, hparams) != q_event_dim:
                raise ValueError(f"the VQ-VAE's q_event has {_q_event_dim(params, hparams)} "
                                 f"dims, the policy config says q_event_dim={q_event_dim}")
        self.project = out_dim is not None
        if self.project:
            self.project_vq = nnx.Linear(q_event_dim, out_dim, **kw)

    def __call__(self, tactile, visual3=None, action_prev=None) -> TactileEncoding:
        """tactile [B,128,160,3]; visual3 [B,3,224,224,3]; action_prev [B,>=7] (vqvae only)."""
        if self.mode == "placeholder":
            x = jax.nn.gelu(self.conv_0(tactile.astype(jnp.float32)))
            x = jax.nn.gelu(self.conv_1(x))
            x = jnp.mean(jax.nn.gelu(self.conv_2(x)), axis=(1, 2))
            feats = self.feature_proj(x)
            codes = jnp.full((tactile.shape[0], 1), -1, jnp.int32)
            return TactileEncoding(feats, self.logvar_head(x), codes, feats)
        if not self.has_vqvae:
            raise ValueError("no Residual VQ-VAE loaded (residual_vqvae_checkpoint unset): "
                             "give q_event/logvar to sample_actions (tactile_event=...)")
        from restac_ros.tactile.jax_port import vqvae_forward

        params = jax.lax.stop_gradient(self.vqvae.get_value())
        out = vqvae_forward(params, self.vqvae_hparams.value, tactile.astype(jnp.float32),
                            visual3.astype(jnp.float32),
                            action_prev[:, :VQ_ACTION_DIM].astype(jnp.float32))
        codes = out.codes.astype(jnp.int32).reshape(tactile.shape[0], -1)
        return self.from_q_event(out.q_event, out.logvar, codes)

    def from_q_event(self, q_event, logvar, codes=None) -> TactileEncoding:
        """The VQ-VAE's outputs q_event [B,q] and logvar [B,1] (frozen) -> encoding."""
        q_event = jax.lax.stop_gradient(jnp.asarray(q_event, jnp.float32))
        logvar = jax.lax.stop_gradient(jnp.asarray(logvar, jnp.float32))
        if codes is None:
            codes = jnp.full((q_event.shape[0], 1), -1, jnp.int32)
        feats = self.project_vq(q_event) if self.project else q_event
        return TactileEncoding(feats, logvar, codes, q_event)


def _q_event_dim(params, hparams) -> int:
    """Codebook width (64 in the published layout)."""
    rvq = getattr(hparams, "rvq", None)
    for obj, name in ((rvq, "dim"), (rvq, "e_dim"), (hparams, "e_dim")):
        if obj is not None and hasattr(obj, name):
            return int(getattr(obj, name))
    raise ValueError("cannot tell the VQ-VAE's q_event width from its hparams")


class Gate(nnx.Module):
    """Maps (features [B,E], logvar [B,1]) to a gate in [0,1] of shape [B,1].

    necessity:  clip(softplus(s_out) * sigmoid((logvar - c) * (softplus(sens) + 0.1)), 0, 1)
    learnable:  sigmoid(Linear(1,1)(logvar))
    factorized: necessity's uncertainty factor times a content factor
                sigmoid(content_proj(features)): "is there a tactile event worth
                acting on" (from the features) AND "is vision unsure" (from logvar),
                so either factor can close the gate on its own.
    fork_necessity: the published NecessityGate: scalar params, scale softplus(s_out)+1e-6.
    fork_learnable: the published LearnableGate (`proj`).
    """

    def __init__(self, kind: str, feature_dim: int, *, rngs: nnx.Rngs):
        if kind not in ("factorized", "necessity", "learnable", "fork_necessity",
                        "fork_learnable"):
            raise ValueError(f"unknown gate {kind!r}")
        self.kind = kind
        kw = dict(rngs=rngs, kernel_init=_init.lecun_normal())
        if kind in ("learnable", "fork_learnable"):
            setattr(self, "proj" if kind == "fork_learnable" else "linear",
                    nnx.Linear(1, 1, **kw))
            return
        shape = () if kind == "fork_necessity" else (1,)
        self.logvar_center = nnx.Param(jnp.full(shape, -9.5, jnp.float32))
        self.sensitivity = nnx.Param(jnp.full(shape, 5.0, jnp.float32))
        self.output_scale = nnx.Param(jnp.full(shape, 0.01, jnp.float32))
        if kind == "factorized":
            self.content_proj = nnx.Linear(feature_dim, 1, **kw)

    def __call__(self, features, logvar):
        logvar = logvar.astype(jnp.float32)
        if self.kind == "learnable":
            return jax.nn.sigmoid(self.linear(logvar))
        if self.kind == "fork_learnable":
            return jax.nn.sigmoid(self.proj(logvar))
        slope = jax.nn.softplus(self.sensitivity[...]) + 0.1
        uncertainty = jax.nn.sigmoid((logvar - self.logvar_center[...]) * slope)
        scale = jax.nn.softplus(self.output_scale[...])
        if self.kind == "fork_necessity":
            scale = scale + 1e-6
        g = scale * uncertainty
        if self.kind == "factorized":
            g = g * jax.nn.sigmoid(self.content_proj(features.astype(jnp.float32)))
        return jnp.clip(g, 0.0, 1.0)
