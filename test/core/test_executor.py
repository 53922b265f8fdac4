"""Chunk execution maths: latency compensation, crossfade continuity, limits, hold, guard."""

from __future__ import annotations

import numpy as np
import pytest

from restac_ros.core.executor import (
    Chunk,
    ChunkExecutor,
    ExecStatus,
    ExecutorConfig,
    GuardMode,
    apply_limits,
    chunk_index,
    difference,
    sample_chunk,
    smoothstep,
    wrap_angle,
)

S = 1_000_000_000
MS = 1_000_000
DT = 0.1  # 10 Hz actions
PERIOD = 0.01  # 100 Hz control


def _ramp(t0_ns: int, start: float, slope: float, horizon: int = 10, dim: int = 2, **kw) -> Chunk:
    """Chunk whose action k is start + slope * k * DT in every dimension."""
    values = start + slope * DT * np.arange(horizon)
    return Chunk(t0_ns, DT, np.repeat(values[:, None], dim, axis=1), **kw)


def _run(ex: ChunkExecutor, t_from: int, t_to: int) -> list:
    return [ex.step(t) for t in range(t_from, t_to, int(PERIOD * S))]


def test_pure_helpers() -> None:
    assert chunk_index(S + 250 * MS, S, 0.1) == pytest.approx(2.5)
    acts = np.array([[0.0], [1.0], [3.0]])
    np.testing.assert_allclose(sample_chunk(acts, 1.5), [2.0])
    np.testing.assert_allclose(sample_chunk(acts, -3.0), [0.0])
    np.testing.assert_allclose(sample_chunk(acts, 2.0), [3.0])
    assert sample_chunk(acts, 2.01) is None  # never extrapolate
    assert smoothstep(0) == 0 and smoothstep(1) == 1 and smoothstep(0.5) == 0.5


def test_latency_compensation_skips_past_actions() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, crossfade_s=0.0), dim=2)
    chunk = _ramp(10 * S, 0.0, 1.0)  # action k = 0.1 k, due at 10 s + 0.1 k
    assert ex.add_chunk(chunk, 10 * S + 350 * MS)  # arrives 350 ms after the observation
    cmd = ex.step(10 * S + 350 * MS)
    assert cmd.index == pytest.approx(3.5)
    np.testing.assert_allclose(cmd.positions, [0.35, 0.35])
    assert cmd.status is ExecStatus.TRACKING and cmd.chunk_id == 0


def test_chunk_entirely_in_the_past_or_older_is_refused() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD), dim=2)
    assert not ex.add_chunk(_ramp(0, 0.0, 1.0), 2 * S)  # ended at 0.9 s
    assert ex.add_chunk(_ramp(2 * S, 0.0, 1.0, chunk_id=2), 2 * S)
    assert not ex.add_chunk(_ramp(S, 0.0, 1.0, chunk_id=1), 2 * S)
    assert ex.current_chunk.chunk_id == 2


def test_crossfade_has_no_step_at_chunk_boundary() -> None:
    cfg = ExecutorConfig(PERIOD, crossfade_s=0.2)
    ex = ChunkExecutor(cfg, dim=2)
    ex.add_chunk(_ramp(0, 0.0, 1.0, chunk_id=1), 0)
    cmds = _run(ex, 0, 500 * MS)
    # the new chunk is 0.5 above the old one at 500 ms: a 0.5 jump without crossfade
    ex.add_chunk(_ramp(400 * MS, 0.9, 1.0, chunk_id=2), 500 * MS)
    cmds += _run(ex, 500 * MS, 900 * MS)
    pos = np.array([c.positions[0] for c in cmds])
    steps = np.abs(np.diff(pos))
    # offset = last command (0.49 at 490 ms) - new chunk at 500 ms (1.0) = -0.51; bound:
    # ramp speed * period + smoothstep's max slope (1.5 / fade) * |offset| * period
    assert steps.max() <= 1.0 * PERIOD + 1.5 / 0.2 * 0.51 * PERIOD + 1e-9  # vs a 0.5 jump
    assert any(c.status is ExecStatus.CROSSFADE for c in cmds)
    # after the fade the new chunk is tracked exactly
    end = cmds[-1]
    assert end.status is ExecStatus.TRACKING and end.chunk_id == 2
    np.testing.assert_allclose(end.positions, 0.9 + 1.0 * (0.89 - 0.4), atol=1e-9)


