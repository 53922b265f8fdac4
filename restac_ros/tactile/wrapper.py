"""``ResidualVQVAEWrapper``: the frozen PyTorch VQ-VAE behind an explicit-convention API.

    wrapper = ResidualVQVAEWrapper("vqvae.ckpt", tactile_layout="HWC",
                                   tactile_range="uint8", visual_layout="HWC",
                                   visual_range="[-1,1]")
    out = wrapper.forward(tactile, visual_3views, action_prev)
    out.codes [B, n_q] int64, out.q_event [B, 64], out.logvar [B, 1],
    out.mu / out.z_real [B, 3, 16, 20], out.h_event [B, 64]   (torch, on wrapper.device)

Loading is strict (see ``checkpoint.py``); a checkpoint that fails to load
raises, there is no fallback.  The model is in eval mode with gradients off.
On CUDA, TF32 is switched off around each forward (it moves outputs by ~1e-3).
"""

from __future__ import annotations

import contextlib
import os

import torch

from restac_ros.tactile.checkpoint import load_model
from restac_ros.tactile.inputs import (
    action_to_canonical,
    check_convention,
    tactile_to_canonical,
    views_to_canonical,
)
from restac_ros.tactile.model import VQVAEOutput


def auto_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def full_fp32():
    """Disable TF32 matmuls/convolutions for the duration (restores previous settings)."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


class ResidualVQVAEWrapper:
    """Frozen Residual VQ-VAE loaded from a published-format ``.ckpt``.

    Conventions are keyword-only and required: ``*_layout`` is ``"HWC"`` or
    ``"CHW"``; ``*_range`` is ``"uint8"`` (uint8 0..255), ``"[0,1]"`` or
    ``"[-1,1]"`` (floats).  ``device``: None -> CUDA if available, else CPU.
    """

    def __init__(self, checkpoint_path: str | os.PathLike, *, tactile_layout: str,
                 tactile_range: str, visual_layout: str, visual_range: str,
                 device: str | torch.device | None = None):
        check_convention("tactile", tactile_layout, tactile_range)
        check_convention("visual_3views", visual_layout, visual_range)
        self.checkpoint_path = os.fspath(checkpoint_path)
        self.device = torch.device(device) if device is not None else auto_device()
        self.model, self.hparams = load_model(self.checkpoint_path, self.device)
        self.tactile_layout, self.tactile_range = tactile_layout, tactile_range
        self.visual_layout, self.visual_range = visual_layout, visual_range

    @property
    def num_quantizers(self) -> int:
        return self.hparams.num_quantizers

    @torch.no_grad()
    def forward(self, tactile, visual_3views, action_prev) -> VQVAEOutput:
        """tactile [B,128,160,3]/[B,3,128,160] (or uint8 of another size), visual_3views
        [B,3,224,224,3]/[B,3,3,224,224] in base/left-wrist/right-wrist order, action_prev
        [B,7] raw state_t - state_{t-1} -> ``VQVAEOutput``."""
        t = tactile_to_canonical(tactile, self.tactile_layout, self.tactile_range)
        v = views_to_canonical(visual_3views, self.visual_layout, self.visual_range,
                               self.hparams.prophet.num_views)
        a = action_to_canonical(action_prev, self.hparams.prophet.action_dim)
        if not (t.shape[0] == v.shape[0] == a.shape[0]):
            raise ValueError(f"batch sizes differ: tactile {t.shape[0]}, visual {v.shape[0]}, "
                             f"action_prev {a.shape[0]}")
        with full_fp32():
            return self.model(t.to(self.device), v.to(self.device), a.to(self.device))

    __call__ = forward
