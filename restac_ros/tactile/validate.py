"""Real-data validation of a trained VQ-VAE: does it see contact on a held-out episode?

    python -m restac_ros.tactile.validate --train BAG... --heldout BAG [--ckpt OUT.ckpt]

Trains on the training bags (``restac-train-vqvae`` defaults unless flags
say otherwise), saves the checkpoint, reloads it strictly through
``ResidualVQVAEWrapper`` and encodes every frame (frames from the core's
observation path, see ``bag_frames``).  Contact-detection AUROC on
the held-out bag, against ``/contact/ground_truth``:

- ``auroc_q_event``: a logistic-regression probe fitted on the training
  frames' q_event (standardised), scored on the held-out q_event;
- ``auroc_codes``: each code tuple's contact rate on the training frames
  (Laplace-smoothed) as the held-out score.

Also reports whether logvar is finite on every frame.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence

import numpy as np
import torch

from restac_ros.tactile.bag_frames import BagFrames, concat_frames, read_bag_frames
from restac_ros.tactile.config import default_hparams
from restac_ros.tactile.train import save_trained, train_vqvae
from restac_ros.tactile.wrapper import ResidualVQVAEWrapper, auto_device


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes (positives {n_pos}, negatives {n_neg})")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def encode(wrapper: ResidualVQVAEWrapper, frames: BagFrames, batch: int = 16) -> dict:
    outs: dict[str, list[np.ndarray]] = {"codes": [], "q_event": [], "logvar": []}
    for s in range(0, len(frames), batch):
        o = wrapper.forward(frames.tactile[s:s + batch], frames.views[s:s + batch],
                            frames.action_prev[s:s + batch])
        for k in outs:
            outs[k].append(getattr(o, k).cpu().numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}


def logistic_probe(x_train, y_train, x_test, steps: int = 500, lr: float = 0.5) -> np.ndarray:
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    a, b = (x_train - mean) / std, (x_test - mean) / std
    w, c, y = np.zeros(a.shape[1]), 0.0, y_train.astype(np.float64)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(a @ w + c)))
        w -= lr * (a.T @ (p - y) / len(y) + 1e-3 * w)
        c -= lr * float(np.mean(p - y))
    return b @ w + c


def code_rate_scores(codes_train, y_train, codes_test) -> np.ndarray:
    stats: dict[tuple, list[float]] = {}
    for code, y in zip(map(tuple, codes_train), y_train, strict=True):
        s = stats.setdefault(code, [0.0, 0.0])
        s[0] += float(y)
        s[1] += 1.0
    prior = float(np.mean(y_train))
    return np.array([(stats.get(tuple(c), [0.0, 0.0])[0] + prior) /
                     (stats.get(tuple(c), [0.0, 0.0])[1] + 1.0) for c in codes_test])


def evaluate(ckpt: str, train: BagFrames, heldout: BagFrames) -> dict:
    if train.contact is None or heldout.contact is None:
        raise ValueError("validation needs /contact/ground_truth in every bag")
    wrapper = ResidualVQVAEWrapper(ckpt, tactile_layout="HWC", tactile_range="[-1,1]",
                                   visual_layout="HWC", visual_range="[-1,1]")
    tr, ho = encode(wrapper, train), encode(wrapper, heldout)
    probe = logistic_probe(tr["q_event"], train.contact, ho["q_event"])
    lv = np.concatenate([tr["logvar"], ho["logvar"]])
    return {
        "auroc_q_event": auroc(probe, heldout.contact),
        "auroc_codes": auroc(code_rate_scores(tr["codes"], train.contact, ho["codes"]),
                             heldout.contact),
        "logvar_finite": bool(np.all(np.isfinite(lv))),
        "logvar_min": float(lv.min()), "logvar_max": float(lv.max()),
        "codes_used": int(len({tuple(c) for c in np.concatenate([tr["codes"], ho["codes"]])})),
        "train_frames": len(train), "heldout_frames": len(heldout),
        "heldout_contact_fraction": float(np.mean(heldout.contact)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m restac_ros.tactile.validate")
    p.add_argument("--train", nargs="+", required=True)
    p.add_argument("--heldout", required=True)
    p.add_argument("--ckpt", default=None, help="where to keep the trained checkpoint")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--event-steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rate", type=float, default=15.0, help="observation rate (bag time), Hz")
    p.add_argument("--codebook-size", type=int, default=64)
    p.add_argument("--prophet-image-size", type=int, default=64,
                   help="views resized to this square before the ResNet (restac_ros extension)")
    p.add_argument("--event-batch-size", type=int, default=32)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    train = concat_frames([read_bag_frames(b, rate_hz=args.rate) for b in args.train])
    heldout = read_bag_frames(args.heldout, rate_hz=args.rate)
    hp = default_hparams(ch=32, n_e=args.codebook_size, num_res_blocks=1,
                         prophet_input_size=args.prophet_image_size)
    device = torch.device(args.device) if args.device else None
    trainer = train_vqvae(train, hp, steps=args.steps, event_steps=args.event_steps,
                          batch_size=args.batch_size, event_batch_size=args.event_batch_size,
                          device=device or auto_device())
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.ckpt or os.path.join(tmp, "vqvae.ckpt")
        save_trained(trainer, ckpt)
        result = evaluate(ckpt, train, heldout)
    print(json.dumps(result, indent=2))
    return 0 if result["logvar_finite"] else 1


if __name__ == "__main__":
    sys.exit(main())
