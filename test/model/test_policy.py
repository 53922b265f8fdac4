"""Policy checkpoint directory: write with save_policy_checkpoint, load with RestacPolicy."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from restac_ros.model import norm_stats as ns
from restac_ros.model.policy import (
    RestacPolicy,
    load_policy_config,
    save_policy_checkpoint,
    stack_observations,
)
from test.model.conftest import make_obs
from test.model.test_tokenizer import sp_model  # noqa: F401  (session fixture)

META = {"action_space": "joint_position", "action_names": [f"joint{i}" for i in range(1, 8)]
        + ["gripper"], "dt": 1 / 15, "camera_slots": ["base_0_rgb"], "asset_id": "sample"}


@pytest.fixture(scope="module")
def stats():
    return {k: ns.NormStats(np.zeros(8, np.float32), np.ones(8, np.float32),
                            -np.ones(8, np.float32), np.ones(8, np.float32))
            for k in ("state", "actions")}


@pytest.fixture(scope="module")
def ckpt_dir(pi0_model, stats, sp_model, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("policy") / "ckpt"
    save_policy_checkpoint(d, pi0_model, pi0_model.config, stats, sp_model, META)
    return d


def test_layout(ckpt_dir, pi0_model):
    for rel in ("restac_config.json", "params", "assets/sample/norm_stats.json",
                "assets/tokenizer.model", "policy_meta.json"):
        assert (ckpt_dir / rel).exists(), rel
    assert json.loads((ckpt_dir / "policy_meta.json").read_text())["asset_id"] == "sample"
    assert load_policy_config(ckpt_dir) == pi0_model.config
    with pytest.raises(FileExistsError):
        save_policy_checkpoint(ckpt_dir, pi0_model, pi0_model.config, {}, "x", {})


def test_loaded_policy_reproduces_the_model(ckpt_dir, pi0_model):
    loaded = RestacPolicy.from_checkpoint(ckpt_dir, num_steps=4)
    assert loaded.meta["action_names"][-1] == "gripper"
    assert loaded.tokenizer.max_len == pi0_model.config.max_token_len
    np.testing.assert_array_equal(loaded.norm_stats["actions"].std, np.ones(8))
    obs = make_obs(pi0_model.config, 2, seed=3)
    want = RestacPolicy(pi0_model, num_steps=4).infer(obs, seed=7)
    got = loaded.infer(obs, seed=7)
    np.testing.assert_array_equal(got.actions_norm, want.actions_norm)
    np.testing.assert_array_equal(got.diagnostics.gate, want.diagnostics.gate)


def test_infer_batch_matches_one_call_per_observation(pi0_model):
    """Offline evaluation batches ticks: same chunks as one infer per tick (same seeds)."""
    policy = RestacPolicy(pi0_model, num_steps=4)
    singles = [make_obs(pi0_model.config, 1, seed=s, tactile=s != 2) for s in range(3)]
    seeds = [11, 2**31 - 5, 11]  # same seed twice: same noise, other observation
    batch = policy.infer_batch(stack_observations(singles), seeds)
    assert batch.actions_norm.shape[0] == 3
    for i, (obs, seed) in enumerate(zip(singles, seeds, strict=True)):
        one = policy.infer(obs, seed)
        np.testing.assert_allclose(batch.actions_norm[i], one.actions_norm[0], atol=1e-5)
        np.testing.assert_allclose(batch.diagnostics.gate[i], one.diagnostics.gate[0],
                                   atol=1e-6)
    assert not np.allclose(batch.actions_norm[0], batch.actions_norm[2])
    with pytest.raises(ValueError, match="one seed per observation"):
        policy.infer_batch(stack_observations(singles), seeds[:2])
    with pytest.raises(ValueError, match=r"\[0, 2\^32\)"):
        policy.infer(singles[0], -1)
    with pytest.raises(ValueError, match=r"\[0, 2\^32\)"):
        policy.infer(singles[0], 2**32)


def test_bf16_weights_option(ckpt_dir, pi0_model):
    policy = RestacPolicy.from_checkpoint(ckpt_dir, dtype="bfloat16", num_steps=2)
    assert policy.config.dtype == "bfloat16"
    emb = policy.state["PaliGemma"]["llm"]["embedder"]["input_embedding"][...]
    assert str(emb.dtype) == "bfloat16"
    out = policy.infer(make_obs(pi0_model.config, 1), seed=0)
    assert out.actions_norm.dtype == np.float32 and np.all(np.isfinite(out.actions_norm))


def test_missing_pieces_are_clear_errors(ckpt_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="restac_config.json"):
        RestacPolicy.from_checkpoint(tmp_path)
    import shutil

    broken = tmp_path / "ckpt"
    shutil.copytree(ckpt_dir, broken)
    (broken / "assets" / "sample" / "norm_stats.json").unlink()
    with pytest.raises(FileNotFoundError, match="norm stats file not found"):
        RestacPolicy.from_checkpoint(broken)


def test_config_json_round_trip(pi0_model):
    cfg = dataclasses.replace(pi0_model.config, gate="learnable", backbone="pi05")
    assert type(cfg).from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown Pi0ResTacConfig fields"):
        type(cfg).from_json('{"bogus": 1}')
