"""restac-train-policy: checkpoint layout, periodic training state, --resume continues exactly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from restac_ros.eval import train_policy
from restac_ros.sample_bag.writer import write_sample_bag

REPO = Path(__file__).resolve().parents[2]
TC = train_policy.TrainConfig(steps=3, batch_size=2, save_every=1, horizon=4)


@pytest.fixture(scope="module")
def train_bag(tmp_path_factory) -> Path:
    from restac_ros.eval.demo_checkpoint import enable_compile_cache

    enable_compile_cache(REPO / ".cache" / "jax")
    return write_sample_bag(tmp_path_factory.mktemp("train") / "ep", storage="sqlite3",
                            seconds=2.5, seed=11).path


def _params(ckpt: Path) -> dict:
    from flax import traverse_util

    from restac_ros.model.checkpoint import restore_params

    return traverse_util.flatten_dict(restore_params(ckpt / "params"), sep="/")


def test_train_writes_checkpoint_and_resume_continues_exactly(train_bag, tmp_path):
    from restac_ros.model.policy import RestacPolicy

    quiet = dict(progress=False, log=lambda *_: None)
    a = tmp_path / "a"
    # session 1 stops after step 2 of 3: training state saved, no checkpoint yet
    assert train_policy.train([train_bag], a, TC, stop_after=2, **quiet) is None
    state_file = tmp_path / "a.train" / "state.json"
    assert json.loads(state_file.read_text())["step"] == 2 and not a.exists()
    with np.load(tmp_path / "a.train" / "state.npz") as z:
        at2 = [z[k] for k in z.files]
    # session 2 resumes and finishes
    assert train_policy.train([train_bag], a, TC, resume=True, **quiet) == a
    assert json.loads(state_file.read_text())["step"] == 3
    for rel in ("restac_config.json", "policy_meta.json", "assets/tokenizer.model",
                "assets/restac_sample/norm_stats.json", "params"):
        assert (a / rel).exists(), rel
    stats = json.loads((a / "assets/restac_sample/norm_stats.json").read_text())["norm_stats"]
    assert len(stats["state"]["mean"]) == 8
    # per-step "actions" stats: one row of 8 per chunk step (horizon 4)
    assert np.shape(stats["actions"]["q99"]) == np.shape(stats["actions"]["std"]) == (4, 8)
    meta = json.loads((a / "policy_meta.json").read_text())
    assert meta["delta_action_mask"] == [True] * 7 + [False]
    # "actions" stats are over the relative (action - state) chunks: joints near zero
    assert np.abs(np.asarray(stats["actions"]["mean"])[:, :7]).max() < 0.5
    # and they grow along the chunk (later steps move further from the state)
    std = np.asarray(stats["actions"]["std"])[:, :7].mean(axis=1)
    assert std[-1] > std[0]
    with np.load(tmp_path / "a.train" / "state.npz") as z:
        at3 = [z[k] for k in z.files]
    assert sum(not np.array_equal(x, y) for x, y in zip(at2, at3, strict=True)) > len(at2) // 2

    # the same 3 steps in one session give the same weights
    b = tmp_path / "b"
    train_policy.train([train_bag], b, TC, **quiet)
    resumed, straight = _params(a), _params(b)
    assert resumed.keys() == straight.keys() and straight
    for k in straight:
        np.testing.assert_allclose(resumed[k], straight[k], rtol=1e-5, atol=1e-7, err_msg=k)
    policy = RestacPolicy.from_checkpoint(a)
    assert policy.config.action_horizon == 4 and policy.tokenizer is not None


def test_resume_refuses_other_config_and_existing_output(train_bag, tmp_path):
    out = tmp_path / "c"
    with pytest.raises(FileNotFoundError, match="no training state"):
        train_policy.train([train_bag], out, TC, resume=True, progress=False)
    (tmp_path / "c.train").mkdir()
    (tmp_path / "c.train" / "state.json").write_text(json.dumps(
        {"config_digest": "other", "data": "x", "step": 1}))
    with pytest.raises(ValueError, match="another config"):
        train_policy.train([train_bag], out, TC, resume=True, progress=False)
    out.mkdir()
    (out / "file").write_text("x")
    assert train_policy.main([str(train_bag), "--out", str(out), "-q"]) == 2


def test_vision_only_baseline_has_no_tactile_branch(train_bag, tmp_path):
    from restac_ros.model.policy import RestacPolicy

    out = tmp_path / "vision"
    assert train_policy.main([str(train_bag), "--out", str(out), "-q", "--steps", "2",
                              "--batch", "2", "--horizon", "4", "--no-tactile"]) == 0
    policy = RestacPolicy.from_checkpoint(out)
    assert not policy.config.use_tactile
    names = list(_params(out))
    assert names and not any("tactile" in n or "gate" in n or "fusion" in n for n in names)
    assert json.loads((out / "policy_meta.json").read_text())["training"]["use_tactile"] is False
    for bad in (dict(tactile_dropout=0.3), dict(center_gate_on_data=True),
                dict(vqvae_checkpoint="x.ckpt")):
        with pytest.raises(ValueError, match="use_tactile False"):
            train_policy.train([train_bag], tmp_path / "bad", dataclasses.replace(
                TC, use_tactile=False, **bad), progress=False)


def test_demo_cache_key_tracks_config_and_code(tmp_path):
    import dataclasses

    from restac_ros.eval import demo_checkpoint as dc

    key = dc.cache_key()
    assert key == dc.cache_key()
    assert dc.cache_key(dataclasses.replace(dc.DEMO_TRAIN, steps=7)) != key
    assert dc.cache_key(seeds=(9,)) != key
    assert key["code"] == dc.code_version()
    fake = tmp_path / "ckpt"
    fake.mkdir()
    assert not dc.is_current(fake, key)
    (fake / "restac_config.json").write_text("{}")
    (fake / dc.KEY_FILE).write_text(json.dumps({"key": {**key, "code": "older"}}))
    assert not dc.is_current(fake, key)
    (fake / dc.KEY_FILE).write_text(json.dumps({"key": key}))
    assert dc.is_current(fake, key)


def test_cached_demo_checkpoint_is_current(demo_checkpoint):
    from restac_ros.eval import demo_checkpoint as dc

    assert dc.is_current(demo_checkpoint, dc.cache_key())
    meta = json.loads((demo_checkpoint / "policy_meta.json").read_text())
    assert meta["training"]["steps"] == dc.DEMO_TRAIN.steps
    assert meta["action_names"][-1] == "gripper"
    # every dim relative to the state, the gripper (a width servo in the sample) included
    assert meta["delta_action_mask"] == [True] * 8
    assert meta["training"]["per_step_action_stats"] is True


def test_constant_training_dims_get_a_spread(tmp_path):
    """A joint that never moves in the training bags (std 0, q01 == q99) would make the
    checkpoint be refused at load: training gives it MIN_SPREAD, other dims unchanged."""
    from restac_ros.eval.train_data import MIN_SPREAD, floor_spread
    from restac_ros.model.norm_stats import compute_norm_stats
    from restac_ros.model.validation import CheckpointError, check_norm_stats

    x = np.random.default_rng(0).normal(size=(50, 3))
    x[:, 1] = 0.7
    raw = compute_norm_stats(x)
    with pytest.raises(CheckpointError, match=r"s\.std\[1\] is \S+ \(must be > 1e-08\)"):
        check_norm_stats({"s": raw}, "f", use_quantiles=False)
    fixed = floor_spread("s", raw)
    for q in (False, True):
        check_norm_stats({"s": fixed}, "f", use_quantiles=q)
    assert fixed.std[1] == np.float32(MIN_SPREAD)
    assert fixed.q99[1] - fixed.q01[1] == pytest.approx(MIN_SPREAD, rel=1e-2)
    np.testing.assert_array_equal(fixed.std[[0, 2]], raw.std[[0, 2]])
    np.testing.assert_array_equal(fixed.q01[[0, 2]], raw.q01[[0, 2]])
