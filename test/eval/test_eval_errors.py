"""restac-eval on broken input: clear errors for a missing topic, a wrong type, a corrupt
bag, a missing checkpoint; partial results when interrupted (SIGINT). Damaged but partly
readable bags and refused checkpoints: test_eval_damaged.py."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from restac_ros.eval import runner
from restac_ros.eval.cli import EXIT_BAG, EXIT_INTERRUPTED, EXIT_USAGE, main
from restac_ros.model.policy import RestacPolicy
from restac_ros.sample_bag.writer import write_sample_bag


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory) -> Path:
    return write_sample_bag(tmp_path_factory.mktemp("err") / "small", storage="mcap",
                            seconds=2.0, seed=5).path


def _copy(src: Path, dst: Path, drop=(), string_topic: str | None = None) -> Path:
    """Re-write a bag without `drop` topics; `string_topic` becomes a std_msgs/String topic."""
    store = get_typestore(Stores.ROS2_KILTED)
    with Reader(src) as r, Writer(dst, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {}
        for c in r.connections:
            if c.topic in drop or c.topic == string_topic:
                continue
            conns[c.id] = w.add_connection(c.topic, c.msgtype, typestore=store)
        if string_topic is not None:
            s = w.add_connection(string_topic, "std_msgs/msg/String", typestore=store)
            msg = store.types["std_msgs/msg/String"](data="not a joint state")
            w.write(s, r.start_time, store.serialize_cdr(msg, "std_msgs/msg/String"))
        for c, t, raw in r.messages():
            if c.id in conns:
                w.write(conns[c.id], t, raw)
    return dst


def _run(capsys, *args) -> tuple[int, str]:
    rc = main([*map(str, args), "-q"])
    return rc, capsys.readouterr().err


def test_missing_topic(small_bag, demo_checkpoint, tmp_path, capsys):
    bag = _copy(small_bag, tmp_path / "no_wrist", drop=("/camera/left_wrist/image_raw",))
    rc, err = _run(capsys, bag, "--out", tmp_path / "o", "--checkpoint", demo_checkpoint)
    assert rc == EXIT_BAG
    assert "missing topics" in err and "/camera/left_wrist/image_raw" in err
    rc, err = _run(capsys, small_bag, "--out", tmp_path / "o2", "--checkpoint", demo_checkpoint,
                   "--teacher-topic", "/no/such/commands")
    assert rc == EXIT_BAG and "/no/such/commands" in err


def test_wrong_message_type(small_bag, demo_checkpoint, tmp_path, capsys):
    bag = _copy(small_bag, tmp_path / "string_joints", string_topic="/joint_states")
    rc, err = _run(capsys, bag, "--out", tmp_path / "o", "--checkpoint", demo_checkpoint)
    assert rc == EXIT_BAG
    assert "/joint_states" in err and "std_msgs/msg/String" in err


def test_corrupt_bag(small_bag, demo_checkpoint, tmp_path, capsys):
    """Garbage after the MCAP magic: nothing is readable (a truncated MCAP is evaluated as far
    as it reads: test_eval_damaged.py)."""
    bag = tmp_path / "broken"
    shutil.copytree(small_bag, bag)
    (f,) = bag.glob("*.mcap")
    data = f.read_bytes()
    f.write_bytes(data[:64] + np.random.default_rng(0).bytes(len(data) - 64))
    rc, err = _run(capsys, bag, "--out", tmp_path / "o", "--checkpoint", demo_checkpoint)
    assert rc == EXIT_BAG
    assert str(bag) in err and "no message is readable" in err
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_missing_bag_and_checkpoint(small_bag, demo_checkpoint, tmp_path, capsys):
    rc, err = _run(capsys, tmp_path / "nope", "--out", tmp_path / "o", "--checkpoint",
                   demo_checkpoint)
    assert rc == EXIT_BAG and "bag not found" in err
    rc, err = _run(capsys, small_bag, "--out", tmp_path / "o", "--checkpoint", tmp_path)
    assert rc == EXIT_USAGE and "not a policy checkpoint" in err


def test_interrupt_keeps_partial_results(held_out_bags, demo_checkpoint, tmp_path, capsys,
                                         monkeypatch):
    """Ctrl-C (a real SIGINT, raised at a fixed point: no timing) as the second batch of 8
    ticks starts: exit 130; the interrupted batch is finished, so exactly 16 chunks."""
    calls = []
    infer_batch = RestacPolicy.infer_batch

    def interrupted(self, obs, seeds):
        calls.append(len(seeds))
        if len(calls) == 3:  # the warm-up call, batch 1, then batch 2
            signal.raise_signal(signal.SIGINT)
        return infer_batch(self, obs, seeds)

    monkeypatch.setattr(RestacPolicy, "infer_batch", interrupted)
    out = tmp_path / "o"
    rc, err = _run(capsys, held_out_bags[0], "--out", out, "--checkpoint", demo_checkpoint,
                   "--rate", "30", "--batch", "8")
    assert rc == EXIT_INTERRUPTED, err
    assert "interrupted; results of 16 policy calls written" in err
    m = json.loads((out / "metrics.json").read_text())
    assert m["run"]["interrupted"] is True and m["steps"] == 16
    assert m["run"]["ticks"] < 360
    assert (out / "report.html").is_file() and (out / "predictions").is_dir()


def test_interrupt_before_first_observation(small_bag, demo_checkpoint, tmp_path, capsys,
                                            monkeypatch):
    """Ctrl-C as the first valid observation arrives (after the ticks without a previous
    joint state): exit 130 and an empty, well-formed report."""
    add = runner._Batcher.add

    def interrupted(self, step, hold):
        signal.raise_signal(signal.SIGINT)
        add(self, step, hold)

    monkeypatch.setattr(runner._Batcher, "add", interrupted)
    out = tmp_path / "o"
    rc, err = _run(capsys, small_bag, "--out", out, "--checkpoint", demo_checkpoint)
    assert rc == EXIT_INTERRUPTED, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps"] == 0 and m["run"]["interrupted"] is True
    assert m["run"]["ticks"] == sum(m["run"]["invalid_ticks"].values()) + 1
    assert (out / "report.html").is_file() and not (out / "predictions").exists()

