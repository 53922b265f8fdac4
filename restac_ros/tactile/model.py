"""The frozen Residual VQ-VAE as one PyTorch module (published state_dict layout).

Top-level children give the key prefixes of CONTRACT.md section 2:
``prophet_encoder.``, ``obs_encoder.``, ``quant_conv.``, ``event_encoder.``,
``residual_vq.``, with the published fork's sub-layout (see each module and
docs/vqvae.md).  ``quant_conv`` maps z_channels -> latent_shape[0] (1x1).
``forward`` takes already-converted tensors: tactile [B, 3, 128, 160] in
[-1, 1], views [B, V, 3, 224, 224] in [-1, 1], action_prev [B, 7] (raw units,
state_t - state_{t-1}); input conventions are handled by
``ResidualVQVAEWrapper``.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from restac_ros.tactile.config import VQVAEHParams
from restac_ros.tactile.event_vq import EventEncoder, ResidualVQ
from restac_ros.tactile.prophet import Prophet
from restac_ros.tactile.vqgan import Encoder

PREFIXES = ("prophet_encoder.", "obs_encoder.", "quant_conv.", "event_encoder.", "residual_vq.")


@dataclasses.dataclass
class VQVAEOutput:
    """codes int64 [B, n_q]; q_event/h_event [B, D]; logvar [B, 1]; mu/z_real [B, z, 16, 20]."""

    codes: torch.Tensor
    q_event: torch.Tensor
    logvar: torch.Tensor
    mu: torch.Tensor
    z_real: torch.Tensor
    h_event: torch.Tensor


class ResidualVQVAE(nn.Module):
    def __init__(self, hp: VQVAEHParams):
        super().__init__()
        self.hp = hp
        self.prophet_encoder = Prophet(hp)
        self.obs_encoder = Encoder(hp.dd)
        self.quant_conv = nn.Conv2d(hp.dd.z_channels, hp.latent_channels, 1)
        self.event_encoder = EventEncoder(hp.latent_channels, hp.rvq.e_dim)
        self.residual_vq = ResidualVQ(hp.rvq, hp.num_quantizers)

    def encode_tactile(self, tactile: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.obs_encoder(tactile))

    def forward(self, tactile: torch.Tensor, views: torch.Tensor,
                action_prev: torch.Tensor) -> VQVAEOutput:
        mu, logvar = self.prophet_encoder(views, action_prev)
        z_real = self.encode_tactile(tactile)
        h_event = self.event_encoder(mu, z_real)
        q_event, codes, _ = self.residual_vq(h_event)
        return VQVAEOutput(codes=codes, q_event=q_event, logvar=logvar, mu=mu,
                           z_real=z_real, h_event=h_event)


def expected_shapes(hp: VQVAEHParams) -> dict[str, tuple[int, ...]]:
    """Every state_dict key of the published layout with its shape (built on the meta device)."""
    with torch.device("meta"):
        model = ResidualVQVAE(hp)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
