"""Gemma as a mixture of experts that share every attention layer (openpi layout).

Expert 0 is the PaliGemma LLM (prefix: images + prompt), expert 1 the action
expert (suffix). Each expert owns its q/kv/out projections, norms and MLP; the
experts' tokens are concatenated for attention. Weights are stacked over depth
(openpi's `nn.scan` layout, e.g. `layers/attn/q_einsum/w [depth, N, D, H]`) and
the forward pass scans over them, so compile time does not grow with depth.
Names of expert i > 0 carry the suffix `_i`.
"""

from __future__ import annotations

import dataclasses

import flax.nnx as nnx
import jax
import jax.numpy as jnp

from restac_ros.model import initializers as _init

_NEG_INF = -2.3819763e38  # large finite negative (as in big_vision) keeps softmax NaN-free


@dataclasses.dataclass(frozen=True)
class GemmaConfig:
    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int


VARIANTS: dict[str, GemmaConfig] = {
    "gemma_2b": GemmaConfig(2048, 18, 16_384, 8, 1, 256),
    "gemma_300m": GemmaConfig(1024, 18, 4096, 8, 1, 256),
    "dummy": GemmaConfig(64, 4, 128, 8, 1, 16),
}


def get_config(variant: str) -> GemmaConfig:
    if variant not in VARIANTS:
        raise ValueError(f"unknown gemma variant {variant!r}; known: {sorted(VARIANTS)}")
    return VARIANTS[variant]


def _sfx(i: int) -> str:
    return "" if i == 0 else f"_{i}"


def _normal(rngs: nnx.Rngs, shape, fan_in: int) -> nnx.Param:
    return nnx.Param(_init.normal(rngs.params(), shape, fan_in**-0.5))


def _norm_params(rngs, depth, width, cond_width, adarms):
    """RMSNorm: `scale` (zero init, used as 1+scale); adaRMSNorm: zero-init Dense_0 on the cond."""
    lead = (depth,) if depth else ()
    if not adarms:
        return nnx.Dict(scale=nnx.Param(jnp.zeros((*lead, width))))
    dense = nnx.Dict(
        kernel=nnx.Param(jnp.zeros((*lead, cond_width, 3 * width))),
        bias=nnx.Param(jnp.zeros((*lead, 3 * width))),
    )
    return nnx.Dict(Dense_0=dense)


def rms_norm(x, p, cond):
    """x [B,T,D]; cond [B,C] or None. Returns (normed, residual gate or None)."""
    var = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
    normed = x.astype(jnp.float32) * jax.lax.rsqrt(var + 1e-6)
    if "scale" in p:
        return (normed * (1 + p["scale"].astype(jnp.float32))).astype(x.dtype), None
    mod = cond.astype(jnp.float32) @ p["Dense_0"]["kernel"].astype(jnp.float32)
    mod = mod + p["Dense_0"]["bias"].astype(jnp.float32)
    scale, shift, gate = jnp.split(mod[:, None, :], 3, axis=-1)
    return (normed * (1 + scale) + shift).astype(x.dtype), gate.astype(x.dtype)


def apply_rope(x, positions, max_wavelength: float = 10_000.0):
    """x [B,T,N,H], positions int [B,T]."""
    half = x.shape[-1] // 2
    timescale = max_wavelength ** ((2.0 / x.shape[-1]) * jnp.arange(half, dtype=jnp.float32))
    radians = (positions[..., None].astype(jnp.float32) / timescale)[..., None, :]
    sin, cos = jnp.sin(radians), jnp.cos(radians)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def _gated_residual(x, y, gate):
    return x + y if gate is None else x + y * gate


