"""GelSight-like 240x320 rgb8 tactile images.

The static background is a flat gel lit by three coloured LEDs (smooth colour
ramps and vignetting), a faint gel texture and a grid of printed markers.
Contact is a super-Gaussian indentation of the gel; photometric shading of
its gradient under the three lights gives the characteristic coloured rims.
The indentation grows with the gel penetration, slides with the object
(shear under load, inertia while carried) and drags the markers with it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .episode import PAD_H, PAD_W

HEIGHT, WIDTH = 240, 320
PX_PER_M = WIDTH / PAD_W  # == HEIGHT / PAD_H
PX_PER_MM = PX_PER_M / 1000.0
SHIFT = 4
_ONE = 1 << SHIFT
MARKER_ROWS, MARKER_COLS = 7, 9
LIGHT_DIRS = np.array([[math.cos(a), math.sin(a)] for a in (0.0, 2.1, 4.2)], np.float32)
N_NOISE = 4


class TactileRenderer:
    """Render one tactile frame from the episode's blob parameters."""

    def __init__(self) -> None:
        assert abs(HEIGHT / PAD_H - PX_PER_M) < 1e-6
        rng = np.random.default_rng(7)  # one sensor: same gel in every episode
        yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
        xn, yn = xx / (WIDTH - 1) * 2 - 1, yy / (HEIGHT - 1) * 2 - 1
        vign = 1.0 - 0.16 * (xn**2 + yn**2)
        bg = (
            np.stack(
                [
                    142 + 22 * xn - 6 * yn,
                    150 - 10 * xn - 16 * yn,
                    168 - 12 * xn + 18 * yn,
                ],
                axis=-1,
            )
            * vign[..., None]
        )
        tex = cv2.GaussianBlur(rng.normal(size=(HEIGHT, WIDTH)).astype(np.float32), (0, 0), 1.3)
        bg += 6.0 * tex[..., None]
        self.bg = bg.astype(np.float32)
        self.noise = [
            np.round(rng.normal(scale=1.2, size=(HEIGHT, WIDTH, 3))).astype(np.float32)
            for _ in range(N_NOISE)
        ]
        sx, sy = WIDTH / MARKER_COLS, HEIGHT / MARKER_ROWS
        my, mx = np.mgrid[0:MARKER_ROWS, 0:MARKER_COLS].astype(np.float32)
        self.markers = np.stack([(mx + 0.5) * sx, (my + 0.5) * sy], -1).reshape(-1, 2)
        self.rest = []  # no-contact frames (one per noise pattern), markers at rest
        for noise in self.noise:
            frame = np.clip(self.bg + noise, 0, 255).astype(np.uint8)
            _draw_markers(frame, self.markers)
            self.rest.append(frame)

    def render(self, blob: np.ndarray, frame: int) -> np.ndarray:
        """blob = (depth 0..1, u, v, a_u, a_v [pad m], shear_u, shear_v [mm])."""
        depth, u, v, au, av, su, sv = (float(x) for x in blob)
        k = frame % N_NOISE
        out = self.rest[k].copy()
        if depth <= 1e-4 or au <= 0 or av <= 0:
            return out
        cx = WIDTH / 2 + u * PX_PER_M + su * PX_PER_MM
        cy = HEIGHT - v * PX_PER_M + sv * PX_PER_MM
        ax, ay = max(au * PX_PER_M, 2.0), max(av * PX_PER_M, 2.0)
        x0, x1 = max(0, int(cx - 1.7 * ax)), min(WIDTH, int(cx + 1.7 * ax) + 1)
        y0, y1 = max(0, int(cy - 1.7 * ay)), min(HEIGHT, int(cy + 1.7 * ay) + 1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return out
        roi = self.bg[y0:y1, x0:x1] + self.noise[k][y0:y1, x0:x1]
        _indent(roi, x0, y0, cx, cy, ax, ay, depth)
        out[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)
        m = self.markers
        inside = (m[:, 0] > x0 - 6) & (m[:, 0] < x1 + 6) & (m[:, 1] > y0 - 6) & (m[:, 1] < y1 + 6)
        m = m[inside]
        rho2 = ((m[:, 0] - cx) / ax) ** 2 + ((m[:, 1] - cy) / ay) ** 2
        w = np.exp(-1.5 * rho2)[:, None]
        shear = np.array([su, sv], np.float32) * PX_PER_MM
        radial = m - np.array([cx, cy], np.float32)
        _draw_markers(out, m + w * (shear + 0.08 * depth * radial))
        return out


def _draw_markers(img: np.ndarray, pts: np.ndarray) -> None:
    for x, y in np.round(pts * _ONE).astype(np.int32):
        cv2.circle(img, (int(x), int(y)), int(3.2 * _ONE), (48, 50, 58), -1, cv2.LINE_AA, SHIFT)


def _indent(roi: np.ndarray, x0: int, y0: int, cx, cy, ax, ay, depth) -> None:
    """Add the photometric shading of a flat-topped indentation to a float ROI."""
    h_, w_ = roi.shape[:2]
    xs = (np.arange(x0, x0 + w_, dtype=np.float32) - np.float32(cx)) / np.float32(ax)
    ys = (np.arange(y0, y0 + h_, dtype=np.float32) - np.float32(cy)) / np.float32(ay)
    r2 = ys[:, None] ** 2 + xs[None, :] ** 2
    h = np.float32(depth) * np.exp(-(r2 * r2))  # indentation, 0..depth, flat top
    # Analytic gradient (per pixel), scaled so the rim brightness does not depend on size.
    k = (-4.0 * 45.0 * 0.5 * (ax + ay)) * r2 * h
    gx = k * (xs / np.float32(ax))[None, :]
    gy = k * (ys / np.float32(ay))[:, None]
    dark = 16.0 * h * (1.0 + 0.08 * np.sin(ys * np.float32(ay) * 0.9))[:, None]  # surface imprint
    for c in range(3):
        roi[..., c] += LIGHT_DIRS[c, 0] * gx + LIGHT_DIRS[c, 1] * gy - dark
