"""Sim recordings are rosbag2 episodes the package's readers take unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from restac_ros.core.bag_dataset import BagDataset
from restac_ros.core.encoder_inputs import encoder_spec, vqvae_inputs_from_bag
from restac_ros.core.observation import ObservationBuilder
from restac_ros.sample_bag import EPOCH_NS, read_contact_intervals, read_custom_data
from restac_ros.sample_bag.writer import typestore
from restac_ros.sim.recorder import KEY_SUCCESS, KEY_TASK, KEY_WORLD, TOPICS, record_episode
from restac_ros.sim.world import JOINT_NAMES


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "episode_000"
    return record_episode(path, 0, seconds=8.0, storage="mcap")


def messages(path: Path) -> list[tuple[str, int, bytes]]:
    with AnyReader([path], default_typestore=typestore()) as reader:
        return [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


def test_episode_metadata_success_and_contact_labels(episode) -> None:
    assert episode.success and episode.success_ns is not None
    custom = read_custom_data(episode.path)
    assert custom[KEY_SUCCESS] == "true" and custom[KEY_WORLD].startswith("restac_sim/")
    assert json.loads(custom[KEY_TASK])["seed"] == 0 and custom["restac.seed"] == "0"
    intervals = read_contact_intervals(episode.path)
    assert intervals and intervals[0][0] > EPOCH_NS + 10**9  # contact after the approach
    assert [name for name, _ in json.loads(custom["restac.events"])][-1] == "hold"
    counts = episode.counts
    assert counts["/joint_states"] == 801 and counts["/tactile/image_raw"] == 241
    assert counts["/camera/base/image_raw"] == counts["/teacher/joint_command"] == 121
    assert set(counts) == set(TOPICS)


def test_bag_dataset_reads_a_recorded_episode(episode) -> None:
    spec = encoder_spec(joint_names=JOINT_NAMES)
    builder = ObservationBuilder.encoder_inputs_only(spec)
    with BagDataset(episode.path, builder, rate_hz=15.0) as ds:
        steps = list(ds.valid_steps())
        stamps, actions = ds.teacher_series()
    assert len(steps) >= 115  # every tick but the first (no previous joint state)
    obs = steps[60].observation
    assert obs.tactile_image.shape == (1, 128, 160, 3)
    assert {k: v.shape for k, v in obs.images.items()} == {
        "base_0_rgb": (1, 224, 224, 3),
        "left_wrist_0_rgb": (1, 224, 224, 3),
        "right_wrist_0_rgb": (1, 224, 224, 3),
    }
    assert actions.shape == (121, 8) and np.all(np.isfinite(actions))
    assert stamps[0] == EPOCH_NS and actions[-1, 7] < actions[0, 7]  # gripper closed at the end


def test_vqvae_inputs_carry_contact_labels(episode) -> None:
    steps = list(vqvae_inputs_from_bag(episode.path))
    labels = [s.contact for s in steps]
    assert any(labels) and not all(labels)
    touch = [s.observation.tactile_image for s in steps if s.contact]
    free = [s.observation.tactile_image for s in steps if s.contact is False]
    # the gel image differs between touching and not touching
    assert float(np.abs(touch[-1] - free[0]).max()) > 0.2


def test_recording_is_deterministic(tmp_path: Path) -> None:
    a = record_episode(tmp_path / "a", 4, seconds=0.5, storage="sqlite3")
    b = record_episode(tmp_path / "b", 4, seconds=0.5, storage="sqlite3")
    assert a.counts == b.counts
    assert messages(a.path) == messages(b.path)


def test_recorder_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="storage"):
        record_episode(tmp_path / "x", 0, storage="rosbag")
    with pytest.raises(ValueError, match="seconds"):
        record_episode(tmp_path / "y", 0, seconds=0.01)
