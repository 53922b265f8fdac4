"""Event encoder and EMA vector quantiser (PyTorch), in the published layout.

Event encoder (``event_encoder.``, the published ``EventEncoderPT``):
concat(mu, z_real - mu) (6 ch) -> ``head.0`` 3x3 conv to 64 + exact GELU ->
``body.{0,1,2}`` residual blocks (``norm1``/``conv1``/``norm2``/``conv2``:
GroupNorm(8, eps 1e-5) -> GELU -> 3x3 conv, twice, plus identity skip) ->
``pre_pool`` 1x1 conv to ``e_dim`` -> global max pool -> h_event [B, e_dim].

Quantiser (``residual_vq.``, the published ``VectorQuantizerEMA``): buffers
``embed`` [n_e, e_dim] and, with ``use_ema``, ``cluster_size`` [n_e] and
``embed_avg`` [n_e, e_dim].  Lookup: squared-L2 nearest row of ``embed``
computed as |z|^2 + |e|^2 - 2 z.e (the published order of operations); the
output is z + (e - z), as the published straight-through expression gives in
eval.  "Residual" in the published model means z_real - mu; it has one stage.
Extension ``num_quantizers`` > 1: stages ``residual_vq.stages.{i}`` with the
same buffers, stage i quantising what stages < i left.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from restac_ros.tactile.config import EVENT_HIDDEN_DIM, EVENT_NUM_RES_BLOCKS, ResidualVQConfig


class EventResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, c), nn.Conv2d(c, c, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(8, c), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.gelu(self.norm1(x)))
        return x + self.conv2(F.gelu(self.norm2(h)))


class EventEncoder(nn.Module):
    def __init__(self, latent_channels: int, out_dim: int):
        super().__init__()
        hid = EVENT_HIDDEN_DIM
        self.head = nn.Sequential(nn.Conv2d(2 * latent_channels, hid, 3, padding=1), nn.GELU())
        self.body = nn.Sequential(*(EventResBlock(hid) for _ in range(EVENT_NUM_RES_BLOCKS)))
        self.pre_pool = nn.Conv2d(hid, out_dim, 1)

    def forward(self, mu: torch.Tensor, z_real: torch.Tensor) -> torch.Tensor:
        h = self.pre_pool(self.body(self.head(torch.cat([mu, z_real - mu], dim=1))))
        return torch.amax(h, dim=(2, 3))


class Codebook(nn.Module):
    """One EMA codebook: ``embed`` (+ ``cluster_size``, ``embed_avg`` with EMA)."""

    def __init__(self, n_e: int, e_dim: int, use_ema: bool):
        super().__init__()
        self.register_buffer("embed", torch.randn(n_e, e_dim))
        if use_ema:
            self.register_buffer("cluster_size", torch.zeros(n_e))
            self.register_buffer("embed_avg", self.embed.clone())

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the squared-L2 nearest ``embed`` row for each row of z [N, D]."""
        e = self.embed
        d = (torch.sum(z**2, dim=1, keepdim=True) + torch.sum(e**2, dim=1)
             - 2 * torch.matmul(z, e.t()))
        return torch.argmin(d, dim=1)


class ResidualVQ(Codebook):
    """The published single quantiser (buffers on this module) or, as an extension,
    ``stages`` of codebooks (no buffers here)."""

    def __init__(self, cfg: ResidualVQConfig, num_quantizers: int = 1):
        if num_quantizers == 1:
            super().__init__(cfg.n_e, cfg.e_dim, cfg.use_ema)
        else:
            nn.Module.__init__(self)
            self.stages = nn.ModuleList(Codebook(cfg.n_e, cfg.e_dim, cfg.use_ema)
                                        for _ in range(num_quantizers))

    def codebooks(self) -> list[Codebook]:
        return list(self.stages) if hasattr(self, "stages") else [self]

    def forward(self, z: torch.Tensor):
        """z [B, D] -> (q [B, D], codes int64 [B, n_q], per-stage quantized list)."""
        residual, q_sum, codes, stages = z, None, [], []
        for cb in self.codebooks():
            idx = cb.nearest(residual)
            q = residual + (cb.embed[idx] - residual)
            codes.append(idx)
            stages.append(q)
            q_sum = q if q_sum is None else q_sum + q
            residual = residual - q
        return q_sum, torch.stack(codes, dim=1), stages
