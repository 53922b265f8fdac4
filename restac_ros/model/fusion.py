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
- prefix_self_attn (ours, after the published ResTacVLA, ForceVLA style):
  concat(prefix_out, tactile token projected to the VLM width by
  `tactile_to_vlm_proj`) -> `fusion_self_attn` (attention width `fusion_dim`,
  padded prefix tokens masked out) -> last `action_horizon` tokens -> times gate.
- fork_prefix_self_attn (the published Pi0_ResTac, exactly): the same with the
  fork's shapes (attention width = the VLM width, nnx's default) and NO mask: the
  padded prompt tokens' outputs take part as keys and values (and as queries when
  the prompt is short: the last `action_horizon` rows may be padding). A
  checkpoint trained that way needs it. `use_gate=False` drops the gate (ablation).
- fork_token_in_ae (Pi0_ResTac_TokenInAE) is not a correction: see
  `surprise_token`; the model prepends it to the action expert's input.
"""

from __future__ import annotations

import flax.nnx as nnx
import jax.numpy as jnp

from restac_ros.model import initializers as _init

SCOPE = "tactile_fusion"  # named scope the jaxpr test looks for


def _kw(rngs):
    return dict(rngs=rngs, kernel_init=_init.lecun_normal())


def _mha(heads, d_in, d_qkv, d_out, rngs):
    return nnx.MultiHeadAttention(num_heads=heads, in_features=d_in, qkv_features=d_qkv,
                                  out_features=d_out, decode=False, deterministic=True,
                                  kernel_init=_init.lecun_normal(1),
                                  out_kernel_init=_init.lecun_normal(), rngs=rngs)


def _key_mask(key_valid, n_queries):
    """key_valid bool [B,S] -> [B,1,T,S] for nnx.MultiHeadAttention."""
    return jnp.broadcast_to(key_valid[:, None, None, :],
                        (key_valid.shape[0], 1, n_queries, key_valid.shape[1]))


# The fusion layers are attributes of the model itself (top-level names in the
# param tree, as in the published code), so these are init/apply function pairs.


def init_two_stage(m, *, feature_dim, llm_width, expert_width, fusion_dim, heads,
             horizon, num_tokens, rngs: nnx.Rngs):
    m.tactile_to_vlm_proj = nnx.Linear(feature_dim, num_tokens * fusion_dim, **_kw(rngs))
    m.fusion_prefix_proj = nnx.Linear(llm_width, fusion_dim, **_kw(rngs))
    m.fusion_cross_attn_1 = _mha(heads, fusion_dim, fusion_dim, fusion_dim, rngs)
    m.fusion_cross_attn_2 = _mha(heads, fusion_dim, fusion_dim, fusion_dim, rngs)
    queries = _init.normal(rngs.params(), (horizon, fusion_dim), 0.02)
    m.fusion_action_queries = nnx.Param(queries)
    m.fusion_out_proj = nnx.Linear(fusion_dim, expert_width, **_kw(rngs))



def two_stage(m, prefix_out, prefix_mask, features, gate, *, num_tokens):
    """prefix_out [B,P,Dv]; prefix_mask bool [B,P]; features [B,E]; gate [B,1] -> [B,H,De]."""
    b = features.shape[0]
    tac = m.tactile_to_vlm_proj(features).reshape(b, num_tokens, -1)
    ctx = m.fusion_prefix_proj(prefix_out.astype(jnp.float32))
    tac = tac + m.fusion_cross_attn_1(tac, ctx, ctx,
                                         mask=_key_mask(prefix_mask, num_tokens))
    q = jnp.broadcast_to(m.fusion_action_queries[...], (b, *m.fusion_action_queries.shape))
    out = m.fusion_cross_attn_2(q, tac, tac)
    return m.fusion_out_proj(out) * gate[:, :, None]


def init_prefix_self_attn(m, *, feature_dim, llm_width, expert_width, fusion_dim, heads,
                          rngs: nnx.Rngs):
    m.tactile_to_vlm_proj = nnx.Linear(feature_dim, llm_width, **_kw(rngs))
    m.fusion_self_attn = _mha(heads, llm_width, fusion_dim, expert_width, rngs)



def prefix_self_attn(m, prefix_out, prefix_mask, features, gate, *, horizon):
    """prefix_out [B,P,Dv]; prefix_mask bool [B,P]; features [B,E]; gate [B,1] -> [B,H,De]."""
    if prefix_out.shape[1] + 1 < horizon:
        raise ValueError(f"prefix_self_attn needs >= {horizon - 1} prefix tokens")
    tac = m.tactile_to_vlm_proj(features)[:, None, :]
    x = jnp.concatenate([prefix_out.astype(jnp.float32), tac], axis=1)
    valid = jnp.concatenate([prefix_mask, jnp.ones((x.shape[0], 1), bool)], axis=1)
    out = m.fusion_self_attn(x, x, x, mask=_key_mask(valid, x.shape[1]))
    return out[:, -horizon :] * gate[:, :, None]


def init_fork_prefix_self_attn(m, *, feature_dim, llm_width, expert_width, heads,
                               rngs: nnx.Rngs):
    m.tactile_to_vlm_proj = nnx.Linear(feature_dim, llm_width, **_kw(rngs))
    m.fusion_self_attn = _mha(heads, llm_width, llm_width, expert_width, rngs)


def fork_prefix_self_attn(m, prefix_out, features, gate, *, horizon, use_gate):
    """prefix_out [B,P,Dv]; features [B,E]; gate [B,1] -> [B,H,De]; no padding mask."""
    if prefix_out.shape[1] + 1 < horizon:
        raise ValueError(f"fork_prefix_self_attn needs >= {horizon - 1} prefix tokens")
    tac = m.tactile_to_vlm_proj(features)[:, None, :]
    x = jnp.concatenate([prefix_out, tac], axis=1)
    out = m.fusion_self_attn(x, x, x)[:, -horizon:]
    return out * gate[:, :, None] if use_gate else out


def init_token_in_ae(m, *, q_event_dim, expert_width, rngs: nnx.Rngs):
    m.tactile_token_proj = nnx.Linear(q_event_dim, expert_width, **_kw(rngs))
    m.default_tactile_embedding = nnx.Param(jnp.zeros((1, expert_width)))


def surprise_token(m, q_event, gate):
    """q_event [B,q]; gate [B,1] -> [B,1,De]: gate * tactile_token_proj(q_event) +
    (1 - gate) * default_tactile_embedding (the fork's formula, same order)."""
    token = m.tactile_token_proj(q_event)
    default = jnp.broadcast_to(m.default_tactile_embedding[...], token.shape)
    return (gate * token + (1 - gate) * default)[:, None, :]