def test_without_crossfade_the_boundary_jumps() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, crossfade_s=0.0), dim=1)
    ex.add_chunk(_ramp(0, 0.0, 1.0, dim=1), 0)
    a = ex.step(500 * MS).positions[0]
    ex.add_chunk(_ramp(400 * MS, 0.9, 1.0, dim=1), 510 * MS)
    b = ex.step(510 * MS).positions[0]
    assert b - a > 0.4


def test_hold_after_chunk_end_never_extrapolates() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, crossfade_s=0.0), dim=2)
    ex.add_chunk(_ramp(0, 0.0, 1.0), 0)  # last action 0.9 at 0.9 s
    cmds = [ex.step(t) for t in range(0, 2 * S, 7 * MS)]  # ticks miss 0.9 s (896, 903 ms)
    last = cmds[-1]
    assert last.status is ExecStatus.HOLD_CHUNK_END and last.index is None
    np.testing.assert_allclose(last.positions, [0.9, 0.9])  # the last action itself
    assert max(c.positions[0] for c in cmds) == pytest.approx(0.9)  # never beyond it
    assert all(c.status is ExecStatus.HOLD_CHUNK_END for c in cmds if c.t_ns > 900 * MS)


def test_hold_before_any_chunk() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD), dim=2)
    assert ex.step(0).status is ExecStatus.NO_COMMAND and ex.step(0).positions is None
    ex.seed(np.array([0.3, -0.3]))
    cmd = ex.step(S)
    assert cmd.status is ExecStatus.HOLD_NO_CHUNK
    np.testing.assert_allclose(cmd.positions, [0.3, -0.3])
    with pytest.raises(ValueError):
        ex.seed(np.array([np.nan, 0.0]))


def test_first_chunk_fades_in_from_seed() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, crossfade_s=0.1), dim=1)
    ex.seed(np.array([1.0]))
    ex.add_chunk(Chunk(0, DT, np.zeros((10, 1))), 0)
    first = ex.step(0).positions[0]
    assert first == pytest.approx(1.0)
    later = [c.positions[0] for c in _run(ex, 10 * MS, 200 * MS)]
    assert later[-1] == pytest.approx(0.0) and np.all(np.diff([first, *later]) <= 1e-12)


def test_position_and_velocity_limits_respected() -> None:
    cfg = ExecutorConfig(
        PERIOD,
        crossfade_s=0.0,
        position_min=np.array([-1.0, -0.2]),
        position_max=np.array([1.0, 0.2]),
        max_velocity=np.array([0.5, 10.0]),
    )
    ex = ChunkExecutor(cfg, dim=2)
    ex.seed(np.zeros(2))
    ex.add_chunk(Chunk(0, DT, np.tile([[2.0, 2.0]], (20, 1))), 0)
    cmds = _run(ex, 0, S)
    pos = np.array([c.positions for c in cmds])
    assert np.all(pos[:, 0] <= 1.0) and np.all(pos[:, 1] <= 0.2 + 1e-12)
    assert np.all(np.abs(np.diff(pos[:, 0])) <= 0.5 * PERIOD + 1e-12)
    assert pos[-1, 1] == pytest.approx(0.2) and all(c.limited for c in cmds)
    out, limited = apply_limits(np.array([0.0, 0.0]), np.array([0.0, 0.0]), cfg)
    assert not limited


