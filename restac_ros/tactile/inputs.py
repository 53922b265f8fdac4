"""Explicit input conventions for the VQ-VAE wrapper: layout and value range are declared.

Nothing is inferred from pixel values.  A declared convention is checked
against the array (dtype, shape, value range) and any mismatch raises
``InputConventionError`` saying what was declared and what arrived.

Canonical forms handed to the model: tactile float32 [B, 3, 128, 160] in
[-1, 1]; views float32 [B, V, 3, 224, 224] in [-1, 1]; action_prev float32
[B, 7].  Tactile images of another size (GelSight 240x320) are accepted only
as uint8 and go through ``restac_ros.core.images.resize_tactile`` (the one
function training and inference share).
"""

from __future__ import annotations

import numpy as np
import torch

from restac_ros.core.images import resize_tactile
from restac_ros.tactile.config import TACTILE_HW, VISUAL_HW

LAYOUTS = ("HWC", "CHW")
RANGES = ("uint8", "[0,1]", "[-1,1]")
_RANGE_TOL = 1e-3


class InputConventionError(ValueError):
    """An input does not match its declared layout/range, or the declaration is invalid."""


def check_convention(what: str, layout: str, value_range: str) -> None:
    if layout not in LAYOUTS:
        raise InputConventionError(f"{what}: layout must be one of {LAYOUTS}, got {layout!r}")
    if value_range not in RANGES:
        raise InputConventionError(
            f"{what}: value range must be one of {RANGES}, got {value_range!r}")


def _as_tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise InputConventionError(f"{what}: expected a numpy array or torch tensor, "
                               f"got {type(x).__name__}")


def _to_signed(x: torch.Tensor, value_range: str, what: str) -> torch.Tensor:
    """Check dtype/range against the declaration and map to float32 [-1, 1]."""
    if value_range == "uint8":
        if x.dtype != torch.uint8:
            raise InputConventionError(f"{what}: declared uint8 but dtype is {x.dtype}")
        return x.to(torch.float32) / 255.0 * 2.0 - 1.0
    if not x.is_floating_point():
        raise InputConventionError(
            f"{what}: declared float range {value_range} but dtype is {x.dtype}")
    x = x.to(torch.float32)
    lo, hi = (0.0, 1.0) if value_range == "[0,1]" else (-1.0, 1.0)
    if x.numel():
        xmin, xmax = float(x.min()), float(x.max())
        if not (np.isfinite(xmin) and np.isfinite(xmax)):
            raise InputConventionError(f"{what}: contains non-finite values")
        if xmin < lo - _RANGE_TOL or xmax > hi + _RANGE_TOL:
            raise InputConventionError(
                f"{what}: declared range {value_range} but values span [{xmin:.4g}, {xmax:.4g}]")
    return x * 2.0 - 1.0 if value_range == "[0,1]" else x


def tactile_to_canonical(x, layout: str, value_range: str) -> torch.Tensor:
    what = "tactile"
    check_convention(what, layout, value_range)
    x = _as_tensor(x, what)
    if x.ndim != 4:
        raise InputConventionError(f"{what}: expected a batch [B, H, W, 3] or [B, 3, H, W], "
                                   f"got shape {list(x.shape)}")
    cdim = 3 if layout == "HWC" else 1
    if x.shape[cdim] != 3:
        raise InputConventionError(f"{what}: declared {layout} but shape {list(x.shape)} has "
                                   f"{x.shape[cdim]} channels on axis {cdim}")
    hw = tuple(x.shape[1:3]) if layout == "HWC" else tuple(x.shape[2:4])
    if hw != TACTILE_HW:
        if value_range != "uint8":
            raise InputConventionError(
                f"{what}: size {hw} needs resizing to {TACTILE_HW}, which is only done for "
                "uint8 input (restac_ros.core.images.resize_tactile)")
        if x.dtype != torch.uint8:
            raise InputConventionError(f"{what}: declared uint8 but dtype is {x.dtype}")
        hwc = x.cpu().numpy() if layout == "HWC" else x.permute(0, 2, 3, 1).cpu().numpy()
        x = torch.from_numpy(np.stack([resize_tactile(np.ascontiguousarray(im)) for im in hwc]))
        layout = "HWC"
    x = _to_signed(x, value_range, what)
    return x.permute(0, 3, 1, 2).contiguous() if layout == "HWC" else x.contiguous()


def views_to_canonical(x, layout: str, value_range: str, num_views: int) -> torch.Tensor:
    what = "visual_3views"
    check_convention(what, layout, value_range)
    x = _as_tensor(x, what)
    want = ([num_views, *VISUAL_HW, 3] if layout == "HWC" else [num_views, 3, *VISUAL_HW])
    if x.ndim != 5 or list(x.shape[1:]) != want:
        dims = ", ".join(map(str, want))
        raise InputConventionError(f"{what}: declared {layout}, expected [B, {dims}] (views base, "
                                   f"left wrist, right wrist), got {list(x.shape)}")
    x = _to_signed(x, value_range, what)
    return x.permute(0, 1, 4, 2, 3).contiguous() if layout == "HWC" else x.contiguous()


def action_to_canonical(x, action_dim: int) -> torch.Tensor:
    what = "action_prev"
    x = _as_tensor(x, what)
    if x.ndim != 2 or x.shape[1] != action_dim:
        raise InputConventionError(f"{what}: expected [B, {action_dim}] (raw state(t) - "
                                   f"state(t - dt) of the arm joints), got {list(x.shape)}")
    if not x.is_floating_point():
        raise InputConventionError(f"{what}: expected a float array, got {x.dtype}")
    return x.to(torch.float32)
