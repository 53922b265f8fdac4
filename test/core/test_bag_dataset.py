"""BagDataset: replay through the live buffers + builder, teacher targets, bag errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from restac_ros.core.action_space import joint_position
from restac_ros.core.bag_dataset import (
    BagCorrupt,
    BagDataset,
    BagError,
    BagTopicMissing,
    BagTypeMismatch,
)
from restac_ros.core.observation import ObservationBuilder, ReasonCode
from restac_ros.model import norm_stats as norm
from restac_ros.model.tokenizer import PromptTokenizer
from test.core.bagtools import (
    CAMERAS,
    JOINT_STATES,
    JOINTS,
    START_NS,
    TACTILE,
    TEACHER,
    BagPlan,
    joint_positions,
    write_bag,
)
from test.core.test_observation import make_spec

S = 1_000_000_000


@pytest.fixture()
def builder(norm_stats_path, spm_model_path) -> ObservationBuilder:
    return ObservationBuilder(
        make_spec(), norm.load_norm_stats(norm_stats_path), PromptTokenizer(spm_model_path, 16)
    )


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_replay_count_and_alignment(tmp_path: Path, builder, storage: str) -> None:
    bag = write_bag(tmp_path / "bag", BagPlan(storage=storage))
    with BagDataset(bag, builder, rate_hz=10.0) as ds:
        steps = list(ds)
        assert len(steps) == len(ds) == 11  # 1.0 s at 10 Hz, both ends included
        assert len(list(ds.valid_steps())) == 10  # a second pass re-reads the bag
        counters = ds.counters()
    assert (
        counters["/joint_states"].accepted == 101 and counters["/joint_states"].rejected_total == 0
    )
    assert [s.stamp_ns for s in steps] == [START_NS + i * S // 10 for i in range(11)]
    # first tick: one joint state only -> no action_prev yet; then every tick is valid
    assert steps[0].invalid.reason is ReasonCode.NO_PREVIOUS_STATE
    assert all(s.observation is not None for s in steps[1:])

    stats = builder.stats["state"]
    step = steps[5]  # t = 0.5 s: joints at 100 Hz, newest stamped exactly at the tick
    expect = norm.normalize(joint_positions(0.5), stats, use_quantiles=False)
    np.testing.assert_allclose(step.observation.state[0, :8], expect, atol=1e-5)
    assert step.observation.tactile_mask.tolist() == [True]
    # action_prev: raw delta over ~1/15 s (100 Hz joints: 0.5 s - 70 ms), not normalised
    assert step.sample.prev_joints.stamp_ns == START_NS + S // 2 - 70_000_000
    want = joint_positions(0.5) - joint_positions(0.43)
    np.testing.assert_allclose(step.observation.action_prev[0, :8], want, rtol=1e-6)
    assert np.all(step.observation.action_prev[0, 8:] == 0)

    # teacher: action k due at t0 + k*0.1 s -> first 15 Hz command at or after it
    teacher_times = START_NS + np.round(np.arange(16) * S / 15).astype(np.int64)
    for k in range(10):
        due = step.stamp_ns + k * S // 10
        i = int(np.searchsorted(teacher_times, due))
        if i < 16 and teacher_times[i] < due + S // 10:
            assert step.target_mask[k]
            t_s = (teacher_times[i] - START_NS) / S
            np.testing.assert_allclose(step.targets[k], joint_positions(t_s + 1 / 15), atol=1e-6)
        else:
            assert not step.target_mask[k] and np.all(step.targets[k] == 0)
    assert step.target_mask[:6].all() and not step.target_mask[6:].any()  # bag ends at 1.0 s
    assert step.targets.shape == (10, 8) and step.targets.dtype == np.float32


def test_rate_sets_observation_count(tmp_path: Path, builder) -> None:
    bag = write_bag(tmp_path / "bag", BagPlan(duration_s=2.0))
    for rate, count in ((5.0, 11), (15.0, 31)):
        with BagDataset(bag, builder, rate_hz=rate) as ds:
            assert len(list(ds)) == count


def test_stream_names_mapped_to_topics(tmp_path: Path, norm_stats_path, spm_model_path) -> None:
    """Specs whose stream names are not topics (e.g. slot names) replay via stream_topics."""
    spec = make_spec(
        camera_streams={slot: slot for slot in CAMERAS}, joint_stream="joints", tactile_stream="tac"
    )
    b = ObservationBuilder(
        spec, norm.load_norm_stats(norm_stats_path), PromptTokenizer(spm_model_path, 16)
    )
    topics = {**CAMERAS, "joints": JOINT_STATES, "tac": TACTILE}
    bag = write_bag(tmp_path / "bag")
    with BagDataset(bag, b, rate_hz=10.0, stream_topics=topics) as ds:
        steps = list(ds)
    assert sum(s.observation is not None for s in steps) == 10
    assert steps[-1].observation.tactile_mask.tolist() == [True]
    with pytest.raises(BagTopicMissing, match="'base_0_rgb'"):
        BagDataset(bag, b, rate_hz=10.0)
    with pytest.raises(ValueError, match="unknown streams"):
        BagDataset(bag, b, rate_hz=10.0, stream_topics={"nope": "/x"})


def test_info_and_contact_intervals(tmp_path: Path, builder) -> None:
    with BagDataset(write_bag(tmp_path / "bag"), builder, rate_hz=10.0) as ds:
        pass
    assert ds.info.duration_s == pytest.approx(1.0)
    assert ds.info.contact_intervals() == [(START_NS, START_NS + S // 2)]
    assert ds.info.topics[TEACHER] == "sensor_msgs/msg/JointState"


def test_prompt_missing_gives_empty_prompt_steps(tmp_path: Path, builder) -> None:
    bag = write_bag(tmp_path / "bag", BagPlan(prompt=None))
    with BagDataset(bag, builder, rate_hz=10.0) as ds:
        steps = list(ds)
    assert {s.invalid.reason for s in steps[1:]} == {ReasonCode.EMPTY_PROMPT}


def test_optional_tactile_topic_may_be_absent(tmp_path: Path, builder) -> None:
    bag = write_bag(tmp_path / "bag", BagPlan(omit=(TACTILE,)))
    with BagDataset(bag, builder, rate_hz=10.0) as ds:
        steps = list(ds)
    assert steps[-1].observation.tactile_mask.tolist() == [False]


def test_missing_required_topic(tmp_path: Path, norm_stats_path, spm_model_path) -> None:
    b = ObservationBuilder(
        make_spec(tactile_required=True),
        norm.load_norm_stats(norm_stats_path),
        PromptTokenizer(spm_model_path, 16),
    )
    bag = write_bag(tmp_path / "bag", BagPlan(omit=(TACTILE,)))
    with pytest.raises(BagTopicMissing, match=r"missing topics \['/tactile/image_raw'\]"):
        BagDataset(bag, b, rate_hz=10.0)
    bag2 = write_bag(tmp_path / "bag2", BagPlan(omit=(TEACHER,)))
    with pytest.raises(BagTopicMissing, match="/teacher/joint_command"):
        BagDataset(bag2, b, rate_hz=10.0)


def test_wrong_type(tmp_path: Path, builder) -> None:
    bag = write_bag(tmp_path / "bag", BagPlan(joint_type="std_msgs/msg/String"))
    with pytest.raises(BagTypeMismatch, match="'/joint_states' has type 'std_msgs/msg/String'"):
        BagDataset(bag, builder, rate_hz=10.0)


def test_missing_path(tmp_path: Path, builder) -> None:
    with pytest.raises(BagError, match="bag not found"):
        BagDataset(tmp_path / "nope", builder, rate_hz=10.0)


@pytest.mark.parametrize("storage,suffix", [("sqlite3", ".db3"), ("mcap", ".mcap")])
def test_truncated_bag(tmp_path: Path, builder, storage: str, suffix: str) -> None:
    bag = write_bag(tmp_path / "bag", BagPlan(storage=storage))
    data_file = next(bag.glob(f"*{suffix}"))
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 3])
    with pytest.raises(BagCorrupt, match=str(bag)), BagDataset(bag, builder, rate_hz=10.0) as ds:
        list(ds)


def test_garbage_storage_file(tmp_path: Path, builder) -> None:
    bag = write_bag(tmp_path / "bag")
    data_file = next(bag.glob("*.db3"))
    data_file.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BagCorrupt), BagDataset(bag, builder, rate_hz=10.0) as ds:
        list(ds)


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory: pytest.TempPathFactory):
    """A short bag from the package's own generator (restac-make-sample-bag)."""
    from restac_ros.sample_bag.writer import write_sample_bag

    return write_sample_bag(tmp_path_factory.mktemp("sample") / "bag", seconds=2.0, seed=3)


