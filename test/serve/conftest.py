"""Serve-test fixtures: one tiny checkpoint and one warmed engine per session, servers on
loopback ports chosen by the OS, observations as robots send them."""

from __future__ import annotations

import os

# Tiny models: LLVM -O0 compiles several times faster (as test/model/conftest.py).
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_backend_optimization_level=0").strip()

from pathlib import Path

import numpy as np
import pytest

from restac_ros.eval import params as eval_params
from restac_ros.serve.batcher import Batcher
from restac_ros.serve.cli import build_engine
from restac_ros.serve.requests import parse_request
from restac_ros.serve.server import PolicyServer, ServerOptions, ServerThread
from test.nodes.checkpoints import JOINTS, make_tiny_checkpoint
from test.ros_helpers import require_loopback

MAX_BATCH = 4
# openpi_client 0.1.2 calls websockets.sync.client.connect() the pre-17 way; it still works.
OPENPI_CONNECT_WARNING = "ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"


@pytest.fixture(scope="session")
def serve_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("serve_policy") / "ckpt")


@pytest.fixture(scope="session")
def serve_params(serve_checkpoint) -> dict:
    p = eval_params.load_params()
    p["checkpoint_dir"] = str(serve_checkpoint)
    return p


@pytest.fixture(scope="session")
def engine(serve_params, serve_checkpoint):
    eng = build_engine(serve_params, serve_checkpoint, max_batch=MAX_BATCH)
    eng.warmup()
    return eng


def robot_observation(seed: int = 0, *, fork: bool = False, prompt="pick up the cube") -> dict:
    """What a robot sends: raw uint8 camera images at sensor size, raw state, action_prev."""
    rng = np.random.default_rng(seed)
    img = lambda h, w: rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # noqa: E731
    if fork:
        obs = {
            "observation/images/main_realsense_rgb": img(224, 224),
            "observation/images/handeye_realsense_rgb": img(224, 224),
            "observation/images/side_realsense_rgb": img(224, 224),
            "observation/images/gelsight_left_rgb": img(128, 160),
        }
    else:
        obs = {f"observation/images/{slot}": img(240, 320)
               for slot in ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")}
        obs["observation/tactile_image"] = img(240, 320)
    obs["observation/state"] = rng.uniform(-1, 1, len(JOINTS)).astype(np.float32)
    obs["action_prev"] = rng.uniform(-0.02, 0.02, len(JOINTS)).astype(np.float32)
    if prompt is not None:
        obs["prompt"] = prompt
    return obs


class RunningServer:
    def __init__(self, engine, max_wait_ms: float = 20.0, **options) -> None:
        self.batcher = Batcher(engine.run, max_batch=engine.max_batch, max_wait_ms=max_wait_ms)
        spec = engine.builder.spec
        self.server = PolicyServer(self.batcher.submit, lambda o: parse_request(o, spec),
                                   engine.metadata(), ServerOptions(port=0, **options))
        self.thread = ServerThread(self.server).start()
        self.port = self.thread.port
        self.url = f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.batcher.stop()  # first: requests still waiting for a batch end at once
        self.thread.stop()


@pytest.fixture()
def make_server(engine):
    made: list[RunningServer] = []

    def make(**options) -> RunningServer:
        made.append(RunningServer(engine, **options))
        return made[-1]

    yield make
    for s in made:
        s.stop()


@pytest.fixture()
def ros_context():
    import rclpy

    require_loopback()
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)
