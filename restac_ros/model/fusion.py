"""Tactile fusions: turn (prefix_out, tactile features, gate) into a correction
[B, H, expert_width] that is added to the action expert's output before
`action_out_proj`. Neither fusion looks at the noisy actions, so the model
computes the correction once per observation, outside the Euler loop.

- two_stage: stage 1, tactile tokens (`tactile_to_vlm_proj`) attend to the
  projected VLM prefix (`fusion_prefix_proj`, `fusion_cross_attn_1`): "what was
  touched"; stage 2, one learned query per action step
  (`fusion_action_queries`) attends to the enriched tactile tokens
  (`fusion_cross_attn_2`): "how to correct". Output `fusion_out_proj`, times gate.
  (The published code's stage 2 queries the noisy-action expert output; here
  the action-step queries are learned so the correction stays per-observation.)
- prefix_self_attn (published ResTacVLA, ForceVLA style): concat(prefix_out,
  tactile token projected to the VLM width by `tactile_to_vlm_proj`) ->
  `fusion_self_attn` -> last `action_horizon` tokens -> times gate.
"""

from __future__ import annotations

import flax.nnx as nnx
import jax
import jax.numpy as jnp

SCOPE = "tactile_fusion"  # named scope the jaxpr test looks for


def _mha(heads, d_in, d_qkv, d_out, rngs):
    return nnx.MultiHeadAttention(num_heads=heads, in_features=d_in, qkv_features=d_qkv,
                                  out_features=d_out, decode=False, deterministic=True,
                                  rngs=rngs)


def _key_mask(key_valid, n_queries):
    """key_valid bool [B,S] -> [B,1,T,S] for nnx.MultiHeadAttention."""
    return jnp.broadcast_to(key_valid[:, None, None, :],
                            (key_valid.shape[0], 1, n_queries, key_valid.shape[1]))


class TwoStageFusion(nnx.Module):
    def __init__(self, *, feature_dim, llm_width, expert_width, fusion_dim, heads,
                 horizon, num_tokens, rngs: nnx.Rngs):
        self.num_tokens, self.fusion_dim = num_tokens, fusion_dim
        self.tactile_to_vlm_proj = nnx.Linear(feature_dim, num_tokens * fusion_dim, rngs=rngs)
        self.fusion_prefix_proj = nnx.Linear(llm_width, fusion_dim, rngs=rngs)
        self.fusion_cross_attn_1 = _mha(heads, fusion_dim, fusion_dim, fusion_dim, rngs)
        self.fusion_cross_attn_2 = _mha(heads, fusion_dim, fusion_dim, fusion_dim, rngs)
        queries = jax.random.normal(rngs.params(), (horizon, fusion_dim)) * 0.02
        self.fusion_action_queries = nnx.Param(queries)
        self.fusion_out_proj = nnx.Linear(fusion_dim, expert_width, rngs=rngs)

    def __call__(self, prefix_out, prefix_mask, features, gate):
        """prefix_out [B,P,Dv]; prefix_mask bool [B,P]; features [B,E]; gate [B,1] -> [B,H,De]."""
        b = features.shape[0]
        tac = self.tactile_to_vlm_proj(features).reshape(b, self.num_tokens, self.fusion_dim)
        ctx = self.fusion_prefix_proj(prefix_out.astype(jnp.float32))
        tac = tac + self.fusion_cross_attn_1(tac, ctx, ctx,
                                             mask=_key_mask(prefix_mask, self.num_tokens))
        q = jnp.broadcast_to(self.fusion_action_queries[...], (b, *self.fusion_action_queries.shape))
        out = self.fusion_cross_attn_2(q, tac, tac)
        return self.fusion_out_proj(out) * gate[:, :, None]


class PrefixSelfAttnFusion(nnx.Module):
    def __init__(self, *, feature_dim, llm_width, expert_width, fusion_dim, heads,
                 horizon, rngs: nnx.Rngs):
        self.horizon = horizon
        self.tactile_to_vlm_proj = nnx.Linear(feature_dim, llm_width, rngs=rngs)
        self.fusion_self_attn = _mha(heads, llm_width, fusion_dim, expert_width, rngs)

    def __call__(self, prefix_out, prefix_mask, features, gate):
        """prefix_out [B,P,Dv]; prefix_mask bool [B,P]; features [B,E]; gate [B,1] -> [B,H,De]."""
        if prefix_out.shape[1] + 1 < self.horizon:
            raise ValueError(f"prefix_self_attn needs >= {self.horizon - 1} prefix tokens")
        tac = self.tactile_to_vlm_proj(features)[:, None, :]
        x = jnp.concatenate([prefix_out.astype(jnp.float32), tac], axis=1)
        valid = jnp.concatenate([prefix_mask, jnp.ones((x.shape[0], 1), bool)], axis=1)
        out = self.fusion_self_attn(x, x, x, mask=_key_mask(valid, x.shape[1]))
        return out[:, -self.horizon :] * gate[:, :, None]
