"""Prophet: predicts the expected tactile latent ``mu`` and its uncertainty ``logvar``.

Layout of the published ``SpatialTemporalProphetPT`` (key names below
``prophet_encoder.``):
- ``visual_backbone.{0,1,4,5,6,7}``: ONE torchvision ResNet18 without ``fc``,
  as an ``nn.Sequential`` of its children (conv1, bn1, relu, maxpool,
  layer1..4, avgpool), shared by all views: the views are folded into the batch.
- ``action_mlp.0``: Linear(action_dim, hidden_dims[0]), ReLU, Dropout(0.1).
- ``fusion_body.{4i,4i+1}``: ``max(1, fusion_depth - 1)`` blocks of
  Linear/LayerNorm(eps 1e-5)/exact GELU/Dropout(0.1), width ``mid_dim``, on
  concat(view features (view-major, 3 x 512 for 'concat', their mean for
  'mean'), action features).
- ``head_mu``: reshaped channels-first to [B, C, *bottleneck_resolution] and
  bilinearly upsampled (align_corners False) to ``latent_shape`` if it differs;
  ``head_logvar`` -> [B, 1].

Input views are [B, V, 3, H, W] in [-1, 1] (order: base, left wrist, right
wrist); they are mapped to [0, 1] and ImageNet-normalised here, the same
operations in the same order as the published wrapper.  Extensions
(``restac_extensions``): ``shared_visual_backbone=False`` keeps one trunk per
view under ``visual_backbones.{v}``; ``prophet_input_size`` resizes the
normalised views before the trunk.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from restac_ros.tactile.config import VQVAEHParams

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DROPOUT = 0.1  # published; identity at inference


def resnet18_trunk() -> nn.Sequential:
    """torchvision resnet18 children without ``fc``: keys 0 (conv1), 1 (bn1), 4..7 (layer1..4)."""
    return nn.Sequential(*list(torchvision.models.resnet18(weights=None).children())[:-1])


def _fusion_block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Linear(cin, cout), nn.LayerNorm(cout, eps=1e-5), nn.GELU(approximate="none"),
            nn.Dropout(DROPOUT)]


class Prophet(nn.Module):
    def __init__(self, hp: VQVAEHParams):
        super().__init__()
        pc = self.pc = hp.prophet
        self.input_size = hp.ext.prophet_input_size
        if hp.ext.shared_visual_backbone:
            self.visual_backbone = resnet18_trunk()
        else:
            self.visual_backbones = nn.ModuleList(resnet18_trunk() for _ in range(pc.num_views))
        self.action_mlp = nn.Sequential(nn.Linear(pc.action_dim, pc.action_hidden_dim),
                                        nn.ReLU(), nn.Dropout(DROPOUT))
        layers = _fusion_block(pc.visual_feat_dim + pc.action_hidden_dim, pc.mid_dim)
        for _ in range(pc.num_fusion_blocks - 1):
            layers += _fusion_block(pc.mid_dim, pc.mid_dim)
        self.fusion_body = nn.Sequential(*layers)
        c, hb, wb = pc.latent_shape[0], *pc.bottleneck_resolution
        self.head_mu = nn.Linear(pc.mid_dim, c * hb * wb)
        self.head_logvar = nn.Linear(pc.mid_dim, 1)
        self.register_buffer("imagenet_mean", torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("imagenet_std", torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1),
                             persistent=False)

    def view_features(self, views: torch.Tensor) -> torch.Tensor:
        """views [B, V, 3, H, W] in [-1, 1] -> [B, V, 512]."""
        x = (views + 1.0) / 2.0
        x = (x - self.imagenet_mean) / self.imagenet_std
        b, v = x.shape[:2]
        x = x.reshape(b * v, *x.shape[2:])
        if self.input_size is not None and x.shape[-2:] != (self.input_size,) * 2:
            x = F.interpolate(x, size=(self.input_size,) * 2, mode="bilinear",
                              align_corners=False)
        if hasattr(self, "visual_backbone"):
            return self.visual_backbone(x).flatten(1).reshape(b, v, -1)
        x = x.reshape(b, v, *x.shape[1:])
        return torch.stack([t(x[:, i]).flatten(1) for i, t in enumerate(self.visual_backbones)],
                           dim=1)

    def forward(self, views: torch.Tensor, action_prev: torch.Tensor):
        """views [B, V, 3, H, W] in [-1, 1]; action_prev [B, action_dim] -> (mu, logvar)."""
        feat = self.view_features(views)
        b = feat.shape[0]
        feat = feat.reshape(b, -1) if self.pc.view_fusion == "concat" else feat.mean(dim=1)
        h = self.fusion_body(torch.cat([feat, self.action_mlp(action_prev)], dim=1))
        c, hb, wb = self.pc.latent_shape[0], *self.pc.bottleneck_resolution
        mu = self.head_mu(h).view(b, c, hb, wb)
        if (hb, wb) != tuple(self.pc.latent_shape[1:]):
            mu = F.interpolate(mu, size=tuple(self.pc.latent_shape[1:]), mode="bilinear",
                               align_corners=False)
        return mu, self.head_logvar(h)
