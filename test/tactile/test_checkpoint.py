"""Published-format checkpoints: round trip, strict loading, refusals naming file + problem."""

from __future__ import annotations

import pickle

import pytest
import torch

from restac_ros.tactile.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from restac_ros.tactile.config import default_hparams
from restac_ros.tactile.model import PREFIXES, ResidualVQVAE, expected_shapes
from restac_ros.tactile.wrapper import ResidualVQVAEWrapper

CONV = {"tactile_layout": "CHW", "tactile_range": "[-1,1]", "visual_layout": "CHW",
        "visual_range": "[-1,1]"}


class Arbitrary:
    """Any class outside torch's weights_only allow-list."""

    def __init__(self):
        self.payload = 1


def _raw(path):
    return torch.load(path, weights_only=True)


def test_published_layout_prefixes_and_hparams(small_ckpt):
    raw = _raw(small_ckpt)
    assert set(raw["hyper_parameters"]) == {"ddconfig", "prophet_config", "residual_vq_config",
                                            "use_event_encoder"}
    keys = list(raw["state_dict"])
    assert {k.split(".")[0] + "." for k in keys} == set(PREFIXES)
    assert raw["state_dict"]["residual_vq.layers.0._codebook.embed"].shape == (16, 64)
    assert raw["state_dict"]["residual_vq.layers.0._codebook.cluster_size"].shape == (16,)
    assert raw["state_dict"]["residual_vq.layers.0._codebook.embed_avg"].shape == (16, 64)
    assert raw["state_dict"]["prophet_encoder.view_encoders.2.layer4.1.bn2.running_var"].shape \
        == (512,)
    assert raw["state_dict"]["quant_conv.weight"].shape == (3, 3, 1, 1)
    assert raw["state_dict"]["obs_encoder.conv_out.weight"].shape == (3, 128, 3, 3)


def test_wrapper_loads_frozen_on_cpu(small_ckpt, small_model):
    w = ResidualVQVAEWrapper(small_ckpt, device="cpu", **CONV)
    assert not w.model.training
    assert all(not p.requires_grad for p in w.model.parameters())
    ref = small_model.state_dict()
    for k, v in w.model.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert w.device.type == "cpu"


def test_save_from_module_mapping_matches(small_model, tmp_path):
    modules = {p.rstrip("."): getattr(small_model, p.rstrip(".")) for p in PREFIXES}
    path = tmp_path / "m.ckpt"
    save_checkpoint(path, modules, small_model.hp.to_dict())
    state, hp, _ = read_checkpoint(path)
    assert hp == small_model.hp
    assert set(state) == set(small_model.state_dict())


def test_multi_stage_checkpoint_loads(tmp_path):
    hp = default_hparams(ch=32, codebook_size=8, num_quantizers=3, num_res_blocks=1)
    path = tmp_path / "rvq3.ckpt"
    save_checkpoint(path, ResidualVQVAE(hp), hp)
    w = ResidualVQVAEWrapper(path, device="cpu", **CONV)
    assert w.num_quantizers == 3
    assert "residual_vq.layers.2._codebook.embed" in expected_shapes(hp)


def _write(path, raw):
    torch.save(raw, path)
    return path


def _expect(path, *fragments):
    with pytest.raises(CheckpointError) as err:
        ResidualVQVAEWrapper(path, device="cpu", **CONV)
    msg = str(err.value)
    assert str(path) in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


def test_missing_key(small_ckpt, tmp_path):
    raw = _raw(small_ckpt)
    del raw["state_dict"]["event_encoder.blocks.1.conv2.bias"]
    _expect(_write(tmp_path / "missing.ckpt", raw), "missing keys",
            "event_encoder.blocks.1.conv2.bias")


def test_extra_key(small_ckpt, tmp_path):
    raw = _raw(small_ckpt)
    raw["state_dict"]["decoder.conv_in.weight"] = torch.zeros(3)
    _expect(_write(tmp_path / "extra.ckpt", raw), "unexpected keys", "decoder.conv_in.weight")


def test_wrong_shape(small_ckpt, tmp_path):
    raw = _raw(small_ckpt)
    raw["state_dict"]["prophet_encoder.head_logvar.weight"] = torch.zeros(2, 256)
    _expect(_write(tmp_path / "shape.ckpt", raw), "wrong shapes",
            "prophet_encoder.head_logvar.weight has shape [2, 256], expected [1, 256]")


def test_non_dict_file(tmp_path):
    _expect(_write(tmp_path / "list.ckpt", [torch.zeros(1)]), "top level is a list")


def test_dict_without_state_dict(small_ckpt, tmp_path):
    raw = _raw(small_ckpt)
    _expect(_write(tmp_path / "bare.ckpt", dict(raw["state_dict"])), "lacks 'state_dict'")


def test_arbitrary_object_pickle_refused(small_ckpt, tmp_path):
    raw = _raw(small_ckpt)
    raw["callbacks"] = Arbitrary()
    path = tmp_path / "evil.ckpt"
    torch.save(raw, path)
    with pytest.raises(pickle.UnpicklingError):  # proves the file really needs full unpickling
        torch.load(path, weights_only=True)
    _expect(path, "arbitrary objects", "weights_only")


def test_missing_hparams_key(small_ckpt, tmp_path):
    raw = _raw(small_ckpt)
    del raw["hyper_parameters"]["ddconfig"]["ch_mult"]
    _expect(_write(tmp_path / "hp.ckpt", raw), "ddconfig", "ch_mult")


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.ckpt", "not found")


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "text.ckpt"
    path.write_text("hello")
    _expect(path, "not a readable torch checkpoint")


def test_attention_placed_from_nominal_resolution():
    hp = default_hparams(ch=32, codebook_size=4, num_res_blocks=1)
    assert hp.dd.resolution == 128  # 128 -> 64 -> 32 -> 16: attention on the last level
    keys = expected_shapes(hp)
    assert "obs_encoder.down.3.attn.0.q.weight" in keys
    assert not any(k.startswith(("obs_encoder.down.0.attn", "obs_encoder.down.2.attn"))
                   for k in keys)
    from dataclasses import replace

    hp256 = replace(hp, dd=replace(hp.dd, resolution=256))  # nominal 256: 32 at level 3
    assert not any(".attn." in k and "down" in k for k in expected_shapes(hp256))
    assert "obs_encoder.mid.attn_1.q.weight" in expected_shapes(hp256)
