"""policy_node with `backend: remote` over real (loopback) DDS against a real restac-serve
process: the same chunks as local mode, and it rides out a server kill and restart.

The streams are held constant (fixed images, fixed joints), so every tick's
observation is the same and only its noise seed differs; the seed is
`tick_seed(seed, stamp)` of the tick, so the chunk a local-mode node computes for a
remote chunk's header stamp is its exact counterpart (a wrong stamp would not match).
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading

import numpy as np
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from restac_ros.core import ticks
from restac_ros.core.observation import JointSample, RawSample
from restac_ros.nodes import conversions
from restac_ros.nodes.policy_node import PolicyNode
from test.nodes.checkpoints import JOINTS
from test.nodes.harness import PolicyHarness
from test.nodes.streams import CAMERAS

START_TIMEOUT_S = 240.0  # a JAX process start + compile on a loaded 2-core machine
PROMPT = "pick up the cube"
RNG = np.random.default_rng(5)
CAM_IMAGES = {slot: RNG.integers(0, 256, (224, 224, 3), dtype=np.uint8) for slot in CAMERAS}
TACTILE_IMAGE = RNG.integers(0, 256, (240, 320, 3), dtype=np.uint8)
JOINT_POSITIONS = [0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, 0.04]


class ServerProcess:
    """`python -m restac_ros.serve.cli` on loopback; its stdout read by a thread."""

    def __init__(self, checkpoint, port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "restac_ros.serve.cli", "--checkpoint", str(checkpoint),
             "--port", str(port), "--max-batch", "1"],
            env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = self._wait_listening()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def _wait_listening(self) -> int:
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=START_TIMEOUT_S)
            except queue.Empty:
                raise AssertionError(f"restac-serve did not start: {seen}") from None
            seen.append(line)
            if m := re.search(r"listening on ws://127\.0\.0\.1:(\d+)", line):
                return int(m.group(1))

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def _constant_streams(streams) -> None:
    def image(array):
        def mutate(msg):
            msg.data = array.tobytes()
            return msg
        return mutate

    def joints(msg):
        msg.position = list(JOINT_POSITIONS)
        return msg

    for slot, array in CAM_IMAGES.items():
        streams.mutate[slot] = image(array)
    streams.mutate["tactile"] = image(TACTILE_IMAGE)
    streams.mutate["joints"] = joints


def _local_reference(context, checkpoint) -> PolicyNode:
    """A local-backend policy_node, configured only: its builder + policy are local mode."""
    node = PolicyNode(context=context, namespace="reference", parameter_overrides=[
        Parameter("autostart", value=False), Parameter("checkpoint_dir", value=str(checkpoint))])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    return node


def _assert_local_parity(reference: PolicyNode, chunks) -> None:
    state = np.asarray(JOINT_POSITIONS, np.float64)
    for msg in chunks:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        sample = RawSample(stamp, dict(CAM_IMAGES), JointSample(tuple(JOINTS), state),
                           JointSample(tuple(JOINTS), state), PROMPT, TACTILE_IMAGE)
        step = reference.policy.step(reference.builder, sample,
                                     ticks.tick_seed(reference.p["seed"], stamp))
        np.testing.assert_allclose(conversions.chunk_actions(msg), step.actions,
                                   atol=1e-5, rtol=0, err_msg=f"chunk {msg.chunk_id}")
        np.testing.assert_allclose([msg.logvar, msg.gate],  # the server's tactile diagnostics
                                   [step.inference.logvar, step.inference.gate], atol=1e-6)


def test_remote_backend_matches_local_and_survives_a_server_restart(
        ros_context, serve_checkpoint):
    server = ServerProcess(serve_checkpoint)
    port = server.port
    reference = _local_reference(ros_context, serve_checkpoint)
    h = PolicyHarness(ros_context, serve_checkpoint, prompt=PROMPT, backend="remote",
                      remote_port=port, remote_timeout_s=10.0)
    try:
        assert h.configured, h.node.status.diagnostics("x", "x", None, None, {}, None)
        _constant_streams(h.streams)
        assert h.spin_until(lambda: len(h.chunks) >= 3, 120), h.status_text()
        _assert_local_parity(reference, h.chunks[:3])
        assert h.spin_until(lambda: h.diagnostics_mention("backend=remote", "remote.replies"),
                            30), h.status_text()

        server.kill()  # mid-run: the node stays up, drops ticks and says why
        assert h.spin_until(lambda: h.diagnostics_mention("rejected.remote_"), 60), \
            h.status_text()
        assert h.node.lifecycle_state == "active"
        before = len(h.chunks)

        server = ServerProcess(serve_checkpoint, port)  # same address: the node reconnects
        assert h.spin_until(lambda: len(h.chunks) >= before + 3, START_TIMEOUT_S), \
            h.status_text()
        _assert_local_parity(reference, h.chunks[before:before + 3])
        assert h.node.policy.client.counters["connects"] >= 2
        stamps = [conversions.stamp_to_ns(c.header.stamp) for c in h.chunks]
        assert stamps == sorted(stamps)
    finally:
        h.close()
        reference.trigger_shutdown()
        reference.destroy_node()
        server.kill()
