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


PUBLISHED_HPARAMS = {
    "ddconfig": {"ch", "out_ch", "num_res_blocks", "attn_resolutions", "in_channels",
                 "resolution", "z_channels", "ch_mult", "dropout", "resamp_with_conv",
                 "double_z"},
    "prophet_config": {"visual_backbone", "visual_pretrained", "action_dim", "history_len",
                       "num_views", "view_fusion", "latent_shape", "bottleneck_resolution",
                       "hidden_dims", "mid_dim", "freeze_visual_backbone", "fusion_depth"},
    "residual_vq_config": {"n_e", "e_dim", "beta", "use_ema", "ema_decay", "ema_epsilon"},
}


def test_published_layout_prefixes_and_hparams(small_ckpt):
    raw = _raw(small_ckpt)
    hp = raw["hyper_parameters"]
    assert set(hp) == {*PUBLISHED_HPARAMS, "use_event_encoder"}  # no restac_extensions
    assert {k: set(hp[k]) for k in PUBLISHED_HPARAMS} == PUBLISHED_HPARAMS
    sd = raw["state_dict"]
    assert {k.split(".")[0] + "." for k in sd} == set(PREFIXES)
    assert sd["residual_vq.embed"].shape == (16, 64)
    assert sd["residual_vq.cluster_size"].shape == (16,)
    assert sd["residual_vq.embed_avg"].shape == (16, 64)
    # one shared trunk, nn.Sequential of resnet18's children: 7 = layer4
    assert sd["prophet_encoder.visual_backbone.7.1.bn2.running_var"].shape == (512,)
    assert sd["prophet_encoder.visual_backbone.0.weight"].shape == (64, 3, 7, 7)
    assert not any(k.startswith("prophet_encoder.visual_backbone.2") for k in sd)
    # fusion_depth 3 -> two Linear/LayerNorm/GELU/Dropout blocks
    assert sd["prophet_encoder.fusion_body.0.weight"].shape == (256, 3 * 512 + 128)
    assert sd["prophet_encoder.fusion_body.5.weight"].shape == (256,)
    assert not any(k.startswith("prophet_encoder.fusion_body.8") for k in sd)
    assert sd["prophet_encoder.action_mlp.0.weight"].shape == (128, 7)
    assert sd["event_encoder.head.0.weight"].shape == (64, 6, 3, 3)
    assert sd["event_encoder.body.2.norm2.weight"].shape == (64,)
    assert sd["event_encoder.pre_pool.weight"].shape == (64, 64, 1, 1)
    assert sd["quant_conv.weight"].shape == (3, 3, 1, 1)
    assert sd["obs_encoder.conv_out.weight"].shape == (3, 128, 3, 3)


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


def test_extensions_are_marked_in_hparams(tmp_path):
    hp = default_hparams(ch=32, n_e=8, num_quantizers=3, num_res_blocks=1,
                         shared_visual_backbone=False, prophet_input_size=64)
    path = tmp_path / "ext.ckpt"
    save_checkpoint(path, ResidualVQVAE(hp), hp)
    raw = _raw(path)
    assert raw["hyper_parameters"]["restac_extensions"] == {
        "num_quantizers": 3, "shared_visual_backbone": False, "prophet_input_size": 64}
    w = ResidualVQVAEWrapper(path, device="cpu", **CONV)
    assert w.num_quantizers == 3 and w.hparams == hp
    keys = expected_shapes(hp)
    assert "residual_vq.stages.2.embed" in keys and "residual_vq.embed" not in keys
    assert "prophet_encoder.visual_backbones.2.7.1.bn2.weight" in keys
    # the same weights without the marker are refused, naming the keys
    del raw["hyper_parameters"]["restac_extensions"]
    msg = _expect(_write(tmp_path / "unmarked.ckpt", raw), "missing keys", "residual_vq.embed",
                  "unexpected keys", "residual_vq.stages.0.embed")
    assert "published layout" in msg
    raw["hyper_parameters"]["restac_extensions"] = {"num_quantisers": 3}
    _expect(_write(tmp_path / "typo.ckpt", raw), "unknown keys", "num_quantisers")


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
    del raw["state_dict"]["event_encoder.body.1.conv2.bias"]
    _expect(_write(tmp_path / "missing.ckpt", raw), "missing keys",
            "event_encoder.body.1.conv2.bias")


