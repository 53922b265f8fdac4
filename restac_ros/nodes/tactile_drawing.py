"""Pure drawing for the tactile monitor: colours from logvar, the overlay image (OpenCV).

No ROS types: numbers and arrays in, numbers and arrays out.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def normalised_logvar(logvar: float, lo: float, hi: float) -> float:
    """logvar mapped to [0, 1] over [lo, hi] (NaN -> 0)."""
    if not math.isfinite(logvar) or hi <= lo:
        return 0.0
    return float(min(max((logvar - lo) / (hi - lo), 0.0), 1.0))


def uncertainty_rgba(level: float, alpha: float = 0.85) -> tuple[float, float, float, float]:
    """0 (certain) green -> 0.5 yellow -> 1 (uncertain) red; every channel in [0, 1]."""
    level = min(max(level, 0.0), 1.0)
    red = min(1.0, 2.0 * level)
    green = min(1.0, 2.0 * (1.0 - level))
    return (red, green, 0.0, min(max(alpha, 0.0), 1.0))


def summary_text(codes, logvar: float, gate: float, mode: str, valid: bool) -> str:
    code_text = ",".join(str(int(c)) for c in codes) if len(codes) else "-"
    sigma = math.exp(logvar / 2.0) if math.isfinite(logvar) else float("nan")
    state = "" if valid else " (no tactile)"
    return (
        f"{mode}{state} codes [{code_text}] logvar {logvar:.2f} sigma {sigma:.3f} gate {gate:.2f}"
    )


def overlay(
    tactile_rgb: np.ndarray,
    baseline_rgb: np.ndarray | None,
    level: float,
    lines: list[str],
) -> np.ndarray:
    """Tactile image + heat map of the change from the baseline frame, weighted by the
    uncertainty level, a level bar on the right and text lines. uint8 RGB, same size
    as the input (at least 240 px wide so the text stays legible)."""
    img = tactile_rgb
    if img.shape[1] < 320:
        scale = 320 / img.shape[1]
        img = cv2.resize(img, (320, round(img.shape[0] * scale)), interpolation=cv2.INTER_LINEAR)
    if baseline_rgb is not None and baseline_rgb.shape != img.shape:
        baseline_rgb = cv2.resize(baseline_rgb, (img.shape[1], img.shape[0]))
    if baseline_rgb is None:
        change = np.zeros(img.shape[:2], np.float32)
    else:
        change = np.abs(img.astype(np.float32) - baseline_rgb.astype(np.float32)).mean(axis=2)
    peak = max(float(change.max()), 1.0)
    heat_gray = np.clip(change / peak * 255.0 * (0.25 + 0.75 * level), 0, 255).astype(np.uint8)
    heat = cv2.cvtColor(cv2.applyColorMap(heat_gray, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    weight = 0.25 + 0.5 * level
    out = cv2.addWeighted(img, 1.0 - weight, heat, weight, 0.0)
    h, w = out.shape[:2]
    bar_h = int(round((h - 20) * level))
    r, g, b, _ = uncertainty_rgba(level)
    colour = (int(r * 255), int(g * 255), int(b * 255))
    cv2.rectangle(out, (w - 18, 10), (w - 8, h - 10), (255, 255, 255), 1)
    cv2.rectangle(out, (w - 17, h - 10 - bar_h), (w - 9, h - 11), colour, -1)
    for i, line in enumerate(lines):
        y = 18 + 18 * i
        cv2.putText(out, line, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(
            out, line, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA
        )
    return out
