"""``restac-train-vqvae --bag BAG... --out model.ckpt``: train the Residual VQ-VAE from rosbags.

Reads frames with ``bag_frames.read_bag_frames``: the core's ``BagDataset`` +
``ObservationBuilder`` at ``--rate`` Hz in bag time, i.e. exactly the tactile,
camera views and raw ``action_prev`` the policy's tactile encoder sees.  Trains
reconstruction, the Prophet (Gaussian NLL with logvar) and the event encoder +
EMA codebooks (``train_step.py``),
and writes a ``.ckpt`` in the published fork's layout and hparams names
(docs/vqvae.md): ``ResidualVQVAEWrapper``, ``load_jax_vqvae`` and the fork's own
wrapper load it.  The training-only decoders go to the checkpoint's top-level
``restac_train_state`` entry, outside ``state_dict`` (as Lightning keeps
``optimizer_states``), which every reader ignores.

Training runs in two stages (see ``train_vqvae``).  Widths default small for a
CPU and small data (ch 32, one residual block per level, a 64-entry codebook),
still the published layout; ``--ch 128 --num-res-blocks 2 --codebook-size 512``
gives the published sizes.  ``--num-quantizers N>1`` and
``--prophet-image-size S`` (views resized to SxS before the ResNet, a CPU
shortcut) are restac_ros extensions: they are written under
``hyper_parameters['restac_extensions']`` and the fork's wrapper cannot run
such a file.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from restac_ros.core.bag_dataset import BagError
from restac_ros.tactile.bag_frames import (
    BagFrames,
    BagFramesError,
    concat_frames,
    read_bag_frames,
)
from restac_ros.tactile.checkpoint import TRAIN_STATE_KEY, save_checkpoint
from restac_ros.tactile.config import VQVAEHParams, default_hparams
from restac_ros.tactile.train_step import LossWeights, VQVAETrainer
from restac_ros.tactile.wrapper import auto_device


def frames_to_tensors(frames: BagFrames, image_size: int | None) -> dict[str, torch.Tensor]:
    """Frames ([-1, 1], HWC) -> CHW tensors; with ``image_size`` (the prophet_input_size
    extension) views pre-resized to it (bilinear commutes with the per-channel affine
    ImageNet normalisation)."""
    tactile = torch.from_numpy(frames.tactile).permute(0, 3, 1, 2).float()
    views = []
    for start in range(0, len(frames), 64):
        v = torch.from_numpy(frames.views[start:start + 64]).float()
        b, nv, h, w, c = v.shape
        v = v.permute(0, 1, 4, 2, 3).reshape(b * nv, c, h, w)
        if image_size is not None and (h, w) != (image_size, image_size):
            v = F.interpolate(v, size=(image_size, image_size), mode="bilinear",
                              align_corners=False)
        views.append(v.reshape(b, nv, c, *v.shape[-2:]))
    return {"tactile": tactile.contiguous(), "views": torch.cat(views).contiguous(),
            "action_prev": torch.from_numpy(frames.action_prev).float()}


def _batches(rng: np.random.Generator, n: int, batch_size: int):
    """Endless shuffled index batches (reshuffled every epoch)."""
    while True:
        order = rng.permutation(n)
        for pos in range(0, n - min(batch_size, n) + 1, min(batch_size, n)):
            yield torch.from_numpy(order[pos:pos + min(batch_size, n)])


@torch.no_grad()
def cache_latents(trainer: VQVAETrainer, data: dict, device, batch: int = 16):
    """Eval-mode (running-stat BatchNorm) mu and z_real for every frame, as at inference."""
    trainer.eval()
    m, mus, zs = trainer.model, [], []
    for s in range(0, data["tactile"].shape[0], batch):
        mu, _ = m.prophet_encoder(data["views"][s:s + batch].to(device),
                                  data["action_prev"][s:s + batch].to(device))
        mus.append(mu)
        zs.append(m.encode_tactile(data["tactile"][s:s + batch].to(device)))
    return torch.cat(mus), torch.cat(zs)


def _step(opt, sched, params, loss, stats) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite training loss: {stats}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()


def train_vqvae(frames: BagFrames, hp: VQVAEHParams, *, steps: int = 300,
                event_steps: int = 300, batch_size: int = 8, event_batch_size: int = 32,
                lr: float = 1e-3, device: torch.device | str = "cpu", seed: int = 0,
                progress: bool = True, weights: LossWeights | None = None) -> VQVAETrainer:
    """Two stages; returns the trainer with its model in eval mode.

    1. ``steps`` joint steps on images: reconstruction, Prophet NLL, event + codebook.
    2. ``event_steps`` steps of the event encoder + codebook alone on latents cached
       with eval-mode BatchNorm (what inference sees); the codebook is re-initialised
       from those latents first.  Cheap: no image convolutions.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = len(frames)
    if n < 2:
        raise ValueError(f"need at least 2 frames to train, got {n} from {frames.source}")
    data = frames_to_tensors(frames, hp.ext.prophet_input_size)
    trainer = VQVAETrainer(hp).to(device)
    weights = weights or LossWeights()
    params = list(trainer.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr * 0.1)
    trainer.train()
    batches = _batches(rng, n, batch_size)
    bar = tqdm(range(steps), desc="vqvae stage 1", disable=not progress, file=sys.stderr)
    for _ in bar:
        idx = next(batches)
        loss, stats = trainer.loss(*(data[k][idx].to(device)
                                     for k in ("tactile", "views", "action_prev")), weights)
        _step(opt, sched, params, loss, stats)
        bar.set_postfix({k: f"{v:.3g}" for k, v in stats.items()})
    if event_steps <= 0:
        trainer.eval()
        return trainer
    mu, z_real = cache_latents(trainer, data, device)
    trainer.train()
    with torch.no_grad():
        trainer.init_codebooks(trainer.model.event_encoder(mu, z_real))
    params = [*trainer.model.event_encoder.parameters(), *trainer.event_decoder.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=event_steps, eta_min=lr * 0.1)
    batches = _batches(rng, n, event_batch_size)
    bar = tqdm(range(event_steps), desc="vqvae stage 2", disable=not progress, file=sys.stderr)
    for _ in bar:
        idx = next(batches).to(mu.device)
        loss, stats = trainer.event_loss(mu[idx], z_real[idx])
        _step(opt, sched, params, loss, stats)
        bar.set_postfix({k: f"{v:.3g}" for k, v in stats.items()})
    trainer.eval()
    return trainer


