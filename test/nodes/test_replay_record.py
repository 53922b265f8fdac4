"""Replay with recording: every chunk of a bag arrives, restac-record writes a bag that
restac-eval evaluates to the same chunks.

restac-bringup runs the replay launch's nodes (bag_player waits until policy_node is
active, use_sim_time, tick_on: stamps) plus restac-record in its own process. The
chunks recorded live must be exactly restac-eval's ticks over the bag (less the final
tick(s) whose observation window the bag's end leaves open); the recording carries
the inputs, chunks, commands and diagnostics with the config and checkpoint id in its
metadata, and restac-eval over the recording gives the offline chunks again.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from restac_ros.msg import ActionChunk
from rosbags.rosbag2 import Reader

from restac_ros import recording
from restac_ros.eval import params as eval_params
from restac_ros.eval.bag_io import custom_metadata
from restac_ros.eval.prediction_bag import make_typestore
from restac_ros.eval.runner import EvalOptions, evaluate_bag
from restac_ros.nodes import qos
from restac_ros.paths import config_path
from restac_ros.sample_bag.writer import write_sample_bag
from test.ros_helpers import spin_until, start_python, stop_process

RATE_HZ = 5.0
SEED = 3

REPLAY = r"""
import sys
from restac_ros.nodes.bringup import main
sys.exit(main(["--params", sys.argv[1], "--launch", "replay", "--use-sim-time",
               "--bag", sys.argv[2], "--record", sys.argv[3], "--exit-when-bag-done"]))
"""


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def offline(bag, ckpt) -> dict[int, np.ndarray]:
    from restac_ros.model.policy import RestacPolicy

    p = eval_params.load_params()
    p.update(checkpoint_dir=str(ckpt), rate_hz=RATE_HZ, seed=SEED)
    policy = RestacPolicy.from_checkpoint(ckpt, num_steps=int(p["num_steps"]))
    result = evaluate_bag(bag, policy, p, EvalOptions(rate_hz=RATE_HZ, seed=SEED,
                                                       progress=False))
    return {r.stamp_ns: np.asarray(r.actions) for r in result.records}


def recorded_chunks(bag) -> dict[int, np.ndarray]:
    store = make_typestore()
    out = {}
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == "/restac/action_chunk"]
        for conn, _, raw in reader.messages(connections=conns):
            msg = store.deserialize_cdr(raw, conn.msgtype)
            t = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            out[t] = np.asarray(msg.actions, np.float32).reshape(msg.horizon, msg.action_dim)
    return out


@pytest.fixture(scope="module")
def replay_run(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("replay")
    bag = write_sample_bag(root / "bag", seconds=3.0, seed=11).path
    data = yaml.safe_load(config_path("policy.yaml").read_text())
    data["policy_node"]["ros__parameters"].update(
        checkpoint_dir=str(tiny_checkpoint), rate_hz=RATE_HZ, seed=SEED
    )
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(data))
    rclpy_context = rclpy.Context()
    rclpy.init(context=rclpy_context)
    listener = rclpy.create_node("replay_listener", context=rclpy_context)
    live: list[ActionChunk] = []
    listener.create_subscription(ActionChunk, "/restac/action_chunk", live.append, qos.OUTPUT)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(listener)
    rec = root / "rec"
    proc = start_python(REPLAY, str(params), str(bag), str(rec))
    try:
        exited = spin_until(executor, lambda: proc.poll() is not None, 300.0)
    finally:
        out, err = stop_process(proc)
        executor.shutdown(timeout_sec=2.0)
        listener.destroy_node()
        rclpy.try_shutdown(context=rclpy_context)
    assert exited and proc.returncode == 0, f"rc {proc.returncode}\n{err[-3000:]}"
    live_chunks = {
        stamp_ns(c): np.asarray(c.actions, np.float32).reshape(c.horizon, c.action_dim)
        for c in live
    }
    return dict(bag=bag, params=params, rec=rec, live=live_chunks, err=err,
                offline=offline(bag, tiny_checkpoint), ckpt=tiny_checkpoint, root=root)


def test_every_chunk_of_the_bag_arrives(replay_run):
    # restac-record runs in the pipeline's process: its subscriptions match the policy's
    # publishers when they are made. This test's own listener is another process whose
    # discovery may come after the first chunks: what it saw must be a subset, equal.
    live, expected = recorded_chunks(replay_run["rec"]), replay_run["offline"]
    assert live, replay_run["err"][-3000:]
    seen = replay_run["live"]
    assert seen and set(seen) <= set(live), (sorted(set(seen) - set(live)), len(seen))
    for t in seen:
        np.testing.assert_array_equal(seen[t], live[t])
    assert set(live) <= set(expected), sorted(set(live) - set(expected))
    missing = sorted(set(expected) - set(live))
    # only the final tick can stay open: nothing in the bag is stamped after it
    assert missing in ([], [max(expected)]), (missing, sorted(expected))
    print(f"{len(live)} of {len(expected)} offline ticks live (missing: {missing})")
    for t in live:
        np.testing.assert_allclose(live[t], expected[t], rtol=0, atol=1e-5)


def test_recording_holds_the_run_with_its_provenance(replay_run):
    rec, params = replay_run["rec"], replay_run["params"]
    assert "storage_identifier: mcap" in (rec / "metadata.yaml").read_text()
    assert list(rec.glob("*.mcap"))
    with Reader(rec) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    for topic in ("/camera/base/image_raw", "/tactile/image_raw", "/joint_states",
                  "/restac/prompt", "/teacher/joint_command", "/restac/action_chunk",
                  "/restac/tactile/diagnostics", "/restac/command", "/diagnostics",
                  "/restac/tactile/markers"):
        assert counts.get(topic, 0) > 0, (topic, counts)
    with Reader(replay_run["bag"]) as source:
        for c in source.connections:  # every input message of the bag, none lost
            assert counts[c.topic] == c.msgcount, c.topic
    assert set(replay_run["live"]) <= set(recorded_chunks(rec))
    meta = custom_metadata(rec)
    assert meta[recording.KEY_CONFIG] == params.read_text()
    assert meta[recording.KEY_CHECKPOINT] == str(replay_run["ckpt"])
    assert meta[recording.KEY_CHECKPOINT_ID] == recording.checkpoint_id(replay_run["ckpt"])
    assert len(meta[recording.KEY_CHECKPOINT_ID]) == 16
    assert "restac.contact_intervals" in meta  # the source bag's own metadata


def test_restac_eval_over_the_recording_gives_the_offline_chunks(replay_run):
    out = replay_run["root"] / "eval"
    run = subprocess.run(
        [sys.executable, "-m", "restac_ros.eval.cli", str(replay_run["rec"]), "--out", str(out),
         "--params", str(replay_run["params"]), "--checkpoint", str(replay_run["ckpt"]),
         "--rate", str(RATE_HZ), "--seed", str(SEED), "-q"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = json.loads(next(out.rglob("metrics.json")).read_text())
    assert metrics["steps"] == len(replay_run["offline"]), metrics["run"]
    predictions = recorded_chunks(next(p.parent for p in out.rglob("metadata.yaml")))
    assert predictions.keys() == replay_run["offline"].keys()
    for t, actions in predictions.items():
        np.testing.assert_allclose(actions, replay_run["offline"][t], rtol=0, atol=1e-5)
