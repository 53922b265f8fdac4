"""A tiny random-init Pi0_ResTac policy checkpoint for node tests (smallest variants)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import sentencepiece as spm

JOINTS = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7", "gripper"]
HORIZON = 10
ACTION_DIM = 8
CORPUS = [
    "pick up the cube",
    "place the cube on the plate",
    "insert the peg into the hole",
    "wipe the table with the sponge",
    "open the drawer and close it",
    "press the button gently",
    "grasp the red block",
    "push the blue block to the left",
]


def write_tokenizer(path: Path) -> Path:
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 8),
        model_writer=buf,
        vocab_size=48,
        model_type="unigram",
        character_coverage=1.0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        pad_id=0,
        minloglevel=2,
    )
    path.write_bytes(buf.getvalue())
    return path


def make_tiny_checkpoint(directory: Path, seed: int = 0) -> Path:
    """Writes a checkpoint with RestacPolicy's own save function; returns its path."""
    import jax

    from restac_ros.model.config import Pi0ResTacConfig
    from restac_ros.model.norm_stats import NormStats
    from restac_ros.model.policy import save_policy_checkpoint

    cfg = Pi0ResTacConfig(
        paligemma_variant="dummy",
        action_expert_variant="dummy",
        vision_variant="micro",
        action_dim=ACTION_DIM,
        action_horizon=HORIZON,
        max_token_len=16,
        vocab_size=64,
        fusion_dim=32,
        num_fusion_heads=2,
    )
    model = cfg.create(jax.random.key(seed))
    stats = {
        "state": NormStats(np.zeros(8, np.float32), np.ones(8, np.float32)),
        "actions": NormStats(np.zeros(8, np.float32), np.full(8, 0.1, np.float32)),
    }
    tokenizer = write_tokenizer(directory.parent / "tokenizer.model")
    meta = {
        "action_space": "joint_position",
        "action_names": JOINTS,
        "dt": 1.0 / 15.0,
        "camera_slots": ["base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"],
        "asset_id": "test",
    }
    return save_policy_checkpoint(directory, model, cfg, stats, tokenizer, meta)
