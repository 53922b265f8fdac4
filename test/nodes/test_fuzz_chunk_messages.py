"""Fuzzing ActionChunk messages (hypothesis, derandomized) through the node's conversion
and the core executor, as chunk_executor does: random fields never raise anything but
the ValueError that is reported as invalid_chunk, and no command is non-finite or
outside the limits (issue 13)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from restac_ros.msg import ActionChunk

from restac_ros.core.executor import ChunkExecutor, ExecutorConfig, GuardMode
from restac_ros.nodes import conversions

FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=200,
                suppress_health_check=[HealthCheck.too_slow])
WILD = st.floats(allow_nan=True, allow_infinity=True)
PMIN, PMAX, VMAX, PERIOD = np.array([-1.0, 0.0]), np.array([1.0, 1.0]), np.array([1.0, 0.5]), 0.01


WILD32 = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def chunk_messages(draw):
    """Half consistent (sizes agree, so values and timing are what is fuzzed), half not."""
    msg = ActionChunk()
    msg.header.stamp.sec = draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 20))
    msg.header.stamp.nanosec = draw(st.integers(0, 2**32 - 1))
    msg.chunk_id = draw(st.integers(-(2**31), 2**31 - 1))
    if draw(st.booleans()):
        h, d = draw(st.integers(1, 12)), 2
        msg.names, msg.horizon, msg.action_dim = ["a", "b"], h, d
        n = h * d
    else:
        msg.names = draw(st.lists(st.sampled_from(["a", "b", "c"]), max_size=4))
        msg.horizon = draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 12))
        msg.action_dim = draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 3))
        n = draw(st.integers(0, 40))
    msg.actions = draw(st.lists(st.floats(-3, 3, width=32) | WILD32, min_size=n, max_size=n))
    msg.dt = draw(WILD | st.floats(0.001, 2.0))
    msg.logvar = draw(WILD32 | st.floats(-10, 10, width=32))
    return msg


@FUZZ
@given(msgs=st.lists(chunk_messages(), max_size=8),
       offsets=st.lists(st.integers(-10**9, 3 * 10**9) | st.integers(-(2**62), 2**62),
                        min_size=1, max_size=8))
def test_random_chunk_messages(msgs, offsets):
    config = ExecutorConfig(PERIOD, position_min=PMIN, position_max=PMAX, max_velocity=VMAX,
                            logvar_bound=0.0, guard_mode=GuardMode.HOLD)
    ex = ChunkExecutor(config, 2)
    previous = None
    for i, msg in enumerate(msgs):
        try:
            chunk = conversions.chunk_from_msg(msg)
        except ValueError:
            continue
        now = max(0, chunk.t0_ns + offsets[i % len(offsets)])  # the node clock
        event(f"add_chunk: {ex.add_chunk(chunk, now).reason.value}")
        for k in range(5):
            cmd = ex.step(now + k * 10_000_000)
            if cmd.positions is None:
                continue
            p = cmd.positions
            assert np.all(np.isfinite(p)) and np.all((p >= PMIN) & (p <= PMAX))
            if previous is not None:
                assert np.all(np.abs(p - previous) <= VMAX * PERIOD + 1e-9)
            previous = p
