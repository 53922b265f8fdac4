"""BagDataset's public teacher series: collected in the replay's single pass, equal to
a separate read of the teacher topic; STORAGE_ERRORS is public (old name kept)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from restac_ros.core import bag_dataset
from restac_ros.core.action_space import joint_position
from restac_ros.core.bag_dataset import BagDataset, BagError
from restac_ros.core.observation import ObservationBuilder
from restac_ros.core.teacher_series import UNREAD_STAMP, TeacherSeries
from restac_ros.model import norm_stats as norm
from restac_ros.model.tokenizer import PromptTokenizer
from test.core.bagtools import JOINTS, TEACHER, BagPlan, write_bag
from test.core.test_observation import make_spec

S = 1_000_000_000


@pytest.fixture()
def builder(norm_stats_path, spm_model_path) -> ObservationBuilder:
    return ObservationBuilder(
        make_spec(), norm.load_norm_stats(norm_stats_path), PromptTokenizer(spm_model_path, 16)
    )


def _independent_read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with AnyReader([path]) as reader:
        conns = [c for c in reader.connections if c.topic == TEACHER]
        stamps, rows = [], []
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            stamps.append(msg.header.stamp.sec * S + msg.header.stamp.nanosec)
            given = dict(zip(msg.name, msg.position, strict=True))
            rows.append([given[n] for n in JOINTS])
    order = np.argsort(stamps, kind="stable")
    return np.asarray(stamps, np.int64)[order], np.asarray(rows, np.float32)[order]


def test_storage_errors_public_with_old_alias() -> None:
    assert bag_dataset._STORAGE_ERRORS is bag_dataset.STORAGE_ERRORS
    assert OSError in bag_dataset.STORAGE_ERRORS


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_series_from_replay_equals_separate_read(tmp_path: Path, builder, storage) -> None:
    bag = write_bag(tmp_path / "bag", BagPlan(storage=storage, duration_s=2.0))
    want_stamps, want_rows = _independent_read(bag)
    assert len(want_stamps) > 20
    with BagDataset(bag, builder, rate_hz=10.0) as replayed:
        live = replayed._teacher_stamps  # old private view: filled in place by the replay
        assert np.all(live == UNREAD_STAMP)
        steps = list(replayed)
        stamps, rows = replayed.teacher_series()
        np.testing.assert_array_equal(live[: len(stamps)], stamps)
    np.testing.assert_array_equal(stamps, want_stamps)
    np.testing.assert_array_equal(rows, want_rows)
    assert rows.dtype == np.float32 and stamps.dtype == np.int64
    # A dataset asked before any replay reads the topic alone: same series, same targets.
    with BagDataset(bag, builder, rate_hz=10.0) as first:
        s2, r2 = first.teacher_series()
        np.testing.assert_array_equal(s2, want_stamps)
        np.testing.assert_array_equal(r2, want_rows)
        again = list(first)
    for a, b in zip(steps, again, strict=True):
        np.testing.assert_array_equal(a.targets, b.targets)
        np.testing.assert_array_equal(a.target_mask, b.target_mask)
        assert (a.observation is None) == (b.observation is None)
    assert sum(s.target_mask.all() for s in steps) > 5


def test_series_keeps_stamp_order_and_grows() -> None:
    series = TeacherSeries(["a", "b"], capacity=2)
    for stamp, v in ((30, 3.0), (10, 1.0), (20, 2.0), (20, 2.5)):
        series.add(stamp, np.array([v, -v]))
    stamps, rows = series.arrays()
    assert stamps.tolist() == [10, 20, 20, 30]
    assert rows[:, 0].tolist() == [1.0, 2.0, 2.5, 3.0]
    targets, mask = series.targets(10, horizon=3, dt_ns=10, slack_ns=0)
    assert mask.tolist() == [True, True, True] and targets[:, 0].tolist() == [1.0, 2.0, 3.0]


def test_bad_teacher_message_is_a_bag_error(tmp_path: Path, norm_stats_path,
                                            spm_model_path) -> None:
    names = (*JOINTS[:-1], "finger")  # the bag's teacher commands have no "finger"
    spec = make_spec(joint_names=names, action_space=joint_position(names, 0.1, 10))
    b = ObservationBuilder(spec, norm.load_norm_stats(norm_stats_path),
                           PromptTokenizer(spm_model_path, 16))
    bag = write_bag(tmp_path / "bag", BagPlan())
    with BagDataset(bag, b, rate_hz=10.0) as ds, pytest.raises(BagError, match="lacks action"):
        ds.teacher_series()
