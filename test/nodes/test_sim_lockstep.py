"""sim_node's lockstep gate without ROS: what each base step waits for, and the wall bound."""

from __future__ import annotations

import numpy as np
import pytest

from restac_ros.nodes.sim_lockstep import LockstepGate, LockstepWait
from restac_ros.nodes.sim_sync import PipelineView

ORIGIN = 1_000 * 10**9
TICK_2 = ORIGIN + 133_333_333  # 15 Hz tick 2: round(2e9 / 15)
TICK_2_INPUTS = ORIGIN + 140_000_000  # its joint state: the next 100 Hz stamp (base step 42)


def step_ns(j: int) -> int:
    return ORIGIN + round(j * 1e9 / 300)


def gate(**kw) -> LockstepGate:
    args = dict(command_period_s=0.01, policy_rate_hz=15.0, first_gated_tick=2, settle_s=0.5,
                executor_node="chunk_executor")
    return LockstepGate(ORIGIN, **{**args, **kw})


def test_parameters_off_the_step_grid_are_refused() -> None:
    with pytest.raises(ValueError, match="command_period_s"):
        gate(command_period_s=0.004)
    with pytest.raises(ValueError, match="policy_rate_hz"):
        gate(policy_rate_hz=-1.0)
    with pytest.raises(ValueError, match="first_gated_tick"):
        gate(first_gated_tick=-1)


def test_a_tick_is_pending_once_all_its_inputs_are_out_until_answered() -> None:
    g = gate()
    assert step_ns(42) == TICK_2_INPUTS
    assert g.pending_tick_ns(step_ns(41)) is None  # tick 1 is not gated, tick 2 lacks joints
    assert g.pending_tick_ns(step_ns(42)) == TICK_2
    assert g.verdict_reason(step_ns(42)) == f"chunk verdict for policy tick {TICK_2}"
    assert g.take_verdict(TICK_2, accepted=True)
    assert g.verdict_reason(step_ns(42)) == ""
    g.mark_answered(step_ns(42))
    assert g.pending_tick_ns(step_ns(43)) is None
    assert not g.take_verdict(ORIGIN + 66_666_667, accepted=False)  # tick 1: not waited for


def test_sync_waits_for_the_executor_clock_then_for_its_command() -> None:
    g, pipeline = gate(), PipelineView(["chunk_executor"])
    now = step_ns(42)  # a control tick (10 ms grid) where tick 2 completes
    assert g.is_control_tick(now) and not g.is_control_tick(step_ns(43))
    assert g.sync_reason(now, pipeline) == f"chunk_executor to see /clock {now}"
    pipeline.offer(now, "restac: chunk_executor", {})
    assert g.sync_reason(now, pipeline) == ""
    g.take_verdict(TICK_2, accepted=True)  # from now on commands are due
    assert g.sync_reason(now, pipeline) == f"command for {now}"
    q = np.arange(8.0)
    g.received = (now - 10_000_000, q)  # the previous tick's command does not count
    assert g.command_at(now) is None and g.sync_reason(now, pipeline) != ""
    g.received = (now, q)
    assert g.command_at(now) is q and g.sync_reason(now, pipeline) == ""
    g.new_episode()
    assert g.received is None and not g.accepted and g.pending_tick_ns(now) == TICK_2


def test_without_ticks_the_sim_settles_then_waits_for_the_first_chunk() -> None:
    g = gate(policy_rate_hz=0.0)
    assert g.pending_tick_ns(step_ns(300)) is None
    assert g.verdict_reason(step_ns(149)) == ""
    assert g.verdict_reason(step_ns(150)) == "first chunk"
    assert g.take_verdict(step_ns(150), accepted=False)  # refused: still waiting
    assert g.verdict_reason(step_ns(150)) == "first chunk"
    g.take_verdict(step_ns(150), accepted=True)
    assert g.verdict_reason(step_ns(150)) == ""


def test_a_wait_gives_up_after_its_timeout_and_restarts_for_a_new_reason() -> None:
    w = LockstepWait(timeout_s=1.0)
    assert w.waiting("a", 10.0) and w.waiting("a", 10.75) and w.reason == "a"
    assert not w.waiting("a", 11.0)
    assert (w.reason, w.timeouts) == ("", 1)
    assert w.waiting("b", 20.0) and w.waiting("c", 20.5)  # "c" waits from 20.5 on
    assert w.waiting("c", 21.25) and not w.waiting("c", 21.5)
    w.waiting("d", 30.0)
    w.done()
    assert w.reason == "" and w.waiting("d", 40.0) and w.timeouts == 2
