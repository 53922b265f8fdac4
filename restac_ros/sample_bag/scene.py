"""OpenCV rendering of the three 224x224 rgb8 camera views.

A pinhole camera model projects a small 3-D scene: a textured table (one
`warpPerspective` of a table texture through the plane homography), the two
marks, the egg (its exact perspective outline via the dual-quadric conic,
shaded with offset highlights), soft shadows, and the arm as boxes and thick
lines drawn far-to-near. Images are RGB, uint8, HWC.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from . import kinematics as kin
from .episode import Episode, EpisodeParams

SIZE = 224
SHIFT = 4  # sub-pixel bits for OpenCV drawing
_ONE = 1 << SHIFT
TABLE_RES = 512  # texture pixels across the table
TABLE_X = (0.0, 1.0)
TABLE_Y = (-0.5, 0.5)
WALL = (92, 98, 110)
FLOOR = (70, 66, 62)
LIGHT = np.array([0.35, -0.45, 1.0]) / np.linalg.norm([0.35, -0.45, 1.0])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


class Camera:
    """Pinhole camera, OpenCV convention (x right, y down, z forward)."""

    def __init__(self, pos, look_at, fov_deg: float, up=(0.0, 0.0, 1.0)) -> None:
        self.pos = np.asarray(pos, dtype=np.float64)
        z = _unit(np.asarray(look_at, dtype=np.float64) - self.pos)
        x = _unit(np.cross(z, np.asarray(up, dtype=np.float64)))
        y = np.cross(z, x)
        self.R = np.stack([x, y, z])
        self.f = (SIZE / 2) / math.tan(math.radians(fov_deg) / 2)
        self.K = np.array([[self.f, 0, SIZE / 2], [0, self.f, SIZE / 2], [0, 0, 1.0]])
        self.P = self.K @ np.hstack([self.R, (-self.R @ self.pos)[:, None]])

    def to_cam(self, pts: np.ndarray) -> np.ndarray:
        return (np.asarray(pts, dtype=np.float64) - self.pos) @ self.R.T

    def pix(self, pc: np.ndarray) -> np.ndarray:
        return self.f * pc[..., :2] / pc[..., 2:3] + SIZE / 2

    def table_homography(self) -> np.ndarray:
        """Texture pixel (u, v) -> image pixel, for the plane z = 0."""
        s = (TABLE_X[1] - TABLE_X[0]) / TABLE_RES
        a = np.array([[0.0, -s, TABLE_X[1]], [-s, 0.0, TABLE_Y[1]], [0.0, 0.0, 1.0]])
        return self.P[:, [0, 1, 3]] @ a

    def conic(self, center, radii, rot=None) -> tuple | None:
        """Image ellipse ((cx, cy), (ax, ay), angle_deg) of an ellipsoid, exactly."""
        rot = np.eye(3) if rot is None else rot
        t = np.eye(4)
        t[:3, :3] = rot
        t[:3, 3] = center
        q = t @ np.diag([radii[0] ** 2, radii[1] ** 2, radii[2] ** 2, -1.0]) @ t.T
        c = self.P @ q @ self.P.T
        if c[2, 2] >= 0:  # camera inside or behind the ellipsoid
            return None
        c = c / c[2, 2]
        m = c[:2, 2]
        s = np.outer(m, m) - c[:2, :2]
        w, v = np.linalg.eigh(s)
        if w[0] <= 0:
            return None
        ang = math.degrees(math.atan2(v[1, 1], v[0, 1]))
        return (m[0], m[1]), (math.sqrt(w[1]), math.sqrt(w[0])), ang


def _clip_near(pc: np.ndarray, near: float = 0.01) -> np.ndarray:
    """Sutherland-Hodgman clip of a camera-frame polygon against z = near."""
    out = []
    n = len(pc)
    for i in range(n):
        a, b = pc[i], pc[(i + 1) % n]
        if a[2] >= near:
            out.append(a)
        if (a[2] >= near) != (b[2] >= near):
            t = (near - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.asarray(out)


def _fill(img: np.ndarray, pts: np.ndarray, color) -> None:
    cv2.fillPoly(img, [np.round(pts * _ONE).astype(np.int32)], color, cv2.LINE_AA, SHIFT)


def _ellipse(img: np.ndarray, ell, color, scale=1.0, offset=(0.0, 0.0)) -> None:
    (cx, cy), (ax, ay), ang = ell
    center = (int(round((cx + offset[0]) * _ONE)), int(round((cy + offset[1]) * _ONE)))
    axes = (max(1, int(round(ax * scale * _ONE))), max(1, int(round(ay * scale * _ONE))))
    cv2.ellipse(img, center, axes, ang, 0, 360, color, -1, cv2.LINE_AA, SHIFT)


def _blend_ellipse(img: np.ndarray, ell, color, alpha: float) -> None:
    (cx, cy), (ax, ay), _ = ell
    r = max(ax, ay) + 2
    x0, y0 = max(0, int(cx - r)), max(0, int(cy - r))
    x1, y1 = min(SIZE, int(cx + r) + 1), min(SIZE, int(cy + r) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    over = roi.copy()
    _ellipse(over, ((cx - x0, cy - y0), (ax, ay), ell[2]), color)
    cv2.addWeighted(over, alpha, roi, 1.0 - alpha, 0.0, dst=roi)


def _shade(color, k: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(c * k)))) for c in color)


def make_table_texture(p: EpisodeParams) -> np.ndarray:
    """Wood-like table with a faint 10 cm grid and the two marks (RGB)."""
    rng = np.random.default_rng(20240611)  # the same table for every episode
    grain = cv2.resize(
        rng.normal(size=(160, 36)).astype(np.float32),
        (TABLE_RES, TABLE_RES),
        interpolation=cv2.INTER_CUBIC,
    )
    blotch = cv2.resize(
        rng.normal(size=(12, 12)).astype(np.float32),
        (TABLE_RES, TABLE_RES),
        interpolation=cv2.INTER_CUBIC,
    )
    base = np.array([196.0, 164.0, 122.0], dtype=np.float32)
    tex = base[None, None, :] * (1.0 + 0.05 * grain[..., None] + 0.04 * blotch[..., None])
    tex = np.clip(tex, 0, 255).astype(np.uint8)
    px = TABLE_RES / (TABLE_X[1] - TABLE_X[0])

    def uv(x: float, y: float) -> tuple[int, int]:
        return (int(round((TABLE_Y[1] - y) * px * _ONE)), int(round((TABLE_X[1] - x) * px * _ONE)))

    for k in range(1, 10):
        g = k / 10
        cv2.line(tex, uv(g, TABLE_Y[0]), uv(g, TABLE_Y[1]), (170, 140, 105), 2, cv2.LINE_AA, SHIFT)
        y = TABLE_Y[0] + g
        cv2.line(tex, uv(TABLE_X[0], y), uv(TABLE_X[1], y), (170, 140, 105), 2, cv2.LINE_AA, SHIFT)
    for mx, my in (p.mark_a, p.mark_b):
        cv2.circle(tex, uv(mx, my), int(0.045 * px * _ONE), (60, 70, 90), 5, cv2.LINE_AA, SHIFT)
        for dx, dy in ((0.012, 0.0), (0.0, 0.012)):
            cv2.line(
                tex, uv(mx - dx, my - dy), uv(mx + dx, my + dy), (60, 70, 90), 3, cv2.LINE_AA, SHIFT
            )
    return tex


_BOX_SIGNS = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float)


def _box_faces() -> list[tuple[int, float, list[int]]]:
    faces = []
    for i in range(3):
        j, k = [a for a in range(3) if a != i]
        for sgn in (-1.0, 1.0):
            loop = []
            for sj, sk in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                want = {i: sgn, j: sj, k: sk}
                loop.append(
                    next(
                        n
                        for n, row in enumerate(_BOX_SIGNS)
                        if all(row[a] == want[a] for a in range(3))
                    )
                )
            faces.append((i, sgn, loop))
    return faces


_BOX_FACES = _box_faces()


class _Painter:
    """Collects primitives with a depth and draws them far to near."""

    def __init__(self, cam: Camera) -> None:
        self.cam = cam
        self.items: list[tuple[float, int, tuple]] = []

    def box(self, center, axes, half, color) -> None:
        ax = np.asarray(axes) * np.asarray(half)[:, None]  # [3, 3] scaled axes
        corners = np.asarray(center) + _BOX_SIGNS @ ax  # [8, 3]
        pc_all = self.cam.to_cam(corners)
        view = np.asarray(center) - self.cam.pos
        for i, sgn, idx in _BOX_FACES:
            n = sgn * np.asarray(axes[i])
            if float(np.dot(n, view + n * half[i])) >= 0:
                continue  # back face
            pc = pc_all[idx]
            if pc[:, 2].min() < 0.01:
                pc = _clip_near(pc)
                if len(pc) < 3:
                    continue
            k_light = 0.55 + 0.45 * max(0.0, float(np.dot(n, LIGHT)))
            self.items.append((float(pc[:, 2].mean()), 0, (pc, _shade(color, k_light))))

    def capsule(self, a, b, radius, color) -> None:
        pc = self.cam.to_cam(np.stack([a, b]))
        if (pc[:, 2] < 0.05).any():
            return
        self.items.append((float(pc[:, 2].max()), 1, (pc, radius, color)))

    def egg(self, center, radii, color) -> None:
        ell = self.cam.conic(center, radii)
        if ell is not None:
            d = float(self.cam.to_cam(np.asarray(center)[None])[0, 2])
            self.items.append((d, 2, (ell, color)))

    def draw(self, img: np.ndarray) -> None:
        light = self.cam.R @ LIGHT
        hl = -_unit(light[:2]) if np.linalg.norm(light[:2]) > 1e-6 else np.zeros(2)
        for _, kind, data in sorted(self.items, key=lambda it: -it[0]):
            if kind == 0:
                pc, color = data
                _fill(img, self.cam.pix(pc), color)
            elif kind == 1:
                pc, radius, color = data
                uv = self.cam.pix(pc)
                th = max(1, int(round(2 * radius * self.cam.f / pc[:, 2].mean())))
                p0 = tuple(int(round(c * _ONE)) for c in uv[0])
                p1 = tuple(int(round(c * _ONE)) for c in uv[1])
                cv2.line(img, p0, p1, color, th, cv2.LINE_AA, SHIFT)
                for pt in (p0, p1):
                    cv2.circle(
                        img, pt, int(th * 0.62 * _ONE), _shade(color, 0.55), -1, cv2.LINE_AA, SHIFT
                    )
            else:
                ell, color = data
                ax = max(ell[1])
                _ellipse(img, ell, _shade(color, 0.5))
                _ellipse(img, ell, _shade(color, 0.85), 0.86, tuple(-0.12 * ax * hl))
                _ellipse(img, ell, _shade(color, 1.15), 0.42, tuple(-0.38 * ax * hl))
                _ellipse(img, ell, _shade(color, 1.5), 0.14, tuple(-0.5 * ax * hl))


class SceneRenderer:
    """Renders the base and the two wrist views of an episode state."""

    CAMERAS = ("base", "left_wrist", "right_wrist")

    def __init__(self, episode: Episode) -> None:
        self.ep = episode
        self.p = episode.params
        self.tex = make_table_texture(self.p)
        self.base_cam = Camera((1.05, -0.65, 0.75), (0.32, 0.0, 0.22), 62.0)
        self.base_bg = self._background(self.base_cam)

    def _background(self, cam: Camera) -> np.ndarray:
        img = np.empty((SIZE, SIZE, 3), np.uint8)
        ramp = np.linspace(1.15, 0.85, SIZE, dtype=np.float32)[:, None, None]
        img[:] = np.clip(np.asarray(WALL, np.float32) * ramp, 0, 255).astype(np.uint8)
        warped = cv2.warpPerspective(
            self.tex,
            cam.table_homography(),
            (SIZE, SIZE),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=FLOOR,
        )
        corners = np.array(
            [[TABLE_X[i], TABLE_Y[j], 0.0] for i, j in ((0, 0), (1, 0), (1, 1), (0, 1))]
        )
        mask = np.zeros((SIZE, SIZE), np.uint8)
        _fill(mask, cam.pix(cam.to_cam(corners)), 255)
        np.copyto(img, warped, where=mask[..., None] > 127)
        # Robot pedestal.
        p = _Painter(cam)
        p.capsule((0.0, 0.0, 0.0), (0.0, 0.0, kin.SHOULDER_Z - 0.05), 0.06, (215, 215, 220))
        p.draw(img)
        return img

    def _wrist_cam(self, pose: kin.ArmPose, side: float) -> Camera:
        tip = np.asarray(pose.tip)
        g, t = np.asarray(pose.closing_axis), np.asarray(pose.across_axis)
        pos = tip + np.array([0.0, 0.0, 0.15]) + 0.075 * t + side * 0.035 * g
        return Camera(pos, tip + np.array([0.0, 0.0, -0.03]) - 0.01 * t, 75.0)

    def _paint(self, p: _Painter, pose: kin.ArmPose, width: float, obj, arm: bool) -> None:
        tip = np.asarray(pose.tip)
        g, t = np.asarray(pose.closing_axis), np.asarray(pose.across_axis)
        z = np.array([0.0, 0.0, 1.0])
        axes = (g, t, z)
        for sgn in (-1.0, 1.0):
            c = tip + z * kin.FINGER_LEN / 2 + sgn * g * (width / 2 + kin.FINGER_HALF_THICK)
            p.box(
                c,
                axes,
                (kin.FINGER_HALF_THICK, kin.FINGER_HALF_WIDTH, kin.FINGER_LEN / 2),
                (70, 72, 78),
            )
        p.egg(obj, (self.p.radius, self.p.radius, self.p.half_height), self.p.color)
        if arm:  # the wrist cameras sit on the hand and do not see it
            hand_c = tip + z * (kin.FINGER_LEN + kin.HAND_HEIGHT / 2)
            p.box(
                hand_c,
                axes,
                (kin.HAND_HALF_G, kin.HAND_HALF_T, kin.HAND_HEIGHT / 2),
                (210, 210, 215),
            )
            white = (228, 228, 232)
            flange = tip + z * (kin.FINGER_LEN + kin.HAND_HEIGHT)
            p.capsule(pose.shoulder, pose.elbow, 0.05, white)
            p.capsule(pose.elbow, pose.wrist, 0.045, white)
            p.capsule(pose.wrist, flange, 0.035, (200, 200, 206))

    def _shadows(self, img: np.ndarray, cam: Camera, pose: kin.ArmPose, obj) -> None:
        r = self.p.radius * 1.1
        ell = cam.conic((obj[0] + 0.008, obj[1] - 0.01, 0.0005), (r, r, 1e-4))
        lift = max(0.0, obj[2] - self.p.half_height)
        if ell is not None:
            _blend_ellipse(img, ell, (30, 25, 20), 0.45 / (1.0 + 20.0 * lift))
        rot = np.array([pose.closing_axis, pose.across_axis, (0.0, 0.0, 1.0)]).T
        h = pose.tip[2] + kin.FINGER_LEN
        ell = cam.conic(
            (pose.tip[0] + 0.3 * h * LIGHT[0], pose.tip[1] + 0.3 * h * LIGHT[1], 0.0005),
            (kin.HAND_HALF_G * 1.2, kin.HAND_HALF_T * 1.5, 1e-4),
            rot,
        )
        if ell is not None:
            _blend_ellipse(img, ell, (30, 25, 20), 0.4 / (1.0 + 6.0 * h))

    def render(self, step: int) -> dict[str, np.ndarray]:
        """The three views at simulation step `step` (RGB uint8 224x224)."""
        q = self.ep.q[step]
        pose = kin.forward(q)
        width = float(q[7])
        obj = self.ep.obj[step]
        out = {}
        img = self.base_bg.copy()
        self._shadows(img, self.base_cam, pose, obj)
        painter = _Painter(self.base_cam)
        self._paint(painter, pose, width, obj, arm=True)
        painter.draw(img)
        out["base"] = img
        for name, side in (("left_wrist", 1.0), ("right_wrist", -1.0)):
            cam = self._wrist_cam(pose, side)
            img = cv2.warpPerspective(
                self.tex,
                cam.table_homography(),
                (SIZE, SIZE),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=FLOOR,
            )
            self._shadows(img, cam, pose, obj)
            painter = _Painter(cam)
            self._paint(painter, pose, width, obj, arm=False)
            painter.draw(img)
            out[name] = img
        return out
