"""`Pi0ResTacConfig`: everything needed to build a Pi0_ResTac model."""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

import jax
import numpy as np

from restac_ros.model import gemma, siglip
from restac_ros.model.observation import IMAGE_KEYS, IMAGE_SIZE, TACTILE_SIZE, Observation

PALIGEMMA_VOCAB_SIZE = 257_152
# Ours: factorized, necessity ((1,) params), learnable (`linear`). The published fork's:
# fork_necessity (scalar params, scale softplus(s)+1e-6), fork_learnable (`proj`).
GATES = ("factorized", "necessity", "learnable", "fork_necessity", "fork_learnable")
# Ours: two_stage, prefix_self_attn (masks padded prefix tokens, attention width
# fusion_dim). The fork's: fork_prefix_self_attn (Pi0_ResTac: attention width = VLM
# width, attends over padded prompt tokens too), fork_token_in_ae (Pi0_ResTac_TokenInAE).
FUSIONS = ("two_stage", "prefix_self_attn", "fork_prefix_self_attn", "fork_token_in_ae")


@dataclasses.dataclass(frozen=True)
class Pi0ResTacConfig:
    backbone: Literal["pi0", "pi05"] = "pi0"
    paligemma_variant: str = "gemma_2b"
    action_expert_variant: str = "gemma_300m"
    vision_variant: str = "So400m/14"
    # Compute dtype of the VLM, vision tower and action expert ("bfloat16" on GPU);
    # norms, softmax and the tactile branch stay float32.
    dtype: str = "float32"
    action_dim: int = 32
    action_horizon: int = 50
    max_token_len: int | None = None  # None -> 48 (pi0) / 200 (pi05)
    vocab_size: int = PALIGEMMA_VOCAB_SIZE
    # Tactile residual branch.
    use_tactile: bool = True  # False -> the plain backbone (no tactile params at all)
    residual_vqvae_checkpoint: str | None = None
    # "auto": the frozen VQ-VAE when `residual_vqvae_checkpoint` is set, else the small
    # trainable placeholder net. "vqvae": `project_vq` on the VQ-VAE's q_event even
    # without the VQ-VAE loaded (then q_event/logvar must be given to sample_actions).
    tactile_encoder_mode: Literal["auto", "placeholder", "vqvae"] = "auto"
    q_event_dim: int = 64  # the VQ-VAE's q_event width (the fork hard-codes 64)
    tactile_encoder_dim: int = 64  # project_vq's output width (the fork's `fusion_dim`)
    fusion_dim: int = 512  # attention width of our fusions (the fork's is the VLM width)
    num_fusion_heads: int = 8  # the fork's `num_cross_attn_heads`
    num_tactile_tokens: int = 4  # two_stage only
    gate: Literal["factorized", "necessity", "learnable", "fork_necessity",
                  "fork_learnable"] = "factorized"
    fusion: Literal["two_stage", "prefix_self_attn", "fork_prefix_self_attn",
                    "fork_token_in_ae"] = "prefix_self_attn"
    use_gate: bool = True  # False: the correction is not multiplied by the gate (fork ablation)
    use_sparse_loss: bool = True
    sparse_loss_weight: float = 0.01

    def __post_init__(self):
        if self.backbone not in ("pi0", "pi05"):
            raise ValueError(f"backbone must be pi0 or pi05, got {self.backbone!r}")
        if self.max_token_len is None:
            object.__setattr__(self, "max_token_len", 48 if self.backbone == "pi0" else 200)
        gemma.get_config(self.paligemma_variant)
        gemma.get_config(self.action_expert_variant)
        siglip.get_config(self.vision_variant)
        if self.gate not in GATES:
            raise ValueError(f"unknown gate {self.gate!r}; known: {GATES}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; known: {FUSIONS}")
        if self.tactile_encoder_mode not in ("auto", "placeholder", "vqvae"):
            raise ValueError(f"unknown tactile_encoder_mode {self.tactile_encoder_mode!r}")
        if self.fusion.startswith("fork_") and self.use_tactile:
            if self.tactile_mode == "placeholder":
                raise ValueError(f"fusion {self.fusion!r} runs on the VQ-VAE's q_event: "
                                 "tactile_encoder_mode must be 'vqvae' (or 'auto' with a "
                                 "residual_vqvae_checkpoint)")
            if self.fusion == "fork_token_in_ae" and not self.pi05:
                raise ValueError("fusion 'fork_token_in_ae' is a pi0.5 model (backbone pi05)")
        if not self.use_gate and self.fusion != "fork_prefix_self_attn":
            raise ValueError("use_gate=False is the fork's ablation of fork_prefix_self_attn")

    @property
    def tactile_mode(self) -> str:
        """"placeholder" or "vqvae" (resolves "auto")."""
        if self.tactile_encoder_mode != "auto":
            return self.tactile_encoder_mode
        return "vqvae" if self.residual_vqvae_checkpoint else "placeholder"

    @property
    def pi05(self) -> bool:
        return self.backbone == "pi05"

    def create(self, rng: jax.Array):
        """Builds the model with freshly initialised params."""
        import flax.nnx as nnx

        from restac_ros.model.pi0_restac import Pi0ResTac

        return Pi0ResTac(self, rngs=nnx.Rngs(rng))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Pi0ResTacConfig:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Pi0ResTacConfig fields: {unknown}")
        return cls(**data)

    def fake_obs(self, batch_size: int = 1, *, tactile: bool = True) -> Observation:
        """An all-zeros observation of the right shapes (warm-up, shape tests)."""
        b, (h, w), (th, tw) = batch_size, IMAGE_SIZE, TACTILE_SIZE
        return Observation(
            images={k: np.zeros((b, h, w, 3), np.float32) for k in IMAGE_KEYS},
            image_masks={k: np.ones((b,), bool) for k in IMAGE_KEYS},
            state=np.zeros((b, self.action_dim), np.float32),
            tokenized_prompt=np.zeros((b, self.max_token_len), np.int32),
            tokenized_prompt_mask=np.ones((b, self.max_token_len), bool),
            tactile_image=np.zeros((b, th, tw, 3), np.float32),
            tactile_mask=np.full((b,), tactile, bool),
            action_prev=np.zeros((b, self.action_dim), np.float32),
        )
