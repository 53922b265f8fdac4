"""Event encoder and residual VQ with EMA codebooks (PyTorch).

Event encoder (``event_encoder.``): concat(mu, z_real - mu) -> ``conv_in`` 3x3
to ``event_hidden_dim`` + exact GELU -> ``blocks.{i}`` residual blocks
(GroupNorm(8, eps 1e-5) -> GELU -> 3x3 conv, twice, plus identity skip) ->
``conv_out`` 1x1 to ``dim`` -> global max pool -> h_event [B, dim].

Residual VQ (``residual_vq.layers.{i}._codebook.``): buffers ``embed`` [K, D],
``cluster_size`` [K], ``embed_avg`` [K, D].  Lookup uses ``embed`` (squared L2
nearest); stage i quantises the residual left by stages < i; q_event is the
sum of the selected entries.  n_q = 1 is the published layout.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from restac_ros.tactile.config import ResidualVQConfig


def _gn8(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(8, c, eps=1e-5)


class EventResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm1, self.conv1 = _gn8(c), nn.Conv2d(c, c, 3, 1, 1)
        self.norm2, self.conv2 = _gn8(c), nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.gelu(self.norm1(x)))
        return x + self.conv2(F.gelu(self.norm2(h)))


class EventEncoder(nn.Module):
    def __init__(self, z_channels: int, cfg: ResidualVQConfig):
        super().__init__()
        hid = cfg.event_hidden_dim
        self.conv_in = nn.Conv2d(2 * z_channels, hid, 3, 1, 1)
        self.blocks = nn.ModuleList(EventResBlock(hid) for _ in range(cfg.event_num_res_blocks))
        self.conv_out = nn.Conv2d(hid, cfg.dim, 1)

    def forward(self, mu: torch.Tensor, z_real: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.conv_in(torch.cat([mu, z_real - mu], dim=1)))
        for block in self.blocks:
            h = block(h)
        return torch.amax(self.conv_out(h), dim=(2, 3))


class EMACodebook(nn.Module):
    def __init__(self, codebook_size: int, dim: int):
        super().__init__()
        self.register_buffer("embed", torch.randn(codebook_size, dim))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed_avg", self.embed.clone())

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the squared-L2 nearest ``embed`` row for each row of x [N, D]."""
        e = self.embed
        dist = x.pow(2).sum(1, keepdim=True) - 2.0 * (x @ e.t()) + e.pow(2).sum(1)[None, :]
        return dist.argmin(dim=1)


class _Layer(nn.Module):
    def __init__(self, codebook_size: int, dim: int):
        super().__init__()
        self._codebook = EMACodebook(codebook_size, dim)


class ResidualVQ(nn.Module):
    def __init__(self, cfg: ResidualVQConfig):
        super().__init__()
        self.layers = nn.ModuleList(_Layer(cfg.codebook_size, cfg.dim)
                                    for _ in range(cfg.num_quantizers))

    def codebooks(self) -> list[EMACodebook]:
        return [layer._codebook for layer in self.layers]

    def forward(self, x: torch.Tensor):
        """x [B, D] -> (q [B, D], codes int64 [B, n_q], per-stage quantized list)."""
        residual, q_sum, codes, stages = x, torch.zeros_like(x), [], []
        for cb in self.codebooks():
            idx = cb.nearest(residual)
            q = F.embedding(idx, cb.embed)
            codes.append(idx)
            stages.append(q)
            q_sum = q_sum + q
            residual = residual - q
        return q_sum, torch.stack(codes, dim=1), stages
