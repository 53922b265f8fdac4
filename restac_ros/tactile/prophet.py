"""Prophet: predicts the expected tactile latent ``mu`` and its uncertainty ``logvar``.

Per-view torchvision ResNet18 trunks (``view_encoders.{v}``, ``fc`` = identity,
so the keys are torchvision's ``conv1``/``bn1``/``layer1..4``), an action MLP
(``action_mlp.0``: 7 -> 128, ReLU) and a fusion MLP (``fusion.{3i,3i+1}``:
Linear/LayerNorm/exact-GELU, ``fusion_depth`` times, width ``fusion_hidden_dim``),
then ``head_mu`` (reshaped channels-first to [B, z, *mu_size], bilinearly
upsampled with align_corners=False to the encoder's latent size when that
differs) and ``head_logvar`` -> [B, 1].

Input views are [B, V, 3, H, W] in [-1, 1] (order: base, left wrist, right
wrist); they are mapped to [0, 1] and ImageNet-normalised here.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from restac_ros.tactile.config import RESNET_FEATURE_DIM, VQVAEHParams

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resnet18_trunk() -> nn.Module:
    net = torchvision.models.resnet18(weights=None)
    net.fc = nn.Identity()
    return net


class Prophet(nn.Module):
    def __init__(self, hp: VQVAEHParams):
        super().__init__()
        pc = hp.prophet
        self.image_size = pc.image_size
        self.mu_size = tuple(pc.mu_size)
        self.z_channels = hp.dd.z_channels
        self.z_hw = hp.dd.z_hw
        self.view_encoders = nn.ModuleList(resnet18_trunk() for _ in range(pc.num_views))
        self.action_mlp = nn.Sequential(nn.Linear(pc.action_dim, pc.action_hidden_dim), nn.ReLU())
        layers: list[nn.Module] = []
        width = pc.num_views * RESNET_FEATURE_DIM + pc.action_hidden_dim
        for _ in range(pc.fusion_depth):
            layers += [nn.Linear(width, pc.fusion_hidden_dim),
                       nn.LayerNorm(pc.fusion_hidden_dim, eps=1e-5),
                       nn.GELU(approximate="none")]
            width = pc.fusion_hidden_dim
        self.fusion = nn.Sequential(*layers)
        self.head_mu = nn.Linear(width, self.z_channels * self.mu_size[0] * self.mu_size[1])
        self.head_logvar = nn.Linear(width, 1)
        self.register_buffer("imagenet_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("imagenet_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, views: torch.Tensor, action_prev: torch.Tensor):
        """views [B, V, 3, H, W] in [-1, 1]; action_prev [B, 7] -> (mu [B,z,h,w], logvar [B,1])."""
        feats = []
        for v, trunk in enumerate(self.view_encoders):
            x = (views[:, v] + 1.0) / 2.0
            x = (x - self.imagenet_mean) / self.imagenet_std
            if x.shape[-2:] != (self.image_size, self.image_size):
                x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                  align_corners=False)
            feats.append(trunk(x))
        feats.append(self.action_mlp(action_prev))
        h = self.fusion(torch.cat(feats, dim=1))
        mu = self.head_mu(h).reshape(h.shape[0], self.z_channels, *self.mu_size)
        if self.mu_size != self.z_hw:
            mu = F.interpolate(mu, size=self.z_hw, mode="bilinear", align_corners=False)
        return mu, self.head_logvar(h)
