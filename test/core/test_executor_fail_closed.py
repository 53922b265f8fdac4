"""The executor fails closed (issue 13 items 1 and 6): impossible chunk timing is refused
with a reason, an unknown (NaN) logvar holds, a chunk from the future never locks out
real chunks, and a seed outside the position limits is refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from restac_ros.core.executor import (
    MAX_CHUNK_SPAN_S,
    Chunk,
    ChunkExecutor,
    ChunkVerdict,
    ExecStatus,
    ExecutorConfig,
    GuardMode,
)

S = 1_000_000_000
MS = 1_000_000
PERIOD = 0.01


@pytest.mark.parametrize("dt", [math.inf, -math.inf, math.nan, 1e300, 0.0, -0.1, 5e-324])
def test_chunk_dt_outside_a_sane_range_is_a_value_error(dt: float) -> None:
    with pytest.raises(ValueError, match="dt_s"):
        Chunk(0, dt, np.zeros((10, 2)))


def test_chunk_span_is_bounded_so_end_ns_never_overflows() -> None:
    with pytest.raises(ValueError, match="span"):
        Chunk(0, 1.0, np.zeros((int(MAX_CHUNK_SPAN_S) + 10, 1)))
    with pytest.raises(ValueError, match="t0_ns"):
        Chunk(-5, 0.1, np.zeros((3, 1)))
    with pytest.raises(ValueError, match="t0_ns"):
        Chunk(2**63, 0.1, np.zeros((3, 1)))
    assert Chunk(0, 0.1, np.zeros((3, 1))).end_ns == 200 * MS


def test_nan_logvar_holds_in_hold_mode_and_in_slow_mode() -> None:
    for mode in (GuardMode.HOLD, GuardMode.SLOW):
        cfg = ExecutorConfig(PERIOD, crossfade_s=0.0, logvar_bound=5.0, guard_mode=mode)
        ex = ChunkExecutor(cfg, dim=1)
        ex.seed(np.zeros(1))
        assert ex.add_chunk(Chunk(0, 0.1, np.linspace(0, 1, 10)[:, None], logvar=math.nan), 0)
        cmds = [ex.step(t) for t in range(0, S, 10 * MS)]
        assert all(c.status is ExecStatus.HOLD_UNCERTAIN for c in cmds), mode
        assert max(abs(c.positions[0]) for c in cmds) == 0.0, mode


def test_nan_logvar_without_guard_plays() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, crossfade_s=0.0), dim=1)
    assert ex.add_chunk(Chunk(0, 0.1, np.linspace(0, 1, 10)[:, None], logvar=math.nan), 0)
    assert ex.step(500 * MS).status is ExecStatus.TRACKING


def test_chunk_from_the_future_is_refused_and_locks_nothing_out() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, max_chunk_lead_s=0.2), dim=1)
    verdict = ex.add_chunk(Chunk(10 * S + 3600 * S, 0.1, np.ones((10, 1))), 10 * S)
    assert not verdict and verdict.reason == ChunkVerdict.FROM_FUTURE
    assert ex.current_chunk is None
    # a real chunk right after is accepted
    assert ex.add_chunk(Chunk(10 * S - 100 * MS, 0.1, np.ones((10, 1))), 10 * S)
    # slight clock skew (within the tolerance) is fine
    ok = ChunkExecutor(ExecutorConfig(PERIOD, max_chunk_lead_s=0.2), dim=1)
    assert ok.add_chunk(Chunk(10 * S + 150 * MS, 0.1, np.ones((10, 1))), 10 * S)


def test_verdict_reasons() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD), dim=1)
    past = ex.add_chunk(Chunk(0, 0.1, np.ones((10, 1))), 2 * S)
    assert not past and past.reason == ChunkVerdict.ALREADY_PAST
    assert ex.add_chunk(Chunk(2 * S, 0.1, np.ones((10, 1))), 2 * S)
    older = ex.add_chunk(Chunk(S + 500 * MS, 0.1, np.ones((10, 1))), 2 * S)
    assert not older and older.reason == ChunkVerdict.OLDER_THAN_CURRENT
    wrong = ex.add_chunk(Chunk(2 * S, 0.1, np.ones((10, 2))), 2 * S)
    assert not wrong and wrong.reason == ChunkVerdict.WRONG_DIM


def test_seed_outside_the_position_limits_is_refused() -> None:
    cfg = ExecutorConfig(PERIOD, position_min=np.array([-1.0]), position_max=np.array([1.0]))
    ex = ChunkExecutor(cfg, dim=1)
    with pytest.raises(ValueError, match="limits"):
        ex.seed(np.array([10.0]))
    assert ex.step(0).positions is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"position_min": np.array([np.nan])},
        {"max_velocity": np.array([np.inf])},
        {"logvar_bound": math.nan},
        {"max_chunk_lead_s": -1.0},
        {"control_period_s": math.inf},
        {"crossfade_s": math.nan},
    ],
)
def test_config_values_must_be_finite(kwargs) -> None:
    base = {"control_period_s": PERIOD}
    with pytest.raises(ValueError):
        ExecutorConfig(**{**base, **kwargs})
