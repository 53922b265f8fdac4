"""Frame alignment from a real rosbag2: nearest earlier stamp, action_prev, contact labels."""

from __future__ import annotations

import numpy as np
import pytest

from restac_ros.tactile.bag_frames import BagFramesError, nearest_earlier, read_bag_frames

from .synth_bag import NS, phase, write_episode


def test_nearest_earlier():
    stamps = np.array([10, 20, 30], np.int64)
    got = nearest_earlier(stamps, np.array([5, 10, 19, 20, 29, 31, 100]))
    np.testing.assert_array_equal(got, [-1, 0, 0, 1, 1, 2, 2])


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    return write_episode(tmp_path_factory.mktemp("bag") / "ep", duration=2.0, seed=3)


def test_read_bag_frames(episode):
    f = read_bag_frames(episode, stride=2)
    n = len(f)
    # 60 tactile frames at 30 Hz, every 2nd -> 30 anchors; the first one has no camera
    # frame before it (cameras start 500 ns later) and no previous state.
    assert n == 29
    assert f.tactile.shape == (n, 128, 160, 3) and f.tactile.dtype == np.uint8
    assert f.views.shape == (n, 3, 224, 224, 3) and f.views.dtype == np.uint8
    assert f.action_prev.shape == (n, 7) and f.action_prev.dtype == np.float32
    assert np.all(np.diff(f.stamps_ns) > 0)
    want_contact = [phase(t / NS, 2.0)[1] for t in f.stamps_ns]
    np.testing.assert_array_equal(f.contact, want_contact)
    # joint1 = arm progress sampled from the 100 Hz stream at the nearest earlier stamp
    js_t = (f.stamps_ns // (NS // 100)) / 100.0
    prev_t = ((f.stamps_ns - NS // 15 + 0) // (NS // 100)) / 100.0
    want = [phase(t, 2.0)[0] - phase(p, 2.0)[0] for t, p in zip(js_t, prev_t, strict=True)]
    np.testing.assert_allclose(f.action_prev[:, 0], want, atol=1e-6)
    np.testing.assert_allclose(f.action_prev[:, 1], 0.5 * f.action_prev[:, 0], atol=1e-6)


def test_missing_topic_named(episode):
    with pytest.raises(BagFramesError, match="/tactile/other"):
        read_bag_frames(episode, tactile_topic="/tactile/other")
