"""openpi norm_stats.json I/O and the z-score / quantile transforms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from restac_ros.model import norm_stats as ns


@pytest.fixture
def stats():
    return {"actions": ns.NormStats(mean=np.float32([1, -2, 0.5]), std=np.float32([2, 0.5, 1]),
                                    q01=np.float32([-3, -4, 0]), q99=np.float32([5, 0, 1])),
            "state": ns.NormStats(mean=np.float32([0, 0, 0]), std=np.float32([1, 1, 1]))}


def test_round_trip_openpi_format(stats, tmp_path):
    path = ns.save_norm_stats(tmp_path / "assets" / "robot", stats)
    assert path == tmp_path / "assets" / "robot" / "norm_stats.json"
    data = json.loads(path.read_text())
    assert set(data["norm_stats"]) == {"actions", "state"}
    assert data["norm_stats"]["actions"]["q99"] == [5, 0, 1]
    assert "q01" not in data["norm_stats"]["state"]
    got = ns.load_norm_stats(path.parent)
    np.testing.assert_array_equal(got["actions"].q01, stats["actions"].q01)
    assert got["state"].q99 is None


def test_z_score_and_quantile_formulas_leave_padding_alone(stats):
    s = stats["actions"]
    x = np.float32([[3, -1, 0.5, 0.0, 0.0]])  # 3 robot dims + 2 zero-padding dims
    z = ns.normalize(x, s, use_quantiles=False)
    np.testing.assert_allclose(z[0, :3], (x[0, :3] - s.mean) / (s.std + 1e-6), rtol=1e-6)
    q = ns.normalize(x, s, use_quantiles=True)
    np.testing.assert_allclose(q[0, :3], (x[0, :3] - s.q01) / (s.q99 - s.q01 + 1e-6) * 2 - 1,
                               rtol=1e-6)
    assert np.all(z[0, 3:] == 0) and np.all(q[0, 3:] == 0)
    for use_q, y in ((False, z), (True, q)):
        np.testing.assert_allclose(ns.unnormalize(y, s, use_quantiles=use_q), x, atol=1e-5)
    assert x[0, 0] == 3  # inputs are not modified in place


def test_errors(stats, tmp_path):
    with pytest.raises(FileNotFoundError, match="norm stats file not found"):
        ns.load_norm_stats(tmp_path / "missing")
    (tmp_path / "norm_stats.json").write_text(json.dumps({"actions": {}}))
    with pytest.raises(ValueError, match="no 'norm_stats' key"):
        ns.load_norm_stats(tmp_path)
    with pytest.raises(ValueError, match="q01/q99"):
        ns.normalize(np.zeros(3), stats["state"], use_quantiles=True)


def test_compute_norm_stats():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(5000, 2))
    s = ns.compute_norm_stats(x)
    np.testing.assert_allclose(s.mean, 3.0, atol=0.1)
    np.testing.assert_allclose(s.std, 2.0, atol=0.1)
    assert np.all(s.q01 < s.mean) and np.all(s.q99 > s.mean)


def test_per_step_action_stats_round_trip_and_broadcast(tmp_path):
    """[H, D] stats (one row per chunk step): each step normalised with its own row."""
    rng = np.random.default_rng(0)
    scale = np.array([1.0, 5.0, 10.0])[None, :, None]  # later steps move more
    chunks = rng.normal(size=(400, 3, 2)) * scale
    s = ns.compute_norm_stats(chunks, per_step=True)
    assert s.mean.shape == s.std.shape == s.q01.shape == (3, 2)
    np.testing.assert_allclose(s.std[:, 0], [1.0, 5.0, 10.0], rtol=0.15)
    x = np.zeros((3, 4), np.float32)  # padded action_dim 4 > 2 robot dims
    x[:, :2] = chunks[0]
    z = ns.normalize(x, s, use_quantiles=False)
    np.testing.assert_allclose(z[:, :2], (chunks[0] - s.mean) / (s.std + 1e-6), rtol=1e-5)
    assert (z[:, 2:] == 0).all()
    np.testing.assert_allclose(ns.unnormalize(z, s, use_quantiles=False), x, atol=1e-5)
    q = ns.normalize(x, s, use_quantiles=True)
    np.testing.assert_allclose(ns.unnormalize(q, s, use_quantiles=True), x, atol=1e-4)
    batched = ns.normalize(np.stack([x, x]), s, use_quantiles=False)  # [B, H, D]
    np.testing.assert_allclose(batched[1], z)
    path = ns.save_norm_stats(tmp_path / "norm_stats.json", {"actions": s})
    back = ns.load_norm_stats(path)["actions"]
    np.testing.assert_array_equal(back.std, s.std)
    with pytest.raises(ValueError, match="3-step chunks"):
        ns.normalize(np.zeros((5, 2)), s, use_quantiles=False)
    with pytest.raises(ValueError, match=r"chunks \[N, H, D\]"):
        ns.compute_norm_stats(np.zeros((10, 2)), per_step=True)
