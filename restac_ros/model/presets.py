"""Named model configs: the published models as `Pi0ResTacConfig`s.

- `fork_restac()`: the ResTacVLA fork's `Pi0_ResTac` (Awilekong/openpi,
  `models/pi0_restac.py`), exactly: pi0.5, `project_vq` q_event(64) -> fusion_dim,
  `tactile_to_vlm_proj` -> VLM width, `fusion_self_attn` at the VLM width over the
  UNMASKED prefix, the fork's NecessityGate (scalar params) or LearnableGate (`proj`).
- `fork_token_in_ae()`: the fork's `Pi0_ResTac_TokenInAE`.
- `openpi_pi0(pi05=...)`: openpi's own `Pi0` (no tactile params).

Names differ between the fork and us: the fork's `fusion_dim` is `project_vq`'s
output width (our `tactile_encoder_dim`); our `fusion_dim` is the attention width of
our own fusions. `config_from_fork_fields` maps the fork's config fields.
"""

from __future__ import annotations

from collections.abc import Mapping

from restac_ros.model.config import Pi0ResTacConfig

_FORK_BASE = dict(
    backbone="pi05", paligemma_variant="gemma_2b", action_expert_variant="gemma_300m",
    vision_variant="So400m/14", action_dim=32, action_horizon=50, max_token_len=200,
    tactile_encoder_mode="vqvae", q_event_dim=64, use_sparse_loss=False,
    sparse_loss_weight=0.01,
)
_FORK_GATES = {"necessity": "fork_necessity", "learnable": "fork_learnable"}


def fork_restac(**overrides) -> Pi0ResTacConfig:
    """The fork's Pi0_ResTac with its defaults (fusion_dim 512, 8 heads, necessity gate)."""
    base = dict(_FORK_BASE, tactile_encoder_dim=512, num_fusion_heads=8,
                gate="fork_necessity", fusion="fork_prefix_self_attn", use_gate=True)
    return Pi0ResTacConfig(**{**base, **overrides})


def fork_token_in_ae(**overrides) -> Pi0ResTacConfig:
    """The fork's Pi0_ResTac_TokenInAE (tactile_token_proj, default_tactile_embedding)."""
    base = dict(_FORK_BASE, gate="fork_necessity", fusion="fork_token_in_ae")
    return Pi0ResTacConfig(**{**base, **overrides})


def openpi_pi0(*, pi05: bool = False, **overrides) -> Pi0ResTacConfig:
    """openpi's Pi0 (pi05=True: pi0.5) with openpi's defaults; no tactile branch."""
    base = dict(backbone="pi05" if pi05 else "pi0", paligemma_variant="gemma_2b",
                action_expert_variant="gemma_300m", vision_variant="So400m/14",
                action_dim=32, action_horizon=50, use_tactile=False)
    return Pi0ResTacConfig(**{**base, **overrides})


# The fork's Pi0_ResTacConfig / Pi0_ResTac_TokenInAEConfig field -> ours.
_FORK_FIELDS = {
    "paligemma_variant": "paligemma_variant", "action_expert_variant": "action_expert_variant",
    "action_dim": "action_dim", "action_horizon": "action_horizon",
    "max_token_len": "max_token_len", "dtype": "dtype",
    "fusion_dim": "tactile_encoder_dim", "num_cross_attn_heads": "num_fusion_heads",
    "use_sparse_loss": "use_sparse_loss", "sparse_loss_weight": "sparse_loss_weight",
    "use_gate": "use_gate", "gate_type": "gate",
    "residual_vqvae_checkpoint": "residual_vqvae_checkpoint",
}
# Fields with no effect on the model's function (the fork never applies this dropout).
_FORK_IGNORED = {"cross_attn_dropout"}


def config_from_fork_fields(fields: Mapping, *, token_in_ae: bool = False,
                            **overrides) -> Pi0ResTacConfig:
    """The fork's model config fields (e.g. from its TrainConfig) -> our config."""
    unknown = sorted(set(fields) - set(_FORK_FIELDS) - _FORK_IGNORED)
    if unknown:
        raise ValueError(f"unknown ResTacVLA config fields: {unknown}")
    ours = {}
    for k, v in fields.items():
        if k in _FORK_IGNORED:
            continue
        if k == "gate_type":
            if v not in _FORK_GATES:
                raise ValueError(f"gate_type {v!r}: the fork has 'necessity' or 'learnable'")
            v = _FORK_GATES[v]
        ours[_FORK_FIELDS[k]] = v
    if token_in_ae:
        for k in ("tactile_encoder_dim", "num_fusion_heads", "use_gate"):
            ours.pop(k, None)  # Pi0_ResTac_TokenInAEConfig has none of these
        return fork_token_in_ae(**{**ours, **overrides})
    return fork_restac(**{**ours, **overrides})


PRESETS = {
    "fork_restac": fork_restac,
    "fork_token_in_ae": fork_token_in_ae,
    "openpi_pi0": lambda **kw: openpi_pi0(pi05=False, **kw),
    "openpi_pi05": lambda **kw: openpi_pi0(pi05=True, **kw),
}


def preset(name: str, **overrides) -> Pi0ResTacConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name](**overrides)
