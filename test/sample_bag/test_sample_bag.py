"""restac-make-sample-bag: determinism, read-back with two independent readers,
contact ground truth and a teacher that reacts to touch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.highlevel import AnyReader
from rosbags.image import message_to_cvimage

from restac_ros.sample_bag import EPOCH_NS, read_contact_intervals, read_custom_data
from restac_ros.sample_bag.cli import main
from restac_ros.sample_bag.inspect import read_events
from restac_ros.sample_bag.writer import TOPICS, typestore, write_sample_bag

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 6.5  # long enough for first contact, squeeze and lift-off
SEED = 3
IMAGE_SHAPES = {
    "/camera/base/image_raw": (224, 224, 3),
    "/camera/left_wrist/image_raw": (224, 224, 3),
    "/camera/right_wrist/image_raw": (224, 224, 3),
    "/tactile/image_raw": (240, 320, 3),
}
TYPES = {t.name: t.msgtype for t in TOPICS}
RATES = {t.name: t.rate_hz for t in TOPICS}


def _cli(*args: str, hashseed: str = "0") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    return subprocess.run(
        [sys.executable, "-m", "restac_ros.sample_bag", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> dict[str, Path]:
    """In-process and CLI (other hash seed) bags of the same seed, plus another seed."""
    root = tmp_path_factory.mktemp("bags")
    out = {}
    for storage in ("mcap", "sqlite3"):
        out[f"{storage}_a"] = root / "a" / storage / "bag"
        write_sample_bag(out[f"{storage}_a"], storage=storage, seconds=SECONDS, seed=SEED)
        out[f"{storage}_b"] = root / "b" / storage / "bag"
        res = _cli(
            str(out[f"{storage}_b"]),
            "--storage",
            storage,
            "--seconds",
            str(SECONDS),
            "--seed",
            str(SEED),
            hashseed="12345",
        )
        assert res.returncode == 0, res.stderr
    out["other_seed"] = root / "c" / "mcap" / "bag"
    write_sample_bag(out["other_seed"], storage="mcap", seconds=SECONDS, seed=SEED + 1)
    return out


def _files(bag: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(bag.iterdir())}


def _read_rosbags(bag: Path) -> dict[str, list[tuple[int, object]]]:
    msgs = defaultdict(list)
    with AnyReader([bag], default_typestore=typestore()) as reader:
        for conn in reader.connections:
            assert conn.msgtype == TYPES[conn.topic]
        for conn, t, raw in reader.messages(connections=reader.connections):
            msgs[conn.topic].append((t, reader.deserialize(raw, conn.msgtype)))
    return msgs


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_same_seed_is_byte_identical(bags, storage):
    a, b = _files(bags[f"{storage}_a"]), _files(bags[f"{storage}_b"])
    assert set(a) == {"metadata.yaml", "bag.mcap" if storage == "mcap" else "bag.db3"}
    assert set(a) == set(b)
    for name in a:
        assert a[name] == b[name], f"{storage}: {name} differs between runs of the same seed"


def test_different_seed_differs(bags):
    a, c = _files(bags["mcap_a"]), _files(bags["other_seed"])
    assert a["bag.mcap"] != c["bag.mcap"]
    assert read_custom_data(bags["other_seed"])["restac.seed"] == str(SEED + 1)
    assert (
        read_contact_intervals(bags["mcap_a"])[0] != read_contact_intervals(bags["other_seed"])[0]
    )


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_rosbags_reads_back(bags, storage):
    msgs = _read_rosbags(bags[f"{storage}_a"])
    assert set(msgs) == set(TYPES)
    assert len(msgs["/restac/prompt"]) == 1
    assert msgs["/restac/prompt"][0][0] == EPOCH_NS
    custom = read_custom_data(bags[f"{storage}_a"])
    assert msgs["/restac/prompt"][0][1].data == custom["restac.prompt"]
    for topic, rate in RATES.items():
        if rate:
            assert abs(len(msgs[topic]) - rate * SECONDS) <= 1, topic
        times = [t for t, _ in msgs[topic]]
        assert times == sorted(times) and len(set(times)) == len(times), topic
        assert times[0] == EPOCH_NS
        for t, msg in msgs[topic]:
            if hasattr(msg, "header"):
                assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == t
    for topic, shape in IMAGE_SHAPES.items():
        for _, msg in msgs[topic][::7]:
            assert msg.encoding == "rgb8" and msg.step == shape[1] * 3
            img = message_to_cvimage(msg)  # rosbags-image decode
            assert img.shape == shape and img.dtype == np.uint8
            assert img.std() > 5  # a scene, not a blank frame
    for topic in ("/joint_states", "/teacher/joint_command"):
        for _, msg in msgs[topic]:
            assert list(msg.name) == [f"joint{i}" for i in range(1, 8)] + ["gripper"]
            assert len(msg.position) == 8
    assert all(len(m.velocity) == 8 for _, m in msgs["/joint_states"])


def test_mcap_independent_reader(bags):
    counts = defaultdict(int)
    with bags["mcap_a"].joinpath("bag.mcap").open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        types = {ch.topic: summary.schemas[ch.schema_id].name for ch in summary.channels.values()}
        assert types == TYPES
        last = defaultdict(int)
        for _, channel, message, decoded in reader.iter_decoded_messages():
            counts[channel.topic] += 1
            assert message.log_time >= last[channel.topic]
            last[channel.topic] = message.log_time
            if hasattr(decoded, "header"):
                stamp = decoded.header.stamp
                assert stamp.sec * 10**9 + stamp.nanosec == message.log_time
            if channel.topic in IMAGE_SHAPES and counts[channel.topic] % 9 == 1:
                h, w, _ = IMAGE_SHAPES[channel.topic]
                assert (decoded.height, decoded.width, decoded.encoding) == (h, w, "rgb8")
                img = np.frombuffer(decoded.data, np.uint8).reshape(h, w, 3)
                assert img.std() > 5
        meta = {m.name: m.metadata for m in reader.iter_metadata()}
    assert "restac.contact_intervals" in meta["rosbag2"]["serialized_metadata"]
    expected = {t: len(v) for t, v in _read_rosbags(bags["mcap_a"]).items()}
    assert dict(counts) == expected


def _tactile_and_contact(bag: Path):
    msgs = _read_rosbags(bag)
    tac = [(t, message_to_cvimage(m).astype(np.int16)) for t, m in msgs["/tactile/image_raw"]]
    gt = {t: m.data for t, m in msgs["/contact/ground_truth"]}
    return msgs, tac, gt


def test_contact_ground_truth_and_tactile(bags):
    intervals = read_contact_intervals(bags["mcap_a"])
    assert intervals and all(a < b for a, b in intervals)
    assert intervals == read_contact_intervals(bags["mcap_a"] / "bag.mcap")  # file path works
    msgs, tac, gt = _tactile_and_contact(bags["mcap_a"])
    assert {t for t, _ in tac} == set(gt)
    for t, on in gt.items():  # topic == metadata (closed or half-open: same on stamps)
        assert on == any(a <= t <= b for a, b in intervals) == any(a <= t < b for a, b in intervals)
    assert any(gt.values()) and not all(gt.values())
    rest = tac[0][1]
    off = [np.abs(img - rest).mean() for t, img in tac if not gt[t]]
    on = [np.abs(img - rest).mean() for t, img in tac if gt[t]]
    assert max(off) < 2.0  # sensor noise only
    assert max(on) > 5 * max(off) and np.median(on) > 3.0  # the blob is plainly visible
    # The blob grows after touch-down, then slides (frames in contact keep changing).
    contact_imgs = [img for t, img in tac if gt[t]]
    assert np.abs(contact_imgs[-1] - contact_imgs[0]).mean() > 1.0


def test_teacher_reacts_to_touch(bags):
    msgs = _read_rosbags(bags["mcap_a"])
    start = read_contact_intervals(bags["mcap_a"])[0][0]
    cmd = [(t, np.asarray(m.position)) for t, m in msgs["/teacher/joint_command"]]
    state = {t: np.asarray(m.position) for t, m in msgs["/joint_states"]}
    before = [c for t, c in cmd if t < start]
    after = [(t, c) for t, c in cmd if t >= start]
    # Closing slowly before touch; the first command after touch squeezes below the
    # measured width (the gripper closes on the object), then the arm lifts.
    assert before[0][7] > 0.08 and before[-1][7] < before[0][7]
    width_at_touch = state[max(t for t in state if t <= after[0][0])][7]
    assert after[0][1][7] < width_at_touch - 0.008
    assert np.allclose(before[-1][:7], after[0][1][:7], atol=1e-6)  # arm held still at touch
    lifted = [c for t, c in after if t > after[0][0] + 6 * 10**8]
    assert lifted and np.abs(lifted[-1][:7] - after[0][1][:7]).max() > 0.02
    names = [n for n, _ in read_events(bags["mcap_a"])]
    assert names[:6] == ["approach", "descend", "close", "squeeze", "lift", "transport"]
    ev = dict(read_events(bags["mcap_a"]))
    assert start < ev["squeeze"] <= start + 10**9 // 15 + 10**6  # reacts within one tick


def test_cli_default_episode_has_two_full_grasps(tmp_path):
    out = tmp_path / "default_bag"
    res = _cli(str(out))
    assert res.returncode == 0, res.stderr
    assert "contact intervals" in res.stdout
    custom = read_custom_data(out)
    assert custom["restac.seed"] == "0"
    assert "egg" in custom["restac.prompt"]
    intervals = json.loads(custom["restac.contact_intervals"])
    assert len(intervals) >= 2
    assert all(b < EPOCH_NS + 20 * 10**9 for _, b in intervals[:2])  # both released
    names = [n for n, _ in read_events(out)]
    assert names.count("release") >= 2 and names.count("place") >= 2
    assert (out / "default_bag.mcap").is_file()
    assert main([str(out), "-q"]) == 2  # never overwrites


def test_python_api_rejects_bad_storage(tmp_path):
    with pytest.raises(ValueError, match="storage"):
        write_sample_bag(tmp_path / "x", storage="rosbag1", seconds=1.0)