def test_limit_config_validation() -> None:
    with pytest.raises(ValueError, match="max_velocity must be > 0"):
        ExecutorConfig(PERIOD, max_velocity=np.array([0.0]))
    with pytest.raises(ValueError, match="position_min exceeds"):
        ExecutorConfig(PERIOD, position_min=np.array([1.0]), position_max=np.array([0.0]))
    with pytest.raises(ValueError, match="shape"):
        ChunkExecutor(ExecutorConfig(PERIOD, max_velocity=np.array([1.0])), dim=2)
    with pytest.raises(ValueError, match="NaN"):
        Chunk(0, DT, np.array([[np.nan]]))


def test_logvar_guard_hold() -> None:
    cfg = ExecutorConfig(PERIOD, crossfade_s=0.0, logvar_bound=-2.0, guard_mode=GuardMode.HOLD)
    ex = ChunkExecutor(cfg, dim=2)
    ex.add_chunk(_ramp(0, 0.0, 1.0, logvar=-5.0), 0)
    ex.step(200 * MS)
    held = ex.last_command
    ex.add_chunk(_ramp(200 * MS, 0.2, 1.0, logvar=1.0), 200 * MS)
    cmds = _run(ex, 210 * MS, 600 * MS)
    assert all(c.status is ExecStatus.HOLD_UNCERTAIN for c in cmds)
    np.testing.assert_allclose(cmds[-1].positions, held)


def test_logvar_guard_slow_plays_at_scaled_speed() -> None:
    cfg = ExecutorConfig(
        PERIOD, crossfade_s=0.0, logvar_bound=0.0, guard_mode="slow", guard_speed_scale=0.25
    )
    ex = ChunkExecutor(cfg, dim=1)
    ex.add_chunk(_ramp(0, 0.0, 1.0, dim=1, logvar=2.0), 0)
    cmds = _run(ex, 0, 400 * MS + 1)
    assert cmds[-1].status is ExecStatus.SLOW_UNCERTAIN
    assert cmds[-1].positions[0] == pytest.approx(0.1)  # 400 ms at 1/4 speed -> 100 ms
    assert cmds[-1].index == pytest.approx(1.0)
    # below the bound: full speed
    ex2 = ChunkExecutor(cfg, dim=1)
    ex2.add_chunk(_ramp(0, 0.0, 1.0, dim=1, logvar=-1.0), 0)
    assert _run(ex2, 0, 400 * MS + 1)[-1].positions[0] == pytest.approx(0.4)


def test_angles_take_the_short_way_round() -> None:
    cfg = ExecutorConfig(PERIOD, crossfade_s=0.2, max_velocity=np.array([1.0]), angle_dims=(0,))
    ex = ChunkExecutor(cfg, dim=1)
    ex.seed(np.array([3.1]))
    # yaw crosses +pi -> -pi: +0.083 rad per action, not -6.2
    actions = wrap_angle(3.12 + 0.0833 * np.arange(10))[:, None]
    ex.add_chunk(Chunk(0, DT, actions), 0)
    cmds = _run(ex, 0, S)
    yaw = np.array([c.positions for c in cmds])  # [T, 1]
    assert np.all(np.abs(difference(yaw[1:], yaw[:-1], (0,))) <= 1.0 * PERIOD + 1e-9)
    assert np.all((yaw >= -np.pi) & (yaw < np.pi))
    assert np.all(np.abs(yaw) > 2.3)  # never swings through 0
    np.testing.assert_allclose(difference(yaw[-1], actions[-1], (0,)), [0.0], atol=1e-9)
    np.testing.assert_allclose(sample_chunk(np.array([[3.1], [-3.1]]), 0.5, (0,)), [-np.pi])


def test_reset_allows_time_to_jump_back() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, crossfade_s=0.0), dim=1)
    ex.add_chunk(_ramp(10 * S, 0.0, 1.0, dim=1), 10 * S)
    ex.step(10 * S + 500 * MS)
    assert not ex.add_chunk(_ramp(S, 0.0, 1.0, dim=1), S)  # older than the current chunk
    ex.reset()
    assert ex.step(S).status is ExecStatus.HOLD_NO_CHUNK
    assert ex.add_chunk(_ramp(S, 0.0, 1.0, dim=1), S)
    np.testing.assert_allclose(ex.step(S + 200 * MS).positions, [0.2])
