"""Fixtures for the core tests: a tiny sentencepiece model and openpi-format norm stats."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

CORPUS = [
    "pick up the cube",
    "place the cube on the plate",
    "insert the peg into the hole",
    "wipe the table with the sponge",
    "open the drawer and close it",
    "press the button gently",
    "grasp the red block",
    "push the blue block to the left",
] * 8

STATE_DIM = 8


@pytest.fixture(scope="session")
def spm_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48-piece unigram sentencepiece model trained offline on a toy corpus."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
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
    path = tmp_path_factory.mktemp("spm") / "tokenizer.model"
    path.write_bytes(buf.getvalue())
    return path


def norm_stats_json() -> dict:
    """openpi norm_stats.json content: 8-dim state and actions."""
    state = {
        "mean": [0.1 * i for i in range(STATE_DIM)],
        "std": [0.5 + 0.1 * i for i in range(STATE_DIM)],
        "q01": [-1.0 - 0.1 * i for i in range(STATE_DIM)],
        "q99": [1.0 + 0.2 * i for i in range(STATE_DIM)],
    }
    actions = {
        "mean": [0.05 * i for i in range(STATE_DIM)],
        "std": [0.2 + 0.05 * i for i in range(STATE_DIM)],
        "q01": [-0.5] * STATE_DIM,
        "q99": [0.5 + 0.1 * i for i in range(STATE_DIM)],
    }
    return {"norm_stats": {"state": state, "actions": actions}}


@pytest.fixture()
def norm_stats_path(tmp_path: Path) -> Path:
    path = tmp_path / "assets" / "sample" / "norm_stats.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(norm_stats_json()))
    return path


def as_array(key: str, field: str) -> np.ndarray:
    return np.asarray(norm_stats_json()["norm_stats"][key][field], dtype=np.float64)
