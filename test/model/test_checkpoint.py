"""orbax params I/O: bit-exact round trip, base-checkpoint loading, and every error case."""

from __future__ import annotations

import dataclasses

import flax.traverse_util as tu
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from restac_ros.model import checkpoint as ckpt
from test.model.conftest import tiny_config


def _flat(model):
    return tu.flatten_dict(ckpt.model_params(model), sep="/")


@pytest.fixture(scope="module")
def models():
    cfg = tiny_config(fusion="two_stage")
    backbone_cfg = dataclasses.replace(cfg, use_tactile=False)
    return cfg, cfg.create(jax.random.key(0)), backbone_cfg.create(jax.random.key(5))


@pytest.fixture(scope="module")
def base_dir(models, tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "params"
    ckpt.save_model_params(path, models[2])
    return path


def _save_variant(tmp_path, flat):
    path = tmp_path / "params"
    ckpt.save_params(path, tu.unflatten_dict(flat, sep="/"))
    return path


def test_save_load_round_trip_is_bit_exact(models, tmp_path):
    cfg, model, _ = models
    ckpt.save_model_params(tmp_path / "params", model)
    other = cfg.create(jax.random.key(1))
    assert not np.array_equal(_flat(other)["action_in_proj/kernel"],
                              _flat(model)["action_in_proj/kernel"])
    ckpt.load_model_params(tmp_path / "params", other)
    want, got = _flat(model), _flat(other)
    assert want.keys() == got.keys()
    for k in want:
        assert isinstance(got[k], jax.Array), k  # device arrays, not numpy
        assert got[k].dtype == want[k].dtype and np.array_equal(np.asarray(got[k]),
                                                                np.asarray(want[k])), k


def test_bf16_params_round_trip(tmp_path):
    params = {"a": {"w": np.arange(6, dtype=np.float32).reshape(2, 3).astype(ml_dtypes.bfloat16)},
              "b": np.float32([1.5, -2.25])}
    ckpt.save_params(tmp_path / "params", params)
    got = ckpt.restore_params(tmp_path / "params")
    assert got["a"]["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(got["a"]["w"], params["a"]["w"])
    np.testing.assert_array_equal(got["b"], params["b"])


def test_base_checkpoint_keeps_fresh_tactile_params(models, base_dir):
    cfg, _, backbone = models
    model = cfg.create(jax.random.key(2))
    fresh = _flat(model)
    ckpt.load_base_params(base_dir, model)
    got, base = _flat(model), _flat(backbone)
    tactile = [k for k in got if k not in base]
    assert tactile and all(("tactile" in k or "gate" in k or "fusion" in k) for k in tactile)
    for k in tactile:
        np.testing.assert_array_equal(got[k], fresh[k])
    for k in base:
        np.testing.assert_array_equal(got[k], base[k])


def test_strict_load_of_base_checkpoint_names_missing_tactile_params(models, base_dir):
    cfg = models[0]
    with pytest.raises(ckpt.CheckpointMismatchError, match="missing params: .*gate/logvar_center"):
        ckpt.load_model_params(base_dir, cfg.create(jax.random.key(3)))


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda f: f.pop("action_out_proj/bias"), r"missing params: action_out_proj/bias"),
        (lambda f: f.pop("PaliGemma/llm/layers/mlp_1/linear"),
         r"missing params: PaliGemma/llm/layers/mlp_1/linear"),
        (lambda f: f.__setitem__("PaliGemma/llm/extra/w", np.zeros(3, np.float32)),
         r"unexpected params: PaliGemma/llm/extra/w"),
        (lambda f: f.__setitem__("action_in_proj/kernel", np.zeros((9, 64), np.float32)),
         r"mis-shaped params: action_in_proj/kernel: checkpoint \(9, 64\) vs model \(8, 64\)"),
    ],
    ids=["missing", "missing_expert", "unexpected", "misshaped"],
)
def test_base_loading_errors_name_the_parameter(models, base_dir, tmp_path, edit, pattern):
    flat = tu.flatten_dict(ckpt.restore_params(base_dir), sep="/")
    edit(flat)
    path = _save_variant(tmp_path, flat)
    model = models[0].create(jax.random.key(4))
    before = _flat(model)
    with pytest.raises(ckpt.CheckpointMismatchError, match=pattern):
        ckpt.load_base_params(path, model)
    for k, v in _flat(model).items():  # a failed load leaves the model untouched
        np.testing.assert_array_equal(v, before[k])


def test_every_offender_is_named(models, base_dir, tmp_path):
    flat = tu.flatten_dict(ckpt.restore_params(base_dir), sep="/")
    flat.pop("state_proj/kernel")
    flat.pop("PaliGemma/img/head/bias")
    flat["bogus/x"] = np.zeros(1, np.float32)
    flat["action_out_proj/kernel"] = np.zeros((1, 1), np.float32)
    path = _save_variant(tmp_path, flat)
    with pytest.raises(ckpt.CheckpointMismatchError) as err:
        ckpt.load_base_params(path, models[0].create(jax.random.key(4)))
    msg = str(err.value)
    for name in ("state_proj/kernel", "PaliGemma/img/head/bias", "bogus/x",
                 "action_out_proj/kernel"):
        assert name in msg


def test_missing_checkpoint_directory(models, tmp_path):
    with pytest.raises(FileNotFoundError, match="no params checkpoint"):
        ckpt.load_model_params(tmp_path / "nope", models[1])


def test_fresh_regex_matches_openpi_names():
    import re

    rx = re.compile(ckpt.FRESH_PARAMS_REGEX)
    for k in ("tactile_encoder/project_vq/kernel", "gate/logvar_center", "fusion_self_attn/out",
              "PaliGemma/llm/layers/attn/q_einsum_lora/w", "time_mlp_in/kernel",
              "x/cross_attn/w"):
        assert rx.fullmatch(k), k
    for k in ("action_in_proj/kernel", "PaliGemma/img/head/bias", "state_proj/bias"):
        assert not rx.fullmatch(k), k
