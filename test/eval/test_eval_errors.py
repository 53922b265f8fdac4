"""restac-eval on broken input: clear errors for a missing topic, a wrong type, a corrupt or
truncated bag, a missing checkpoint; partial results when interrupted (SIGINT)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from restac_ros.eval.cli import EXIT_BAG, EXIT_INTERRUPTED, EXIT_USAGE, main
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


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_bag(small_bag, demo_checkpoint, tmp_path, capsys, damage):
    bag = tmp_path / "broken"
    shutil.copytree(small_bag, bag)
    (f,) = bag.glob("*.mcap")
    data = f.read_bytes()
    if damage == "truncate":
        f.write_bytes(data[: len(data) * 2 // 5])
    else:
        f.write_bytes(data[:64] + os.urandom(len(data) - 64))
    rc, err = _run(capsys, bag, "--out", tmp_path / "o", "--checkpoint", demo_checkpoint)
    assert rc == EXIT_BAG
    assert str(bag) in err
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_missing_bag_and_checkpoint(small_bag, demo_checkpoint, tmp_path, capsys):
    rc, err = _run(capsys, tmp_path / "nope", "--out", tmp_path / "o", "--checkpoint",
                   demo_checkpoint)
    assert rc == EXIT_BAG and "bag not found" in err
    rc, err = _run(capsys, small_bag, "--out", tmp_path / "o", "--checkpoint", tmp_path)
    assert rc == EXIT_USAGE and "not a policy checkpoint" in err


def test_interrupt_keeps_partial_results(held_out_bags, demo_checkpoint, tmp_path):
    """SIGINT during the run: exit 130, outputs written for the chunks done so far."""
    out = tmp_path / "o"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "restac_ros.eval.cli", str(held_out_bags[0]), "--out", str(out),
         "--checkpoint", str(demo_checkpoint), "--rate", "30"],  # 360 ticks: time to interrupt
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 150
    buf, done = "", 0
    while time.monotonic() < deadline and proc.poll() is None and done < 10:
        ch = proc.stderr.read(1)
        buf += ch
        if ch == "]":  # end of a tqdm update: "... 12/180 [...]"
            counts = re.findall(r"(\d+)/\d+ \[", buf[-200:])
            done = int(counts[-1]) if counts else 0
    assert proc.poll() is None, f"finished before it could be interrupted:\n{buf[-2000:]}"
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, rest[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["run"]["interrupted"] is True
    assert 0 < m["steps"] < 360
    assert (out / "report.html").is_file() and (out / "predictions").is_dir()
