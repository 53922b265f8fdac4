"""Offscreen rendering: three RGB cameras and the tactile depth camera.

Headless through EGL (default) or OSMesa (`MUJOCO_GL=osmesa`): `restac_ros.sim`
sets MUJOCO_GL=egl unless the caller chose one. Shadows, reflections, skybox and
multisampling are off (the world's <visual> has shadowsize=0, offsamples=0): with
MuJoCo's defaults rendering is several times slower on a CPU rasteriser.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np

from .world import CAMERAS, TACTILE_CAMERA

CAMERA_SHAPE = (224, 224)
_OFF_FLAGS = (
    mujoco.mjtRndFlag.mjRND_SHADOW,
    mujoco.mjtRndFlag.mjRND_REFLECTION,
    mujoco.mjtRndFlag.mjRND_SKYBOX,
)


def release_gl_context() -> None:
    """Unbind this thread's GL context, so that another thread may bind it next.

    mujoco.Renderer leaves its context current on the thread that last rendered; EGL
    refuses to bind a context still current on another (even a finished) thread. The
    sim renders on a node's spin thread and is closed from the main thread.
    """
    backend = os.environ.get("MUJOCO_GL")
    if backend == "egl":
        import mujoco.egl
        from OpenGL import EGL

        no_surface = EGL.EGL_NO_SURFACE
        EGL.eglMakeCurrent(mujoco.egl.EGL_DISPLAY, no_surface, no_surface, EGL.EGL_NO_CONTEXT)
    elif backend == "osmesa":
        from OpenGL import GL, osmesa

        osmesa.OSMesaMakeCurrent(None, None, GL.GL_FLOAT, 0, 0)


def _scene_option(groups: tuple[int, ...]) -> mujoco.MjvOption:
    option = mujoco.MjvOption()
    option.geomgroup[:] = 0
    for g in groups:
        option.geomgroup[g] = 1
    option.sitegroup[:] = 0  # sites are markers for code, not for cameras
    return option


class SimRenderer:
    """Owns the GL contexts; close() it (or use it as a context manager)."""

    def __init__(self, model: mujoco.MjModel, tactile_shape: tuple[int, int]) -> None:
        self._rgb = mujoco.Renderer(model, *CAMERA_SHAPE)
        self._depth = mujoco.Renderer(model, *tactile_shape)
        self._depth.enable_depth_rendering()
        for renderer in (self._rgb, self._depth):
            for flag in _OFF_FLAGS:
                renderer.scene.flags[flag] = 0
        self._rgb_option = _scene_option((0, 1, 2, 3))
        self._tactile_option = _scene_option((0, 2))  # table and object: what presses the gel
        self._camera_ids = {name: model.camera(name).id for name in CAMERAS}
        self._tactile_id = model.camera(TACTILE_CAMERA).id
        release_gl_context()

    def cameras(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """{base, left_wrist, right_wrist}: uint8 [224, 224, 3] RGB each."""
        views = {}
        for name, cam in self._camera_ids.items():
            self._rgb.update_scene(data, cam, self._rgb_option)
            views[name] = self._rgb.render().copy()
        release_gl_context()
        return views

    def tactile_depth(self, data: mujoco.MjData) -> np.ndarray:
        """float32 [rows, cols] distance (m) from the tactile camera's image plane."""
        self._depth.update_scene(data, self._tactile_id, self._tactile_option)
        depth = self._depth.render().astype(np.float32)
        release_gl_context()
        return depth

    def close(self) -> None:
        self._rgb.close()
        self._depth.close()
        release_gl_context()

    def __enter__(self) -> SimRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