def test_every_offending_key_is_named(small_ckpt, tmp_path):
    raw = _raw(small_ckpt)
    gone = sorted(k for k in raw["state_dict"] if k.startswith("obs_encoder.down."))
    assert len(gone) > 20
    for k in gone:
        raw["state_dict"][f"old.{k}"] = raw["state_dict"].pop(k)
    msg = _expect(_write(tmp_path / "many.ckpt", raw), f"missing keys ({len(gone)})",
                  f"unexpected keys ({len(gone)})")
    assert all(k in msg and f"old.{k}" in msg for k in gone)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_refused(small_ckpt, tmp_path, bad):
    raw = _raw(small_ckpt)
    raw["state_dict"]["prophet_encoder.fusion_body.4.weight"][3, 5] = bad
    raw["state_dict"]["residual_vq.embed"][0, 0] = bad
    path = _write(tmp_path / "nan.ckpt", raw)
    kind = "1 NaN, 0 inf" if bad != bad else "0 NaN, 1 inf"
    _expect(path, "non-finite", f"prophet_encoder.fusion_body.4.weight ({kind})",
            f"residual_vq.embed ({kind})")
    from restac_ros.tactile.jax_port import load_jax_vqvae, load_jax_vqvae_from_state

    with pytest.raises(CheckpointError, match=r"nan\.ckpt.*residual_vq\.embed"):
        load_jax_vqvae(path)
    state = {k: v.numpy() for k, v in raw["state_dict"].items()}
    with pytest.raises(CheckpointError, match="prophet_encoder.fusion_body.4.weight"):
        load_jax_vqvae_from_state(state, raw["hyper_parameters"], where="arrays")
    with pytest.raises(CheckpointError, match="non-finite"):  # and never written
        save_checkpoint(tmp_path / "out.ckpt", _model_from(raw), raw["hyper_parameters"])


def _model_from(raw):
    from restac_ros.tactile.config import parse_hparams

    model = ResidualVQVAE(parse_hparams(raw["hyper_parameters"]))
    model.load_state_dict(raw["state_dict"])
    return model


def test_pre_fork_layout_gets_a_hint(small_ckpt, tmp_path):
    raw = _raw(small_ckpt)
    raw["hyper_parameters"]["residual_vq_config"] = {"codebook_size": 16, "dim": 64}
    _expect(_write(tmp_path / "old.ckpt", raw), "lacks required key 'n_e'", "pre-fork")


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
    del raw["hyper_parameters"]["ddconfig"]["z_channels"]
    _expect(_write(tmp_path / "hp.ckpt", raw), "ddconfig", "z_channels")


def test_published_defaults_apply_to_absent_keys(small_ckpt, tmp_path):
    raw = _raw(small_ckpt)
    del raw["hyper_parameters"]["ddconfig"]["double_z"]  # taming's default: True
    _expect(_write(tmp_path / "dz.ckpt", raw), "double_z must be False")
    raw = _raw(small_ckpt)
    raw["hyper_parameters"]["prophet_config"]["fusion_depth"] = 4  # -> a third block
    _expect(_write(tmp_path / "fd.ckpt", raw), "missing keys",
            "prophet_encoder.fusion_body.8.weight")
    raw = _raw(small_ckpt)
    raw["hyper_parameters"]["prophet_config"]["some_training_option"] = 1  # ignored, as published
    path = _write(tmp_path / "extra_hp.ckpt", raw)
    from restac_ros.tactile.config import ignored_hparams

    assert ignored_hparams(raw["hyper_parameters"]) == ["prophet_config.some_training_option"]
    ResidualVQVAEWrapper(path, device="cpu", **CONV)


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.ckpt", "not found")


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "text.ckpt"
    path.write_text("hello")
    _expect(path, "not a readable torch checkpoint")


def test_attention_placed_from_nominal_resolution():
    hp = default_hparams(ch=32, n_e=4, num_res_blocks=1)
    assert hp.dd.resolution == 128  # 128 -> 64 -> 32 -> 16: attention on the last level
    keys = expected_shapes(hp)
    assert "obs_encoder.down.3.attn.0.q.weight" in keys
    assert not any(k.startswith(("obs_encoder.down.0.attn", "obs_encoder.down.2.attn"))
                   for k in keys)
    from dataclasses import replace

    hp256 = replace(hp, dd=replace(hp.dd, resolution=256))  # nominal 256: 32 at level 3
    assert not any(".attn." in k and "down" in k for k in expected_shapes(hp256))
    assert "obs_encoder.mid.attn_1.q.weight" in expected_shapes(hp256)