def save_trained(trainer: VQVAETrainer, path: str) -> None:
    save_checkpoint(path, trainer.model, trainer.hp,
                    extra={TRAIN_STATE_KEY: trainer.train_state()})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="restac-train-vqvae", description=__doc__.split("\n")[0])
    p.add_argument("--bag", nargs="+", required=True, help="rosbag2 directories")
    p.add_argument("--out", required=True, help="output .ckpt path")
    p.add_argument("--steps", type=int, default=300, help="stage-1 (image) steps")
    p.add_argument("--event-steps", type=int, default=300,
                   help="stage-2 steps (event encoder + codebook on cached latents)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--event-batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ch", type=int, default=32, help="VQGAN base width (multiple of 32)")
    p.add_argument("--num-res-blocks", type=int, default=1)
    p.add_argument("--codebook-size", type=int, default=64, help="residual_vq_config.n_e")
    p.add_argument("--num-quantizers", type=int, default=1,
                   help="codebook stages; >1 is a restac_ros extension (not the published format)")
    p.add_argument("--prophet-image-size", type=int, default=None,
                   help="resize views to this square before the ResNet (a restac_ros extension; "
                        "default: the views' own 224x224, as published)")
    p.add_argument("--rate", type=float, default=15.0,
                   help="observation rate in bag time, Hz (default: the 15 Hz control rate)")
    p.add_argument("--device", default=None, help="cpu/cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else auto_device()
    hp = default_hparams(ch=args.ch, n_e=args.codebook_size,
                         num_quantizers=args.num_quantizers, num_res_blocks=args.num_res_blocks,
                         prophet_input_size=args.prophet_image_size)
    t0 = time.perf_counter()
    try:
        frames = concat_frames([read_bag_frames(b, rate_hz=args.rate) for b in args.bag])
    except (BagError, BagFramesError, OSError) as exc:
        print(f"restac-train-vqvae: error: {exc}", file=sys.stderr)
        return 2
    print(f"read {len(frames)} frames from {len(args.bag)} bag(s) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    trainer = train_vqvae(frames, hp, steps=args.steps, event_steps=args.event_steps,
                          batch_size=args.batch_size, event_batch_size=args.event_batch_size,
                          lr=args.lr, device=device, seed=args.seed,
                          progress=not args.no_progress)
    save_trained(trainer, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