class Gemma(nnx.Module):
    """`PaliGemma/llm`: embedder, scanned `layers`, per-expert `final_norm{_i}`."""

    def __init__(self, configs, *, adarms, vocab_size: int, dtype: str, rngs: nnx.Rngs):
        if len({(c.depth, c.num_heads, c.num_kv_heads, c.head_dim) for c in configs}) != 1:
            raise ValueError("experts must agree on depth, heads, kv heads and head_dim")
        self.configs = tuple(configs)
        self.adarms = tuple(adarms)
        self.dtype = jnp.dtype(dtype)
        c0 = configs[0]
        emb = _init.normal(rngs.params(), (vocab_size, c0.width), 1.0)
        self.embedder = nnx.Dict(input_embedding=nnx.Param(emb))
        d = c0.depth
        attn, layers, final = {}, {}, {}
        for i, c in enumerate(configs):
            s = _sfx(i)
            n, k, h, w = c.num_heads, c.num_kv_heads, c.head_dim, c.width
            attn[f"q_einsum{s}"] = nnx.Dict(w=_normal(rngs, (d, n, w, h), w))
            attn[f"kv_einsum{s}"] = nnx.Dict(w=_normal(rngs, (d, 2, k, w, h), w))
            attn[f"attn_vec_einsum{s}"] = nnx.Dict(w=_normal(rngs, (d, n, h, w), n * h))
            layers[f"pre_attention_norm{s}"] = _norm_params(rngs, d, w, w, adarms[i])
            layers[f"pre_ffw_norm{s}"] = _norm_params(rngs, d, w, w, adarms[i])
            layers[f"mlp{s}"] = nnx.Dict(
                gating_einsum=_normal(rngs, (d, 2, w, c.mlp_dim), w),
                linear=_normal(rngs, (d, c.mlp_dim, w), c.mlp_dim),
            )
            final[f"final_norm{s}"] = _norm_params(rngs, 0, w, w, adarms[i])
        self.layers = nnx.Dict(attn=nnx.Dict(**attn), **layers)
        for name, p in final.items():
            setattr(self, name, p)

    def embed(self, tokens):
        """tokens int [B,T] -> [B,T,width0] scaled by sqrt(width) (Gemma convention)."""
        table = self.embedder["input_embedding"][...]
        x = jnp.take(table, tokens, axis=0).astype(self.dtype)
        return x * jnp.sqrt(self.configs[0].width).astype(self.dtype)

    def __call__(self, xs, *, mask, positions, kv_cache=None, adarms_cond=None):
        """Run the experts jointly.

        xs: per expert [B,T_i,D_i] or None (expert absent in this call).
        mask: bool [B, sum T_i, S] with S = cached length + sum T_i.
        positions: int [B, sum T_i]. kv_cache: (k, v) each [depth,B,S_cache,K,H].
        Returns (per-expert outputs after final norm (None where absent), (k, v)).
        """
        adarms_cond = adarms_cond or [None] * len(xs)
        params = nnx.to_pure_dict(nnx.state(self.layers))
        xs = [None if x is None else x.astype(self.dtype) for x in xs]

        def layer(carry, scanned):
            p, cache = scanned
            return self._block(carry, p, cache, mask, positions, adarms_cond)

        xs, new_cache = jax.lax.scan(layer, xs, (params, kv_cache))
        outs = []
        for i, x in enumerate(xs):
            if x is None:
                outs.append(None)
                continue
            p = nnx.to_pure_dict(nnx.state(getattr(self, f"final_norm{_sfx(i)}")))
            outs.append(rms_norm(x, p, adarms_cond[i])[0])
        return outs, new_cache

    def _block(self, xs, p, cache, mask, positions, conds):
        c0 = self.configs[0]
        normed, gates = [], []
        for i, x in enumerate(xs):
            n, g = (None, None) if x is None else rms_norm(
                x, p[f"pre_attention_norm{_sfx(i)}"], conds[i])
            normed.append(n)
            gates.append(g)
        qs, ks, vs, lens = [], [], [], []
        for i, x in enumerate(normed):
            if x is None:
                lens.append(0)
                continue
            a = p["attn"]
            qs.append(jnp.einsum("BTD,NDH->BTNH", x, a[f"q_einsum{_sfx(i)}"]["w"].astype(x.dtype)))
            kv = jnp.einsum("BSD,CKDH->CBSKH", x, a[f"kv_einsum{_sfx(i)}"]["w"].astype(x.dtype))
            ks.append(kv[0])
            vs.append(kv[1])
            lens.append(x.shape[1])
        q = apply_rope(jnp.concatenate(qs, axis=1), positions) * c0.head_dim**-0.5
        k = apply_rope(jnp.concatenate(ks, axis=1), positions)
        v = jnp.concatenate(vs, axis=1)
        if cache is not None:
            k = jnp.concatenate([cache[0], k], axis=1)
            v = jnp.concatenate([cache[1], v], axis=1)
        b, t, nh, hd = q.shape
        kh, g, s = c0.num_kv_heads, nh // c0.num_kv_heads, k.shape[1]
        # Multi-query attention as [B,K] batched matmuls over the G*T query rows (a layout
        # CPU and GPU dot kernels handle well).
        q = q.reshape(b, t, kh, g, hd).transpose(0, 2, 3, 1, 4).reshape(b, kh, g * t, hd)
        kt, vt = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
        logits = jnp.einsum("BKQH,BKSH->BKQS", q, kt, preferred_element_type=jnp.float32)
        logits = jnp.where(mask[:, None, None, :, :], logits.reshape(b, kh, g, t, s), _NEG_INF)
        probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype).reshape(b, kh, g * t, s)
        enc = jnp.einsum("BKQS,BKSH->BKQH", probs, vt).reshape(b, kh, g, t, hd)
        enc = enc.transpose(0, 3, 1, 2, 4).reshape(b, t, nh, hd)
        out, start = [], 0
        for i, x in enumerate(xs):
            if x is None:
                out.append(None)
                continue
            e = enc[:, start : start + lens[i]]
            start += lens[i]
            w = p["attn"][f"attn_vec_einsum{_sfx(i)}"]["w"].astype(x.dtype)
            y = jnp.einsum("BTNH,NHD->BTD", e, w)
            x = _gated_residual(x, y, gates[i])
            h, g = rms_norm(x, p[f"pre_ffw_norm{_sfx(i)}"], conds[i])
            mp = p[f"mlp{_sfx(i)}"]
            gate_up = jnp.einsum("BTD,CDF->CBTF", h, mp["gating_einsum"].astype(h.dtype))
            y = jnp.einsum("BTF,FD->BTD", jax.nn.gelu(gate_up[0]) * gate_up[1],
                           mp["linear"].astype(h.dtype))
            out.append(_gated_residual(x, y, g))
        return out, (k, v)