def test_sample_bag_replay(sample_bag, norm_stats_path, spm_model_path) -> None:
    spec = make_spec(action_space=joint_position(JOINTS, dt_s=1 / 15, horizon=10))
    b = ObservationBuilder(
        spec, norm.load_norm_stats(norm_stats_path), PromptTokenizer(spm_model_path, 64)
    )
    with BagDataset(sample_bag.path, b, rate_hz=15.0) as ds:
        steps = list(ds)
        counters = ds.counters()
    assert len(steps) == int(ds.info.duration_s * 15 + 1e-9) + 1
    assert sum(s.observation is not None for s in steps) >= len(steps) - 2
    assert all(c.rejected_total == 0 for c in counters.values())
    assert ds.info.custom["restac.prompt"] == sample_bag.prompt
    assert ds.info.contact_intervals() == [tuple(i) for i in sample_bag.contact_intervals]

    # teacher targets against an independent read of the teacher topic
    with AnyReader([sample_bag.path]) as reader:
        conns = [c for c in reader.connections if c.topic == TEACHER]
        cmds = []
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = msg.header.stamp.sec * S + msg.header.stamp.nanosec
            cmds.append((stamp, dict(zip(msg.name, msg.position, strict=True))))
    stamps = np.array([c[0] for c in cmds])
    step = steps[len(steps) // 2]
    for k in range(10):
        due = step.stamp_ns + round(k * S / 15)
        i = int(np.searchsorted(stamps, due - 1_000_000))  # 1 ms slack for ns rounding
        assert step.target_mask[k] == (i < len(stamps) and stamps[i] < due + S / 15 - 1_000_000)
        if step.target_mask[k]:
            np.testing.assert_allclose(step.targets[k], [cmds[i][1][n] for n in JOINTS], rtol=1e-6)
