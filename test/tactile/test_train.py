"""restac-train-vqvae smoke test on a tiny real bag: trains, writes a strictly loadable .ckpt."""

from __future__ import annotations

import numpy as np
import torch

from restac_ros.tactile.checkpoint import TRAIN_STATE_KEY, read_checkpoint
from restac_ros.tactile.jax_port import load_jax_vqvae
from restac_ros.tactile.train import main
from restac_ros.tactile.wrapper import ResidualVQVAEWrapper

from .synth_bag import write_episode


def test_train_cli_writes_published_ckpt(tmp_path, capsys):
    bag = write_episode(tmp_path / "ep", duration=1.5, seed=5)
    out = tmp_path / "model.ckpt"
    rc = main(["--bag", str(bag), "--out", str(out), "--steps", "3", "--event-steps", "4",
               "--batch-size", "4", "--event-batch-size", "8",
               "--codebook-size", "8", "--prophet-image-size", "32", "--device", "cpu",
               "--rate", "10", "--no-progress", "--threads", "1"])
    assert rc == 0
    assert "wrote" in capsys.readouterr().err
    state, hp, raw = read_checkpoint(out)
    assert hp.ext.prophet_input_size == 32 and hp.rvq.n_e == 8
    assert raw["hyper_parameters"]["restac_extensions"] == {"prophet_input_size": 32}
    assert set(raw[TRAIN_STATE_KEY]) == {"decoder", "event_decoder"}
    assert not any(k.startswith(("decoder", "event_decoder")) for k in state)
    cb = "residual_vq."
    # EMA ran: counts moved away from the data-dependent initialisation (all ones)
    assert not torch.allclose(state[cb + "cluster_size"], torch.ones(8))
    # BatchNorm statistics were updated from the bag's images
    assert int(state["prophet_encoder.visual_backbone.1.num_batches_tracked"]) == 3
    w = ResidualVQVAEWrapper(out, tactile_layout="HWC", tactile_range="uint8",
                             visual_layout="HWC", visual_range="uint8", device="cpu")
    rng = np.random.default_rng(0)
    o = w(rng.integers(0, 256, (1, 240, 320, 3), dtype=np.uint8),
          rng.integers(0, 256, (1, 3, 224, 224, 3), dtype=np.uint8), np.zeros((1, 7), np.float32))
    assert torch.isfinite(o.logvar).all() and torch.isfinite(o.q_event).all()
    params, _ = load_jax_vqvae(out)
    assert params[cb + "embed"].shape == (8, 64)


def test_train_cli_missing_bag(tmp_path, capsys):
    out = tmp_path / "m.ckpt"
    assert main(["--bag", str(tmp_path / "nobag"), "--out", str(out), "--no-progress"]) == 2
    assert "nobag" in capsys.readouterr().err
    assert not out.exists()


def test_train_defaults_write_the_fork_layout(tmp_path, fork_ckpt):
    """No extension flag: the file has the published hparams only and exactly the key names
    of the checkpoint the fork's own classes wrote (same ch/blocks/n_e; other widths)."""
    bag = write_episode(tmp_path / "ep", duration=1.0, seed=6)
    out = tmp_path / "default.ckpt"
    assert main(["--bag", str(bag), "--out", str(out), "--steps", "1", "--event-steps", "1",
                 "--batch-size", "2", "--device", "cpu", "--rate", "5", "--no-progress",
                 "--threads", "1"]) == 0
    state, hp, raw = read_checkpoint(out)
    assert hp.ext.is_published() and "restac_extensions" not in raw["hyper_parameters"]
    fork = torch.load(fork_ckpt, weights_only=True)
    assert set(state) == set(fork["state_dict"])
    for section in ("ddconfig", "prophet_config", "residual_vq_config"):
        ours, theirs = set(raw["hyper_parameters"][section]), set(fork["hyper_parameters"][section])
        assert theirs <= ours and ours - theirs <= {"resamp_with_conv"}  # a taming default
    assert raw["hyper_parameters"]["prophet_config"]["visual_pretrained"] is False
