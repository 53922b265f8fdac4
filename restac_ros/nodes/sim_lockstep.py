"""sim_node's lockstep gate, ROS-free: what the next base step still waits for.

sim_node's module doc gives the protocol. `LockstepGate` holds one episode's state
(the newest command, chunk_executor's verdicts, the policy ticks already waited for)
and answers each wait as a reason text ('' = go on). `LockstepWait` bounds a wait by
wall time, so a lost message costs reproducibility (counted), never the run.
"""

from __future__ import annotations

import numpy as np

from restac_ros.core import ticks
from restac_ros.nodes.sim_sync import PipelineView
from restac_ros.sim.env import BASE_RATE_HZ, JOINT_RATE_HZ

NS = 1_000_000_000


class LockstepGate:
    """One episode on the sim's step grid from `origin_ns` (stamps in ns)."""

    def __init__(self, origin_ns: int, command_period_s: float, policy_rate_hz: float,
                 first_gated_tick: int, settle_s: float, executor_node: str) -> None:
        period_steps = command_period_s * BASE_RATE_HZ
        if not (command_period_s > 0 and abs(period_steps - round(period_steps)) < 1e-9):
            raise ValueError("command_period_s must be a positive multiple of 1/300 s")
        if policy_rate_hz < 0 or first_gated_tick < 0:
            raise ValueError("policy_rate_hz and first_gated_tick must be >= 0")
        self.origin_ns = origin_ns
        self.period_ns = round(command_period_s * NS)
        self.policy_rate_hz = policy_rate_hz
        self.first_gated_tick = first_gated_tick
        self.settle_ns = round(settle_s * NS)
        self.executor_node = executor_node  # '' = no executor to wait for
        self.new_episode()

    def new_episode(self) -> None:
        self.received: tuple[int, np.ndarray] | None = None  # newest command (stamp, q)
        self.accepted = False  # a chunk accepted this episode: commands are due
        self.verdict_ns = -1  # newest verdict stamp this episode
        self.answered_ns = -1  # newest policy tick the sim has waited for

    def tick_ns(self, k: int) -> int:
        return ticks.tick_at(self.origin_ns, self.policy_rate_hz, k)  # policy_node's grid

    def is_control_tick(self, now: int) -> bool:
        return (now - self.origin_ns) % self.period_ns == 0

    def command_at(self, now: int) -> np.ndarray | None:
        """The command stamped `now`, if it came."""
        if self.received is not None and self.received[0] == now:
            return self.received[1]
        return None

    def take_verdict(self, stamp_ns: int, accepted: bool) -> bool:
        """chunk_executor's verdict on the chunk stamped `stamp_ns`. False if that chunk's
        tick precedes the first gated one: the sim did not wait for it (timing decided)."""
        gated = not (self.policy_rate_hz > 0 and stamp_ns < self.tick_ns(self.first_gated_tick))
        self.verdict_ns = max(self.verdict_ns, stamp_ns)
        self.accepted = self.accepted or accepted
        return gated

    def pending_tick_ns(self, now: int) -> int | None:
        """The newest gated policy tick whose inputs are all published by `now` (cameras
        and tactile stamped at the tick, the joint state at the next 100 Hz stamp) and
        that the sim has not waited for yet; None if none."""
        if self.policy_rate_hz <= 0:
            return None
        joint_ns = NS // JOINT_RATE_HZ
        k = int((now - self.origin_ns) * self.policy_rate_hz // NS) + 1  # float floor: +1
        while k >= self.first_gated_tick:
            tick = self.tick_ns(k)
            if -(-(tick - self.origin_ns) // joint_ns) * joint_ns + self.origin_ns <= now:
                return tick if tick > self.answered_ns else None
            k -= 1
        return None

    def sync_reason(self, now: int, pipeline: PipelineView) -> str:
        """'' once chunk_executor has run its control tick at `now` (if one is due) and seen
        /clock `now` (if a policy tick completes here)."""
        got = self.command_at(now) is not None
        if self.is_control_tick(now) and not got and self.accepted:
            return f"command for {now}"
        executor = self.executor_node
        if executor and self.pending_tick_ns(now) is not None and not got \
                and not pipeline.seen_clock(executor, now):
            return f"{executor} to see /clock {now}"
        return ""

    def verdict_reason(self, now: int) -> str:
        """'' once chunk_executor judged the chunk of the tick completed at `now`; without
        ticks, once a chunk was accepted (after settle_s)."""
        tick = self.pending_tick_ns(now)
        if tick is not None and self.verdict_ns < tick:
            return f"chunk verdict for policy tick {tick}"
        if self.policy_rate_hz <= 0 and not self.accepted \
                and now - self.origin_ns >= self.settle_ns:
            return "first chunk"
        return ""

    def mark_answered(self, now: int) -> None:
        """The verdict wait at `now` is over: its tick is not waited for again."""
        self.answered_ns = max(self.answered_ns, self.pending_tick_ns(now) or -1)


class LockstepWait:
    """What the sim waits for and since when (wall seconds); gives up after `timeout_s`."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.reason = ""  # '' = not waiting
        self.timeouts = 0
        self._since: float | None = None

    def waiting(self, reason: str, now_s: float) -> bool:
        """True: keep waiting for `reason`; False: waited too long (counted), move on."""
        if self._since is None or self.reason != reason:
            self._since, self.reason = now_s, reason
        if now_s - self._since < self.timeout_s:
            return True
        self.timeouts += 1
        self.done()
        return False

    def done(self) -> None:
        self.reason, self._since = "", None
