"""GelSight-style tactile image from the pad's depth map.

Optical model of a GelSight sensor (Johnson & Adelson 2009; Taxim, Si & Yuan 2022):
the elastomer's surface takes the shape of what presses into it, smoothed by the gel;
three coloured LEDs graze the membrane from the sides, so each colour channel is the
Lambertian shading of the surface normal under one light, added to the image of the
undeformed gel (background). Black markers printed on the gel move with its surface:
they are displaced by the contact's shear, so slip and drag are visible in the image.

Not the calibrated Taxim polynomial table (a 78 MB wheel, and a per-pixel table
lookup slower than this on CPU); the lights, gains and background below are chosen
to look like a GelSight Mini image. Deterministic: no noise, no state.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from .world import PAD_HALF, PAD_THICKNESS, TACTILE_CAM_BACKOFF

TACTILE_SHAPES: tuple[tuple[int, int], ...] = ((128, 160), (240, 320))
# LED light directions (unit vectors in the pad frame: x = columns, y = rows,
# z = out of the gel toward the camera), 30 degrees above the membrane.
_ELEV = np.deg2rad(30.0)
_AZIMUTHS = np.deg2rad([90.0, 210.0, 330.0])  # red, green, blue
LIGHTS = np.stack(
    [
        np.cos(_ELEV) * np.cos(_AZIMUTHS),
        np.cos(_ELEV) * np.sin(_AZIMUTHS),
        np.full(3, np.sin(_ELEV)),
    ],
    axis=1,
)  # [3 lights, xyz]
LIGHT_GAIN = np.array([210.0, 190.0, 230.0])  # colour change per unit of shading change
MARKER_GRID = (7, 9)  # rows x columns of printed markers
SHEAR_MM_PER_N = 0.25  # marker displacement per newton of tangential force


@dataclasses.dataclass(frozen=True)
class TactileConfig:
    shape: tuple[int, int] = (128, 160)  # (rows, columns) of the published image
    gel_sigma_mm: float = 0.5  # elastomer smoothing of the indentation
    markers: bool = True

    def __post_init__(self) -> None:
        if tuple(self.shape) not in TACTILE_SHAPES:
            raise ValueError(f"tactile shape must be one of {TACTILE_SHAPES}, got {self.shape}")


def indentation_from_depth(depth_m: np.ndarray) -> np.ndarray:
    """Orthographic depth from behind the pad surface -> gel indentation (m), >= 0.

    The camera sits TACTILE_CAM_BACKOFF behind the undeformed surface, so anything
    closer than that has pressed into the gel (MuJoCo's soft contact lets it).
    """
    return np.clip(TACTILE_CAM_BACKOFF - depth_m.astype(np.float32), 0.0, PAD_THICKNESS)


class TactileShader:
    """Indentation map [rows, cols] (m) + shear (N) -> uint8 RGB GelSight-style image."""

    def __init__(self, config: TactileConfig = TactileConfig()) -> None:
        self.config = config
        rows, cols = config.shape
        self._mm_per_px = 2 * PAD_HALF[0] * 1e3 / rows
        self._sigma_px = config.gel_sigma_mm / self._mm_per_px
        self._background = self._make_background(rows, cols)
        gy, gx = np.mgrid[0:MARKER_GRID[0], 0:MARKER_GRID[1]].astype(np.float32)
        self._marker_rc = np.stack(
            [(gy + 0.5) * rows / MARKER_GRID[0], (gx + 0.5) * cols / MARKER_GRID[1]], axis=-1
        ).reshape(-1, 2)
        self._marker_radius = max(1, round(rows / 64))
        self._flat = LIGHTS[:, 2].astype(np.float32)  # shading of the undeformed membrane

    @staticmethod
    def _make_background(rows: int, cols: int) -> np.ndarray:
        """The undeformed gel: a grey-blue field, brighter toward each LED's side."""
        y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
        u, v = (x / (cols - 1) - 0.5) * 2, (y / (rows - 1) - 0.5) * 2
        base = np.array([118.0, 128.0, 140.0], np.float32)
        img = np.empty((rows, cols, 3), np.float32)
        for c in range(3):
            lx, ly = LIGHTS[c, 0], LIGHTS[c, 1]
            img[..., c] = base[c] + 18.0 * (u * lx + v * ly) - 10.0 * (u * u + v * v)
        return img

    def render(
        self, indentation_m: np.ndarray, shear_n: tuple[float, float] = (0.0, 0.0)
    ) -> np.ndarray:
        rows, cols = self.config.shape
        if indentation_m.shape != (rows, cols):
            raise ValueError(f"indentation map must be {(rows, cols)}, got {indentation_m.shape}")
        height_mm = indentation_m.astype(np.float32) * 1e3
        if self._sigma_px > 0:
            height_mm = cv2.GaussianBlur(height_mm, (0, 0), self._sigma_px)
        # Surface normal of the pressed membrane (pressing in = moving away from the camera).
        dh_dy, dh_dx = np.gradient(height_mm, self._mm_per_px)
        norm = np.sqrt(dh_dx * dh_dx + dh_dy * dh_dy + 1.0)
        n = np.stack([dh_dx / norm, dh_dy / norm, 1.0 / norm], axis=-1)  # [r, c, 3]
        shading = np.maximum(n @ LIGHTS.T.astype(np.float32), 0.0) - self._flat  # [r, c, 3]
        img = self._background + shading * LIGHT_GAIN.astype(np.float32)
        # Contact darkens the gel slightly (the membrane's paint thins where stretched).
        img -= 25.0 * np.clip(height_mm / (PAD_THICKNESS * 1e3 / 3), 0.0, 1.0)[..., None]
        out = np.clip(img, 0, 255).astype(np.uint8)
        if self.config.markers:
            self._draw_markers(out, height_mm, shear_n)
        return out

    def _draw_markers(self, img: np.ndarray, height_mm: np.ndarray, shear_n) -> None:
        """Markers ride on the gel: displaced by the shear where the gel is held by contact."""
        rows, cols = self.config.shape
        peak = float(height_mm.max())
        shift_px = np.asarray(shear_n, np.float32) * SHEAR_MM_PER_N / self._mm_per_px
        for r, c in self._marker_rc:
            ri, ci = min(int(r), rows - 1), min(int(c), cols - 1)
            grip = height_mm[ri, ci] / peak if peak > 1e-6 else 0.0
            # sub-pixel centres via cv2's fixed-point shift (4 fractional bits)
            cx = round((c + grip * shift_px[0]) * 16)
            cy = round((r + grip * shift_px[1]) * 16)
            cv2.circle(img, (cx, cy), self._marker_radius * 16, (25, 25, 30), -1, cv2.LINE_AA, 4)
