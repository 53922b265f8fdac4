"""restac-bringup as its own process: policy_node + chunk_executor from the YAML,
lifecycle driven by bringup, chunks and commands across processes, clean SIGINT exit."""

from __future__ import annotations

import signal

import numpy as np
import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from restac_ros.msg import ActionChunk
from sensor_msgs.msg import JointState

from restac_ros.nodes import qos
from restac_ros.paths import config_path
from test.nodes.checkpoints import JOINTS
from test.nodes.streams import SyntheticStreams
from test.ros_helpers import spin_until, start_python, stop_process

BRINGUP = r"""
import sys
from restac_ros.nodes.bringup import main
sys.exit(main(["--params", sys.argv[1]]))
"""


def test_bringup_runs_the_pipeline_and_stops_cleanly(tmp_path, ros_context, tiny_checkpoint):
    data = yaml.safe_load(config_path("policy.yaml").read_text())
    data["policy_node"]["ros__parameters"].update(
        checkpoint_dir=str(tiny_checkpoint), rate_hz=10.0, diagnostics_period_s=0.5
    )
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(data))

    streams = SyntheticStreams(ros_context)
    listener = rclpy.create_node("bringup_listener", context=ros_context)
    chunks: list[ActionChunk] = []
    commands: list[JointState] = []
    listener.create_subscription(ActionChunk, "/restac/action_chunk", chunks.append, qos.OUTPUT)
    listener.create_subscription(JointState, "/restac/command", commands.append, qos.COMMAND)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(streams)
    executor.add_node(listener)
    proc = start_python(BRINGUP, str(params))
    try:
        ok = spin_until(executor, lambda: len(chunks) >= 3 and len(commands) >= 20, 150.0)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # bounds the wait; idle exit ~2 s
    finally:
        if proc.poll() is None:
            stop_process(proc)
        executor.shutdown(timeout_sec=2.0)
        streams.destroy_node()
        listener.destroy_node()
    assert ok and alive, f"chunks={len(chunks)} commands={len(commands)}\n{err[-3000:]}"
    assert [c.chunk_id for c in chunks] == sorted(c.chunk_id for c in chunks)
    assert list(commands[-1].name) == JOINTS
    assert np.all(np.isfinite(commands[-1].position))
    assert proc.returncode == 0, err[-3000:]
    assert "terminate called" not in err


REPLAY = r"""
import sys
from restac_ros.nodes.bringup import main
sys.exit(main(["--params", sys.argv[1], "--launch", "replay", "--use-sim-time",
               "--bag", sys.argv[2], "--exit-when-bag-done"]))
"""


def test_bringup_replays_a_sample_bag_on_sim_time(tmp_path, ros_context, tiny_checkpoint):
    from restac_ros.sample_bag.writer import write_sample_bag

    bag = tmp_path / "bag"
    write_sample_bag(bag, seconds=4.0, seed=5)
    data = yaml.safe_load(config_path("policy.yaml").read_text())
    data["policy_node"]["ros__parameters"].update(checkpoint_dir=str(tiny_checkpoint))
    data["bag_player"]["ros__parameters"].update(start_delay_s=1.0)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(data))
    listener = rclpy.create_node("replay_listener", context=ros_context)
    chunks: list[ActionChunk] = []
    commands: list[JointState] = []
    listener.create_subscription(ActionChunk, "/restac/action_chunk", chunks.append, qos.OUTPUT)
    listener.create_subscription(JointState, "/restac/command", commands.append, qos.COMMAND)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(listener)
    proc = start_python(REPLAY, str(params), str(bag))
    try:
        exited = spin_until(executor, lambda: proc.poll() is not None, 180.0)
    finally:
        out, err = stop_process(proc)
        executor.shutdown(timeout_sec=2.0)
        listener.destroy_node()
    assert exited, f"bringup did not exit when the bag ended\n{err[-3000:]}"
    assert proc.returncode == 0, err[-3000:]
    assert len(chunks) >= 5 and commands, f"chunks={len(chunks)}\n{err[-3000:]}"
    # chunk stamps are bag (sim) time: inside the recorded episode, not wall-clock now
    from restac_ros.sample_bag.writer import EPOCH_NS

    stamp = chunks[-1].header.stamp.sec * 10**9 + chunks[-1].header.stamp.nanosec
    assert EPOCH_NS <= stamp <= EPOCH_NS + 5 * 10**9
