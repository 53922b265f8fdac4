"""VQGAN (taming-transformers) style convolutional encoder in PyTorch.

Parameter names follow taming's ``Encoder``/``Decoder`` (``conv_in``,
``down.{i}.block.{j}``, ``down.{i}.attn.{j}``, ``down.{i}.downsample.conv``,
``mid.block_1``, ``mid.attn_1``, ``mid.block_2``, ``norm_out``, ``conv_out``).
Numerics: GroupNorm(32, eps 1e-6), swish, attention wherever the *nominal
square* ``resolution`` (halved per level) is in ``attn_resolutions``, and the
stride-2 downsampling conv runs after padding right/bottom by one
(``resamp_with_conv`` False: a 2x2 average pool, no parameters).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from restac_ros.tactile.config import DDConfig


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = group_norm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1 q/k/v/proj_out convs."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = group_norm(c)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        b, c, hh, ww = h.shape
        q = self.q(h).reshape(b, c, hh * ww).permute(0, 2, 1)  # b, hw, c
        k = self.k(h).reshape(b, c, hh * ww)  # b, c, hw
        w = torch.softmax(torch.bmm(q, k) * (c ** -0.5), dim=2)  # b, hw(query), hw(key)
        v = self.v(h).reshape(b, c, hh * ww)
        out = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """taming's Downsample: padded stride-2 conv, or a 2x2 average pool without conv."""

    def __init__(self, c: int, with_conv: bool):
        super().__init__()
        if with_conv:
            self.conv = nn.Conv2d(c, c, 3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "conv"):
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


def attn_levels(dd: DDConfig) -> list[bool]:
    """Per encoder level: whether its blocks carry attention (from the nominal resolution)."""
    res, out = dd.resolution, []
    for _ in range(len(dd.ch_mult)):
        out.append(res in dd.attn_resolutions)
        res //= 2
    return out


class Encoder(nn.Module):
    def __init__(self, dd: DDConfig):
        super().__init__()
        self.conv_in = nn.Conv2d(dd.in_channels, dd.ch, 3, 1, 1)
        in_mult = (1, *dd.ch_mult)
        self.down = nn.ModuleList()
        use_attn = attn_levels(dd)
        cout = dd.ch
        for lvl, mult in enumerate(dd.ch_mult):
            level = nn.Module()
            cin, cout = dd.ch * in_mult[lvl], dd.ch * mult
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(dd.num_res_blocks):
                blocks.append(ResnetBlock(cin, cout, dd.dropout))
                cin = cout
                if use_attn[lvl]:
                    attns.append(AttnBlock(cout))
            level.block, level.attn = blocks, attns
            if lvl != dd.num_down:
                level.downsample = Downsample(cout, dd.resamp_with_conv)
            self.down.append(level)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(cout, cout, dd.dropout)
        self.mid.attn_1 = AttnBlock(cout)
        self.mid.block_2 = ResnetBlock(cout, cout, dd.dropout)
        self.norm_out = group_norm(cout)
        self.conv_out = nn.Conv2d(cout, dd.z_channels, 3, 1, 1)
        self.num_down = dd.num_down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for lvl, level in enumerate(self.down):
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn) > 0:
                    h = level.attn[j](h)
            if lvl != self.num_down:
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(swish(self.norm_out(h)))
