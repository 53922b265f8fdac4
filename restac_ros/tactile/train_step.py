"""Training objective of the VQ-VAE (used by ``restac-train-vqvae``).

Training-only heads (never part of the published ``state_dict``; saved under
the checkpoint's top-level ``restac_train_state`` entry, which readers ignore):

- ``decoder``: a light convolutional decoder z_real [B, 3, 16, 20] ->
  tactile at 1/4 resolution [B, 3, 32, 40] (the target is the tactile image
  area-averaged 4x4).  Reconstruction keeps z_real informative; a full-size
  VQGAN decoder would triple the CPU cost for no benefit to the encoder.
- ``event_decoder``: q_event [B, 64] -> the residual z_real - mu
  [B, 3, 16, 20], so the code must carry the unexpected tactile change.

Losses: recon L1 + Gaussian NLL of z_real (stop-grad) under N(mu, exp(logvar))
(0.5 * (mean sq. error * exp(-logvar) + logvar)) + residual reconstruction
through the straight-through q_event + commitment
``beta * |h_event - sg(q)|^2``.  Codebooks are updated by EMA
(``ema_decay``, ``ema_epsilon`` from ``residual_vq_config``, the published
VectorQuantizerEMA's buffers ``cluster_size``/``embed_avg``), initialised from the first batch's
residuals, and dead codes (unused for ``dead_after`` consecutive steps) are
restarted from random residuals of the current batch.

``loss`` is the joint stage-1 objective; ``event_loss`` (also used inside it)
is the stage-2 objective on cached eval-mode latents (see ``train.py``).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

from restac_ros.tactile.config import VQVAEHParams
from restac_ros.tactile.event_vq import Codebook
from restac_ros.tactile.model import ResidualVQVAE


class LightDecoder(nn.Module):
    def __init__(self, z_channels: int, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(z_channels, width, 3, 1, 1), nn.GELU(),
            nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(width, width, 3, 1, 1),
            nn.GELU(), nn.Conv2d(width, 3, 3, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class EventDecoder(nn.Module):
    def __init__(self, dim: int, z_channels: int, z_hw: tuple[int, int], width: int = 128):
        super().__init__()
        self.shape = (z_channels, *z_hw)
        self.net = nn.Sequential(nn.Linear(dim, width), nn.GELU(),
                                 nn.Linear(width, z_channels * z_hw[0] * z_hw[1]))

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return self.net(q).reshape(q.shape[0], *self.shape)


@dataclasses.dataclass
class LossWeights:
    recon: float = 1.0
    nll: float = 1.0
    event: float = 1.0


class VQVAETrainer(nn.Module):
    """Inference model plus training-only heads; computes losses and EMA codebook updates."""

    def __init__(self, hp: VQVAEHParams, dead_after: int = 20):
        super().__init__()
        self.hp = hp
        self.model = ResidualVQVAE(hp)
        if not hp.rvq.use_ema:
            raise ValueError("the trainer updates codebooks by EMA: residual_vq_config.use_ema "
                             "must be True")
        self.decoder = LightDecoder(hp.latent_channels)
        self.event_decoder = EventDecoder(hp.rvq.e_dim, hp.latent_channels, hp.dd.z_hw)
        self.dead_after = dead_after
        self.codebooks_initialised = False
        self.unused_steps = [torch.zeros(hp.rvq.n_e, dtype=torch.long)
                             for _ in range(hp.num_quantizers)]

    def train_state(self) -> dict:
        return {"decoder": self.decoder.state_dict(),
                "event_decoder": self.event_decoder.state_dict()}

    def loss(self, tactile, views, action_prev, w: LossWeights) -> tuple[torch.Tensor, dict]:
        """Stage 1: reconstruction + Prophet NLL + event/codebook terms, all jointly."""
        m = self.model
        mu, logvar = m.prophet_encoder(views, action_prev)
        z_real = m.encode_tactile(tactile)
        recon = F.l1_loss(self.decoder(z_real), F.avg_pool2d(tactile, 4))
        sq = (z_real.detach() - mu).pow(2).flatten(1).mean(1, keepdim=True)
        nll = (0.5 * (sq * torch.exp(-logvar) + logvar)).mean()
        ev, stats = self.event_loss(mu.detach(), z_real.detach())
        total = w.recon * recon + w.nll * nll + w.event * ev
        stats.update(recon=recon.item(), nll=nll.item(), logvar=logvar.mean().item())
        return total, stats

    def event_loss(self, mu: torch.Tensor, z_real: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Event encoder + codebook objective on given latents (no gradient into them)."""
        h = self.model.event_encoder(mu, z_real)
        if self.training and not self.codebooks_initialised:
            self.init_codebooks(h.detach())
        q, _, stages = self.model.residual_vq(h)
        commit = sum(F.mse_loss(h_in, q_i.detach())
                     for h_in, q_i in zip(self._stage_inputs(h, stages), stages, strict=True))
        q_st = h + (q - h).detach()
        event = F.mse_loss(self.event_decoder(q_st), z_real - mu)
        if self.training:
            self._ema_update(h.detach(), stages)
        total = event + self.hp.rvq.beta * commit
        return total, {"event": event.item(), "commit": float(commit.detach())}

    @staticmethod
    def _stage_inputs(h: torch.Tensor, stages: list[torch.Tensor]) -> list[torch.Tensor]:
        inputs, r = [], h
        for q in stages:
            inputs.append(r)
            r = r - q.detach()
        return inputs

    @torch.no_grad()
    def init_codebooks(self, h: torch.Tensor) -> None:
        """Data-dependent initialisation: each stage's entries are random residuals of ``h``."""
        r = h
        for i, cb in enumerate(self.model.residual_vq.codebooks()):
            pick = torch.randint(0, r.shape[0], (cb.embed.shape[0],), device=r.device)
            noise = 0.01 * r.std().clamp_min(1e-3) * torch.randn_like(cb.embed)
            cb.embed.copy_(r[pick] + noise)
            cb.embed_avg.copy_(cb.embed)
            cb.cluster_size.fill_(1.0)
            self.unused_steps[i].zero_()
            r = r - F.embedding(cb.nearest(r), cb.embed)
        self.codebooks_initialised = True

    @torch.no_grad()
    def _ema_update(self, h: torch.Tensor, stages: list[torch.Tensor]) -> None:
        decay, eps = self.hp.rvq.ema_decay, self.hp.rvq.ema_epsilon
        r = h
        cbs: list[Codebook] = self.model.residual_vq.codebooks()
        for i, (cb, q) in enumerate(zip(cbs, stages, strict=True)):
            idx = cb.nearest(r)
            onehot = F.one_hot(idx, cb.embed.shape[0]).to(r.dtype)
            counts = onehot.sum(0)
            cb.cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
            cb.embed_avg.mul_(decay).add_(onehot.t() @ r, alpha=1 - decay)
            n = cb.cluster_size.sum()
            smoothed = (cb.cluster_size + eps) / (n + cb.embed.shape[0] * eps) * n
            cb.embed.copy_(cb.embed_avg / smoothed[:, None])
            unused = self.unused_steps[i]
            unused.add_(1)
            unused[counts.cpu() > 0] = 0
            dead = (unused >= self.dead_after).to(r.device)
            if bool(dead.any()):
                pick = torch.randint(0, r.shape[0], (int(dead.sum()),), device=r.device)
                fresh = r[pick] + 0.01 * r.std() * torch.randn_like(r[pick])
                cb.embed[dead] = fresh
                cb.embed_avg[dead] = fresh * cb.cluster_size[dead].clamp_min(1.0)[:, None]
                cb.cluster_size[dead] = cb.cluster_size[dead].clamp_min(1.0)
                unused[dead.cpu()] = 0
            r = r - q
