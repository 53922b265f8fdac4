"""``restac-train-vqvae --bag BAG... --out model.ckpt``: train the Residual VQ-VAE from rosbags.

Reads frames with ``bag_frames.read_bag_frames`` (tactile anchors, nearest
earlier camera/joint messages), trains reconstruction, the Prophet (Gaussian
NLL with logvar) and the event encoder + EMA codebooks (``train_step.py``),
and writes a published-format ``.ckpt`` that ``ResidualVQVAEWrapper`` and
``load_jax_vqvae`` load strictly.  The training-only decoders go to the
checkpoint's top-level ``restac_train_state`` entry, outside ``state_dict``.

Defaults are sized for a CPU and small data: ch 32, one residual block per
level, a 64-entry codebook and the Prophet trunks fed 64x64 views
(``prophet_config.image_size``; the published model uses 224).  Every size is
a flag; ``--prophet-image-size 224 --ch 128 --num-res-blocks 2`` gives the
published shapes.
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

from restac_ros.tactile.bag_frames import BagFrames, concat_frames, read_bag_frames
from restac_ros.tactile.checkpoint import TRAIN_STATE_KEY, save_checkpoint
from restac_ros.tactile.config import VQVAEHParams, default_hparams
from restac_ros.tactile.train_step import LossWeights, VQVAETrainer
from restac_ros.tactile.wrapper import auto_device


def frames_to_tensors(frames: BagFrames, image_size: int) -> dict[str, torch.Tensor]:
    """uint8 frames -> float tensors in [-1, 1]; views pre-resized to the Prophet's input size
    (bilinear commutes with the per-channel affine ImageNet normalisation)."""
    tactile = torch.from_numpy(frames.tactile).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    views = []
    for start in range(0, len(frames), 64):
        v = torch.from_numpy(frames.views[start:start + 64]).float() / 127.5 - 1.0
        b, nv, h, w, c = v.shape
        v = v.permute(0, 1, 4, 2, 3).reshape(b * nv, c, h, w)
        if (h, w) != (image_size, image_size):
            v = F.interpolate(v, size=(image_size, image_size), mode="bilinear",
                              align_corners=False)
        views.append(v.reshape(b, nv, c, image_size, image_size))
    return {"tactile": tactile.contiguous(), "views": torch.cat(views).contiguous(),
            "action_prev": torch.from_numpy(frames.action_prev).float()}


def train_vqvae(frames: BagFrames, hp: VQVAEHParams, *, steps: int = 300, batch_size: int = 8,
                lr: float = 1e-3, device: torch.device | str = "cpu", seed: int = 0,
                progress: bool = True, weights: LossWeights | None = None) -> VQVAETrainer:
    """Train on ``frames`` for ``steps`` optimizer steps; returns the trainer (model in eval)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = frames_to_tensors(frames, hp.prophet.image_size)
    n = len(frames)
    if n < 2:
        raise ValueError(f"need at least 2 frames to train, got {n} from {frames.source}")
    trainer = VQVAETrainer(hp).to(device)
    trainer.train()
    opt = torch.optim.Adam(trainer.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr * 0.1)
    weights = weights or LossWeights()
    bar = tqdm(range(steps), desc="train-vqvae", disable=not progress, file=sys.stderr)
    order = rng.permutation(n)
    pos = 0
    for _ in bar:
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = torch.from_numpy(order[pos:pos + min(batch_size, n)])
        pos += batch_size
        batch = [data[k][idx].to(device) for k in ("tactile", "views", "action_prev")]
        loss, stats = trainer.loss(*batch, weights)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss: {stats}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainer.parameters(), 1.0)
        opt.step()
        sched.step()
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
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ch", type=int, default=32, help="VQGAN base width (multiple of 32)")
    p.add_argument("--num-res-blocks", type=int, default=1)
    p.add_argument("--codebook-size", type=int, default=64)
    p.add_argument("--num-quantizers", type=int, default=1)
    p.add_argument("--prophet-image-size", type=int, default=64)
    p.add_argument("--stride", type=int, default=2, help="use every n-th tactile frame")
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
    hp = default_hparams(ch=args.ch, codebook_size=args.codebook_size,
                         num_quantizers=args.num_quantizers, num_res_blocks=args.num_res_blocks,
                         image_size=args.prophet_image_size)
    t0 = time.perf_counter()
    frames = concat_frames([read_bag_frames(b, stride=args.stride) for b in args.bag])
    print(f"read {len(frames)} frames from {len(args.bag)} bag(s) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    trainer = train_vqvae(frames, hp, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                          device=device, seed=args.seed, progress=not args.no_progress)
    save_trained(trainer, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
