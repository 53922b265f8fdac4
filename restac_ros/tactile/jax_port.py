"""JAX port of the frozen Residual VQ-VAE, for use inside the compiled policy sampler.

    params, hparams = load_jax_vqvae("vqvae.ckpt")        # torch only here, at load time
    out = vqvae_forward(params, hparams, tactile, visual3, action_prev)   # pure JAX

``vqvae_forward`` is jit-able with ``hparams`` static (a frozen, hashable
dataclass).  Inputs: tactile float32 [B, 128, 160, 3] in [-1, 1]; visual3
float32 [B, 3, 224, 224, 3] in [-1, 1] (base, left wrist, right wrist);
action_prev float32 [B, 7] (raw joint delta over one control step, see
``restac_ros.model.observation``).  Output: ``VQVAEJaxOutput``
(a registered pytree NamedTuple) with codes int32 [B, n_q], q_event [B, 64],
logvar [B, 1], mu / z_real [B, 16, 20, 3] (NHWC) and h_event [B, 64].
BatchNorm runs in eval mode from the running statistics.  Parameters are the
published state_dict (docs/vqvae.md) keyed by their torch names; loading is as
strict as ``checkpoint.read_checkpoint`` (every key, shape, finite values).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from restac_ros.tactile.config import EVENT_NUM_RES_BLOCKS, VQVAEHParams, parse_hparams
from restac_ros.tactile.jax_layers import (
    HI,
    avg_pool_2x2,
    conv,
    gelu,
    group_norm,
    layer_norm,
    linear,
    resize_bilinear,
    resnet18,
    swish,
)

# Prophet view order, as openpi camera slots.
VIEW_ORDER = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class VQVAEJaxOutput(NamedTuple):
    codes: jax.Array
    q_event: jax.Array
    logvar: jax.Array
    mu: jax.Array
    z_real: jax.Array
    h_event: jax.Array


def _to_numpy(v) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def load_jax_vqvae_from_state(
    state_dict: Mapping[str, Any], hparams_dict: Mapping[str, Any] | VQVAEHParams,
    where: str = "state_dict",
) -> tuple[dict[str, jax.Array], VQVAEHParams]:
    """Convert a published-layout state_dict (torch tensors or arrays) to JAX params.

    Keys and shapes are checked strictly, as for a checkpoint file.
    """
    from restac_ros.tactile.checkpoint import check_state_dict  # torch needed only here

    hp = hparams_dict if isinstance(hparams_dict, VQVAEHParams) else parse_hparams(
        dict(hparams_dict), where)
    check_state_dict(state_dict, hp, where)
    params: dict[str, jax.Array] = {}
    for key, value in state_dict.items():
        arr = _to_numpy(value)
        if key.endswith("num_batches_tracked"):
            continue
        if arr.ndim == 4:  # conv OIHW -> HWIO
            arr = arr.transpose(2, 3, 1, 0)
        elif arr.ndim == 2 and key.endswith(".weight"):  # Linear [out, in] -> [in, out]
            arr = arr.T
        params[key] = jnp.asarray(np.ascontiguousarray(arr), dtype=jnp.float32)
    return params, hp


def load_jax_vqvae(ckpt_path: str | os.PathLike) -> tuple[dict[str, jax.Array], VQVAEHParams]:
    """Read a published-format ``.ckpt`` (strictly, weights_only) -> (params, hparams)."""
    from restac_ros.tactile.checkpoint import read_checkpoint

    state, hp, _ = read_checkpoint(ckpt_path)
    return load_jax_vqvae_from_state(state, hp, os.fspath(ckpt_path))


def stack_views(images: Mapping[str, jax.Array], xp: Any = jnp) -> jax.Array:
    """{slot: [B, 224, 224, 3]} -> visual3 [B, 3, 224, 224, 3] in ``VIEW_ORDER``.

    ``xp=numpy`` stacks on the host (the VQ-VAE trainer: same order, no device arrays)."""
    missing = [k for k in VIEW_ORDER if k not in images]
    if missing:
        raise KeyError(f"stack_views: missing camera slots {missing} (need {list(VIEW_ORDER)})")
    return xp.stack([images[k] for k in VIEW_ORDER], axis=1)


def _prophet(p, hp: VQVAEHParams, visual3, action_prev):
    pc, pre = hp.prophet, "prophet_encoder."
    x = ((visual3 + 1.0) / 2.0 - IMAGENET_MEAN) / IMAGENET_STD
    b, nv = x.shape[:2]
    x = x.reshape(b * nv, *x.shape[2:])
    if hp.ext.prophet_input_size is not None:
        x = resize_bilinear(x, (hp.ext.prophet_input_size,) * 2)
    if hp.ext.shared_visual_backbone:
        feat = resnet18(p, pre + "visual_backbone.", x).reshape(b, nv, -1)
    else:
        x = x.reshape(b, nv, *x.shape[1:])
        feat = jnp.stack([resnet18(p, f"{pre}visual_backbones.{v}.", x[:, v])
                          for v in range(nv)], axis=1)
    feat = feat.reshape(b, -1) if pc.view_fusion == "concat" else jnp.mean(feat, axis=1)
    h = jnp.concatenate([feat, jax.nn.relu(linear(p, pre + "action_mlp.0", action_prev))], axis=1)
    for i in range(pc.num_fusion_blocks):
        n = f"{pre}fusion_body."
        h = gelu(layer_norm(p, f"{n}{4 * i + 1}", linear(p, f"{n}{4 * i}", h)))
    c, hb, wb = pc.latent_shape[0], *pc.bottleneck_resolution
    mu = linear(p, pre + "head_mu", h).reshape(b, c, hb, wb).transpose(0, 2, 3, 1)
    return resize_bilinear(mu, tuple(pc.latent_shape[1:])), linear(p, pre + "head_logvar", h)


def _resblock(p, n: str, x):
    h = conv(p, n + "conv1", swish(group_norm(p, n + "norm1", x, 32, 1e-6)))
    h = conv(p, n + "conv2", swish(group_norm(p, n + "norm2", h, 32, 1e-6)))
    if n + "nin_shortcut.weight" in p:
        x = conv(p, n + "nin_shortcut", x)
    return x + h


def _attn(p, n: str, x):
    h = group_norm(p, n + "norm", x, 32, 1e-6)
    b, hh, ww, c = h.shape
    q = conv(p, n + "q", h).reshape(b, hh * ww, c)
    k = conv(p, n + "k", h).reshape(b, hh * ww, c)
    v = conv(p, n + "v", h).reshape(b, hh * ww, c)
    w = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", q, k, precision=HI) * (c ** -0.5), axis=-1)
    out = jnp.einsum("bqk,bkc->bqc", w, v, precision=HI).reshape(b, hh, ww, c)
    return x + conv(p, n + "proj_out", out)


def _obs_encoder(p, hp: VQVAEHParams, x):
    dd, pre = hp.dd, "obs_encoder."
    h = conv(p, pre + "conv_in", x)
    for lvl in range(len(dd.ch_mult)):
        for j in range(dd.num_res_blocks):
            h = _resblock(p, f"{pre}down.{lvl}.block.{j}.", h)
            if f"{pre}down.{lvl}.attn.{j}.q.weight" in p:
                h = _attn(p, f"{pre}down.{lvl}.attn.{j}.", h)
        if lvl != dd.num_down and dd.resamp_with_conv:
            h = conv(p, f"{pre}down.{lvl}.downsample.conv", h, stride=2, padding=[(0, 1), (0, 1)])
        elif lvl != dd.num_down:
            h = avg_pool_2x2(h)
    h = _resblock(p, pre + "mid.block_1.", h)
    h = _attn(p, pre + "mid.attn_1.", h)
    h = _resblock(p, pre + "mid.block_2.", h)
    h = conv(p, pre + "conv_out", swish(group_norm(p, pre + "norm_out", h, 32, 1e-6)))
    return conv(p, "quant_conv", h)


def _event_encoder(p, mu, z_real):
    pre = "event_encoder."
    h = gelu(conv(p, pre + "head.0", jnp.concatenate([mu, z_real - mu], axis=-1)))
    for i in range(EVENT_NUM_RES_BLOCKS):
        n = f"{pre}body.{i}."
        r = conv(p, n + "conv1", gelu(group_norm(p, n + "norm1", h, 8, 1e-5)))
        h = h + conv(p, n + "conv2", gelu(group_norm(p, n + "norm2", r, 8, 1e-5)))
    return jnp.max(conv(p, pre + "pre_pool", h), axis=(1, 2))


def codebook_prefixes(hp: VQVAEHParams) -> list[str]:
    """State-dict prefix of each quantiser stage (one published stage: ``residual_vq.``)."""
    if hp.num_quantizers == 1:
        return ["residual_vq."]
    return [f"residual_vq.stages.{i}." for i in range(hp.num_quantizers)]


def _residual_vq(p, hp: VQVAEHParams, x):
    residual, q_sum, codes = x, None, []
    for pre in codebook_prefixes(hp):
        e = p[pre + "embed"]
        dist = (jnp.sum(residual * residual, axis=1, keepdims=True) + jnp.sum(e * e, axis=1)[None]
                - 2.0 * jnp.matmul(residual, e.T, precision=HI))
        idx = jnp.argmin(dist, axis=1).astype(jnp.int32)
        q = residual + (e[idx] - residual)
        codes.append(idx)
        q_sum = q if q_sum is None else q_sum + q
        residual = residual - q
    return q_sum, jnp.stack(codes, axis=1)


def vqvae_forward(params, hparams: VQVAEHParams, tactile, visual3, action_prev) -> VQVAEJaxOutput:
    """Pure-JAX forward; jit with ``static_argnums=1`` (or close over ``hparams``)."""
    mu, logvar = _prophet(params, hparams, visual3, action_prev)
    z_real = _obs_encoder(params, hparams, tactile)
    h_event = _event_encoder(params, mu, z_real)
    q_event, codes = _residual_vq(params, hparams, h_event)
    return VQVAEJaxOutput(codes=codes, q_event=q_event, logvar=logvar, mu=mu, z_real=z_real,
                          h_event=h_event)
