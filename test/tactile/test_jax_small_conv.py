"""jax_layers.conv's small-output path (patches @ weights) equals XLA's convolution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from restac_ros.tactile import jax_layers as jl

CASES = [  # h, w, c_in, c_out, kernel, stride, padding (None: k // 2 each side)
    (2, 2, 64, 32, 3, 1, None),  # ResNet18 layer4 on 64x64 views: the slow XLA case
    (4, 4, 16, 8, 3, 2, None),
    (1, 1, 8, 4, 3, 1, None),
    (4, 4, 8, 8, 1, 2, [(0, 0), (0, 0)]),  # 1x1 downsample
    (8, 8, 4, 4, 7, 2, [(3, 3), (3, 3)]),  # ResNet18 stem
    (5, 4, 6, 3, 4, 2, [(0, 1), (1, 0)]),  # asymmetric padding
    (16, 20, 8, 8, 3, 1, None),  # large output: XLA's path
]


@pytest.mark.parametrize("h,w,c,o,k,s,pad", CASES)
def test_conv_matches_xla_convolution(h, w, c, o, k, s, pad):
    rng = np.random.default_rng(h * 100 + k)
    x = jnp.asarray(rng.standard_normal((2, h, w, c)).astype(np.float32))
    p = {"a.weight": jnp.asarray(rng.standard_normal((k, k, c, o)).astype(np.float32)),
         "a.bias": jnp.asarray(rng.standard_normal(o).astype(np.float32))}
    ref = jax.lax.conv_general_dilated(
        x, p["a.weight"], (s, s), [(k // 2, k // 2)] * 2 if pad is None else pad,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=jl.HI) + p["a.bias"]
    y = jl.conv(p, "a", x, stride=s, padding=pad)
    assert y.shape == ref.shape
    np.testing.assert_allclose(np.asarray(y), np.asarray(ref), rtol=0,
                               atol=2e-6 * float(jnp.max(jnp.abs(ref))))
