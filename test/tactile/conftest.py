"""Shared fixtures: small published-layout VQ-VAEs built from random initialisation, and the
fixture written by the published fork's own classes (scripts/make_vqvae_fork_fixture.py)."""

from __future__ import annotations

import json
import lzma
import pathlib

import numpy as np
import pytest
import torch

from restac_ros.tactile.config import default_hparams
from restac_ros.tactile.model import ResidualVQVAE

torch.set_num_threads(1)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def randomise(model: ResidualVQVAE, seed: int = 0) -> ResidualVQVAE:
    """Random weights plus non-trivial BatchNorm statistics and codebooks spread over the
    range of real event features (so code indices vary between inputs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
                mod.weight.copy_(0.5 + torch.rand(mod.weight.shape, generator=g))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
        model.eval()
        t, v, a = random_inputs(16, seed + 100)
        mu, _ = model.prophet_encoder(v, a)
        h = model.event_encoder(mu, model.encode_tactile(t))
        for cb in model.residual_vq.codebooks():
            k = cb.embed.shape[0]
            pick = torch.randint(0, h.shape[0], (k,), generator=g)
            cb.embed.copy_(h[pick] + 0.3 * h.std() * torch.randn(cb.embed.shape, generator=g))
            if hasattr(cb, "embed_avg"):  # use_ema
                cb.embed_avg.copy_(cb.embed)
                cb.cluster_size.copy_(torch.rand(k, generator=g))
            h = h - cb.embed[cb.nearest(h)]
    return model


def random_inputs(batch: int, seed: int):
    """tactile [B,3,128,160], views [B,3,3,224,224] in [-1,1], action_prev [B,7]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(batch, 3, 128, 160, generator=g) * 2 - 1
    v = torch.rand(batch, 3, 3, 224, 224, generator=g) * 2 - 1
    a = 0.05 * torch.randn(batch, 7, generator=g)
    return t, v, a


@pytest.fixture(scope="session")
def small_hparams():
    return default_hparams(ch=32, n_e=16, num_res_blocks=1)


@pytest.fixture(scope="session")
def small_model(small_hparams):
    torch.manual_seed(0)
    return randomise(ResidualVQVAE(small_hparams), seed=0)


@pytest.fixture(scope="session")
def small_ckpt(small_model, tmp_path_factory):
    from restac_ros.tactile.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("vqvae") / "small.ckpt"
    save_checkpoint(path, small_model, small_model.hp)
    return path


FORK_FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "vqvae_fork_small"


@pytest.fixture(scope="session")
def fork_meta() -> dict:
    return json.loads((FORK_FIXTURE / "meta.json").read_text())


@pytest.fixture(scope="session")
def fork_ckpt(tmp_path_factory) -> pathlib.Path:
    """The fork-written checkpoint, decompressed (it is stored xz-compressed)."""
    path = tmp_path_factory.mktemp("fork") / "vqvae.ckpt"
    path.write_bytes(lzma.decompress((FORK_FIXTURE / "vqvae.ckpt.xz").read_bytes()))
    return path


@pytest.fixture(scope="session")
def fork_io() -> dict[str, np.ndarray]:
    with np.load(FORK_FIXTURE / "io.npz") as z:
        return {k: z[k] for k in z.files}


def fork_inputs(io: dict[str, np.ndarray]):
    """What the generator handed the fork's wrapper, bit for bit: tactile HWC in [0, 1],
    views CHW in [-1, 1] (SigLIP convention), action_prev [B, 7]."""
    tactile = io["tactile_u8"].astype(np.float32) / np.float32(255.0)
    views = (io["views_u8"].transpose(0, 1, 4, 2, 3).astype(np.float32) / np.float32(127.5)
             - np.float32(1.0))
    return tactile, np.ascontiguousarray(views), io["action_prev"]
