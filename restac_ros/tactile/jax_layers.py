"""Pure-JAX building blocks of the VQ-VAE port (NHWC activations, HIGHEST precision).

Parameters live in a flat dict keyed by the torch state_dict names; conv
weights are pre-transposed to HWIO and Linear weights to [in, out] at load
time (see ``jax_port.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

HI = jax.lax.Precision.HIGHEST
SMALL_CONV_PIXELS = 16  # conv outputs this small run as patches @ weights (see `conv`)


def conv(p, name: str, x, stride: int = 1, padding=None):
    """Conv2d with torch semantics; ``padding`` defaults to k//2 on every side."""
    w = p[name + ".weight"]
    k = w.shape[0]
    pad = [(k // 2, k // 2)] * 2 if padding is None else padding
    ho = (x.shape[1] + pad[0][0] + pad[0][1] - k) // stride + 1
    wo = (x.shape[2] + pad[1][0] + pad[1][1] - k) // stride + 1
    if ho * wo <= SMALL_CONV_PIXELS:
        # XLA:CPU's convolution is ~100x slower on 2x2 outputs (ResNet18's last stage on
        # 64x64 Prophet views: 125 ms vs 1 ms): the same sum as one matmul over patches
        xp = jnp.pad(x, ((0, 0), tuple(pad[0]), tuple(pad[1]), (0, 0)))
        cols = [xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
                for i in range(k) for j in range(k)]
        y = jnp.matmul(jnp.concatenate(cols, axis=-1), w.reshape(-1, w.shape[-1]), precision=HI)
    else:
        y = jax.lax.conv_general_dilated(x, w, (stride, stride), pad,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                         precision=HI)
    b = p.get(name + ".bias")
    return y if b is None else y + b


def linear(p, name: str, x):
    return jnp.matmul(x, p[name + ".weight"], precision=HI) + p[name + ".bias"]


def group_norm(p, name: str, x, groups: int, eps: float):
    b, h, w, c = x.shape
    g = x.reshape(b, h, w, groups, c // groups)
    mean = jnp.mean(g, axis=(1, 2, 4), keepdims=True)
    var = jnp.mean(jnp.square(g - mean), axis=(1, 2, 4), keepdims=True)
    g = (g - mean) * jax.lax.rsqrt(var + eps)
    return g.reshape(b, h, w, c) * p[name + ".weight"] + p[name + ".bias"]


def layer_norm(p, name: str, x, eps: float = 1e-5):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * p[name + ".weight"] + p[name + ".bias"]


def batch_norm(p, name: str, x, eps: float = 1e-5):
    """Eval-mode BatchNorm2d from running statistics."""
    scale = p[name + ".weight"] * jax.lax.rsqrt(p[name + ".running_var"] + eps)
    return (x - p[name + ".running_mean"]) * scale + p[name + ".bias"]


def gelu(x):
    return jax.nn.gelu(x, approximate=False)


def swish(x):
    return x * jax.nn.sigmoid(x)


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of torch bilinear interpolation, align_corners=False."""
    m = np.zeros((n_out, n_in), dtype=np.float64)
    scale = n_in / n_out
    for i in range(n_out):
        src = max((i + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        m[i, i0] += 1.0 - lam
        m[i, i1] += lam
    return m.astype(np.float32)


def resize_bilinear(x, hw: tuple[int, int]):
    """NHWC bilinear resize matching F.interpolate(mode='bilinear', align_corners=False)."""
    _, h, w, _ = x.shape
    if (h, w) == tuple(hw):
        return x
    mh = jnp.asarray(bilinear_matrix(h, hw[0]))
    mw = jnp.asarray(bilinear_matrix(w, hw[1]))
    x = jnp.einsum("oh,bhwc->bowc", mh, x, precision=HI)
    return jnp.einsum("pw,bowc->bopc", mw, x, precision=HI)


def max_pool_3x3_s2(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                 ((0, 0), (1, 1), (1, 1), (0, 0)))


def avg_pool_2x2(x):
    b, h, w, c = x.shape
    return jnp.mean(x.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def resnet18(p, prefix: str, x):
    """torchvision resnet18 kept as ``nn.Sequential(*children[:-1])`` (keys ``0`` conv1,
    ``1`` bn1, ``4..7`` layer1..4), up to the global average pool: [B,H,W,3] -> [B,512]."""
    x = conv(p, prefix + "0", x, stride=2, padding=[(3, 3), (3, 3)])
    x = max_pool_3x3_s2(jax.nn.relu(batch_norm(p, prefix + "1", x)))
    for layer in range(1, 5):
        for blk in range(2):
            n = f"{prefix}{layer + 3}.{blk}."
            stride = 2 if (layer > 1 and blk == 0) else 1
            h = jax.nn.relu(batch_norm(p, n + "bn1", conv(p, n + "conv1", x, stride=stride)))
            h = batch_norm(p, n + "bn2", conv(p, n + "conv2", h))
            if n + "downsample.0.weight" in p:
                x = batch_norm(p, n + "downsample.1",
                               conv(p, n + "downsample.0", x, stride=stride, padding=[(0, 0)] * 2))
            x = jax.nn.relu(x + h)
    return jnp.mean(x, axis=(1, 2))
