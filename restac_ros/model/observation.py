"""The model's input: one batch of preprocessed observations (openpi layout)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

# Camera slots in the order the VQ-VAE Prophet expects its views.
IMAGE_KEYS: tuple[str, ...] = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
IMAGE_SIZE = (224, 224)  # (H, W) after letterboxing
TACTILE_SIZE = (128, 160)  # (H, W) the tactile encoder consumes
VQ_ACTION_DIM = 7  # action_prev width the published Prophet takes


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Observation:
    """Arrays may be numpy or jax; every leaf has the batch dimension first.

    images:        {slot: float32 [B, 224, 224, 3]} in [-1, 1]
    image_masks:   {slot: bool [B]} (False = camera missing, image is zeros)
    state:         float32 [B, action_dim], normalised, zero-padded
    tokenized_prompt:      int32 [B, max_token_len]
    tokenized_prompt_mask: bool [B, max_token_len]
    tactile_image: float32 [B, 128, 160, 3] in [-1, 1]
    tactile_mask:  bool [B] (False = no tactile input: zero features/gate/logvar)
    action_prev:   float32 [B, action_dim], state(t) - state(t - dt) in RAW joint
                   units (NOT normalised), zero-padded; t = newest joint stamp,
                   dt = ObservationSpec.action_prev_dt_s (default 1/15 s, one
                   control step). The VQ-VAE Prophet consumes [:, :7].
    """

    images: dict[str, jax.Array | np.ndarray]
    image_masks: dict[str, jax.Array | np.ndarray]
    state: jax.Array | np.ndarray
    tokenized_prompt: jax.Array | np.ndarray
    tokenized_prompt_mask: jax.Array | np.ndarray
    tactile_image: jax.Array | np.ndarray
    tactile_mask: jax.Array | np.ndarray
    action_prev: jax.Array | np.ndarray

    @property
    def batch_size(self) -> int:
        return int(self.state.shape[0])
