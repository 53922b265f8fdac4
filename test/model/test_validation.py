"""Checkpoints refused at load: NaN/inf weights or norm stats, zero std or quantile spread,
truncated JSON and orbax metadata. Every error names the file and the parameter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from restac_ros.model import checkpoint as ckpt
from restac_ros.model import validation
from restac_ros.model.norm_stats import NormStats, load_norm_stats, save_norm_stats
from restac_ros.model.policy import RestacPolicy
from restac_ros.model.validation import CheckpointError
from test.nodes.checkpoints import make_tiny_checkpoint

STATS = "assets/test/norm_stats.json"


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "policy")


@pytest.fixture
def checkpoint(good_checkpoint, tmp_path) -> Path:
    """A fresh copy of the good checkpoint, for one test to damage."""
    return Path(shutil.copytree(good_checkpoint, tmp_path / "policy"))


def _edit_stats(ckpt_dir: Path, name: str, field: str, index, value) -> Path:
    path = ckpt_dir / STATS
    data = json.loads(path.read_text())
    arr = np.asarray(data["norm_stats"][name][field], np.float64)
    arr[index] = value
    data["norm_stats"][name][field] = arr.tolist()  # json writes NaN / Infinity
    path.write_text(json.dumps(data))
    return path


def _refused(ckpt_dir: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        RestacPolicy.from_checkpoint(ckpt_dir)
    return str(info.value)


def test_good_checkpoint_loads(good_checkpoint):
    policy = RestacPolicy.from_checkpoint(good_checkpoint)
    assert set(policy.norm_stats) == {"state", "actions"}


@pytest.mark.parametrize(("name", "field", "index", "value", "expect"), [
    ("actions", "std", 4, 0.0, "actions.std[4] is 0 (must be > 1e-08)"),
    ("actions", "std", 2, 1e-12, "actions.std[2] is 1e-12 (must be > 1e-08)"),
    ("actions", "std", 5, -0.1, "actions.std[5] is -0.1"),
    ("state", "std", 2, float("nan"), "state.std[2] is nan"),
    ("state", "mean", 0, float("inf"), "state.mean[0] is inf"),
    ("actions", "mean", 7, float("-inf"), "actions.mean[7] is -inf"),
])
def test_bad_norm_stats_refused(checkpoint, name, field, index, value, expect):
    if field != "mean":  # a dim whose stats are all zero is padding (accepted)
        _edit_stats(checkpoint, name, "mean", index, 0.25)
    path = _edit_stats(checkpoint, name, field, index, value)
    msg = _refused(checkpoint)
    assert msg.startswith(f"{path}: ") and expect in msg, msg


def test_quantile_stats_checked(tmp_path):
    good = NormStats(np.full(3, 0.5, np.float32), np.ones(3, np.float32),
                     np.float32([-1, -1, -1]), np.float32([1, 1, 1]))
    path = save_norm_stats(tmp_path / "norm_stats.json", {"state": good})
    validation.check_norm_stats(load_norm_stats(path), path, use_quantiles=True)
    flat = NormStats(good.mean, good.std, np.float32([-1, 0.5, -1]), np.float32([1, 0.5, 1]))
    save_norm_stats(path, {"state": flat})
    stats = load_norm_stats(path)  # finite: loads; z-score (pi0) never uses the quantiles
    validation.check_norm_stats(stats, path, use_quantiles=False)
    with pytest.raises(CheckpointError, match=r"state\.q99\[1\] - state\.q01\[1\] is 0"):
        validation.check_norm_stats(stats, path, use_quantiles=True)
    no_q = {"state": NormStats(good.mean, good.std)}
    with pytest.raises(CheckpointError, match=r"state lacks q01/q99"):
        validation.check_norm_stats(no_q, path, use_quantiles=True)
    nan_q = NormStats(good.mean, good.std, np.float32([-1, -1, np.nan]), good.q99)
    save_norm_stats(path, {"state": nan_q})
    with pytest.raises(CheckpointError, match=r"norm_stats\.json: state\.q01\[2\] is nan"):
        load_norm_stats(path)


def test_zero_quantile_spread_loads_for_pi0(checkpoint):
    """pi0 normalises by std: a rarely moving gripper (q01 == q99, std > 0) is fine, as are
    all-zero (padding) dims."""
    path = checkpoint / STATS
    data = json.loads(path.read_text())
    state = data["norm_stats"]["state"]
    state["mean"][0] = 0.5
    state["q01"] = [0.5] + [-1.0] * 6 + [0.0]
    state["q99"] = [0.5] + [1.0] * 6 + [0.0]
    state["mean"][7] = state["std"][7] = 0.0
    path.write_text(json.dumps(data))
    assert RestacPolicy.from_checkpoint(checkpoint).norm_stats["state"].q01[0] == 0.5


def test_per_step_stats_name_the_step(tmp_path):
    std = np.ones((4, 3), np.float32)
    std[2, 1] = 0
    path = save_norm_stats(tmp_path / "norm_stats.json",
                           {"actions": NormStats(np.full((4, 3), 0.5, np.float32), std)})
    with pytest.raises(CheckpointError, match=r"actions\.std\[2, 1\] is 0 "):
        validation.check_norm_stats(load_norm_stats(path), path, use_quantiles=False)


def test_mis_shaped_or_malformed_stats_name_the_file(tmp_path):
    path = tmp_path / "norm_stats.json"
    path.write_text(json.dumps({"norm_stats": {"state": {"mean": [0, 0], "std": [1]}}}))
    with pytest.raises(CheckpointError, match=r"norm_stats\.json: state\.std has shape"):
        load_norm_stats(path)
    path.write_text(json.dumps({"norm_stats": {"state": {"mean": [0, 0]}}}))
    with pytest.raises(CheckpointError, match=r"norm_stats\.json: norm stats need"):
        load_norm_stats(path)
    path.write_text(json.dumps({"norm_stats": {"state": {"mean": ["a"], "std": [1]}}}))
    with pytest.raises(CheckpointError, match=r"norm_stats\.json: "):
        load_norm_stats(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_weights_refused(checkpoint, value):
    params_dir = checkpoint / "params"
    params = ckpt.restore_params(params_dir)
    kernel = params["action_in_proj"]["kernel"]
    kernel[1, 2] = value
    shutil.rmtree(params_dir)
    ckpt.save_params(params_dir, params)
    msg = _refused(checkpoint)
    assert msg.startswith(f"{params_dir}: param action_in_proj/kernel[1, 2] is {value}"), msg
    assert "(1 of " in msg


def test_bf16_weights_checked():
    params = {"a": {"w": np.ones((2, 3), ml_dtypes.bfloat16)}, "n": np.arange(3)}
    validation.check_finite_params(params, "p")
    params["a"]["w"][1, 1] = np.nan
    with pytest.raises(CheckpointError, match=r"^p: param a/w\[1, 1\] is nan"):
        validation.check_finite_params(params, "p")


@pytest.mark.parametrize("file", ["restac_config.json", STATS, "policy_meta.json",
                                  "params/_METADATA"])
def test_truncated_json_names_the_file(checkpoint, file):
    path = checkpoint / file
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    msg = _refused(checkpoint)
    assert msg.startswith(f"{path}: invalid JSON at line "), msg
    assert "truncated?" in msg and "NoneType" not in msg
    path.write_text("")
    assert _refused(checkpoint) == f"{path}: empty file (truncated write?)"


def test_missing_orbax_metadata_names_the_file(checkpoint):
    (checkpoint / "params" / "_METADATA").unlink()
    assert _refused(checkpoint).startswith(f"{checkpoint / 'params' / '_METADATA'}: missing")


def test_wrong_json_shapes_name_the_file(checkpoint):
    (checkpoint / "policy_meta.json").write_text("[1, 2]")
    assert _refused(checkpoint) == (f"{checkpoint / 'policy_meta.json'}: expected a JSON dict, "
                                    "got list")
    cfg = checkpoint / "restac_config.json"
    data = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**data, "no_such_field": 1}))
    msg = _refused(checkpoint)
    assert msg.startswith(f"{cfg}: unknown Pi0ResTacConfig fields: ['no_such_field']"), msg
