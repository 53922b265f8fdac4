"""sim_node's bookkeeping, ROS-free: what the pipeline nodes have seen, and one episode's log.

`PipelineView` reads the pipeline nodes' /diagnostics: a DiagnosticArray stamped at
sim time S by node N proves N has processed /clock S (policy_node and chunk_executor
read their clock, and run their clock watch, right before they publish). Their
clock-jump counters prove they started a new timeline at an episode reset.

`EpisodeLog` accumulates what the in-process closed loop (restac_ros.sim.closed_loop)
reports for an episode, from the sim's side of the wire: peak force, closest approach,
contact at every policy tick, control ticks without a command, chunk verdicts.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter

import numpy as np

# keys that count a node's clock jumps back (chunk_executor, policy_node's rejection log)
JUMP_KEYS = ("clock_jumps_back", "rejected.clock_jump_back")


def leading_int(text: str) -> int | None:
    digits = ""
    for ch in text.strip():
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


@dataclasses.dataclass
class NodeView:
    stamp_ns: int | None = None  # header stamp of its newest /diagnostics
    jumps: int = 0
    active_in_a_row: int = 0  # consecutive reports in lifecycle state active (or none)


class PipelineView:
    """The newest /diagnostics of each named node (status name 'restac: <node>')."""

    def __init__(self, names) -> None:
        self.names = tuple(names)
        self.nodes = {n: NodeView() for n in self.names}

    def offer(self, stamp_ns: int, status_name: str, values: dict[str, str]) -> None:
        name = status_name.removeprefix("restac: ")
        view = self.nodes.get(name)
        if view is None or status_name == name:
            return
        view.stamp_ns = int(stamp_ns)
        for key in JUMP_KEYS:
            if key in values and (n := leading_int(values[key])) is not None:
                view.jumps = n
        active = values.get("lifecycle", "active") == "active"
        view.active_in_a_row = view.active_in_a_row + 1 if active else 0

    def waiting_for(self, stamp_ns: int, min_jumps: dict[str, int] | None = None) -> str:
        """'' once every node reported at exactly `stamp_ns`, active since its report
        before (so its clock watch existed when it read the clock), with more clock jumps
        than `min_jumps`; else who is missing."""
        for name, view in self.nodes.items():
            if view.stamp_ns != stamp_ns or view.active_in_a_row < 2:
                return f"{name} /diagnostics at /clock {stamp_ns}"
            if min_jumps is not None and view.jumps <= min_jumps.get(name, 0):
                return f"{name} to reset on the clock jump back (clock_jump_tolerance_s < 1 step?)"
        return ""

    def seen_clock(self, name: str, stamp_ns: int) -> bool:
        view = self.nodes.get(name)
        return view is not None and view.stamp_ns is not None and view.stamp_ns >= stamp_ns

    def jumps(self) -> dict[str, int]:
        return {n: v.jumps for n, v in self.nodes.items()}


class EpisodeLog:
    """One episode as the sim saw it; `report()` is the JSON object sim_node publishes."""

    def __init__(self, index: int, task: dict, origin_ns: int) -> None:
        self.index, self.task, self.origin_ns = index, task, origin_ns
        self.state = "starting"
        self.wall_start = time.perf_counter()
        self.peak_force_n = 0.0
        self.closest_m = math.inf
        self.control_ticks = 0
        self.without_command = 0
        self.verdicts: Counter = Counter()
        self.ungated_verdicts = 0
        self.lockstep_timeouts = 0
        self.ticks: list[dict] = []

    def tick(self, t_ns: int, contact) -> None:
        self.ticks.append({"t_s": (t_ns - self.origin_ns) / 1e9,
                           "in_contact": bool(contact.in_contact),
                           "normal_force_n": float(contact.normal_force_n),
                           "slipping": bool(contact.slipping)})

    def control(self, had_command: bool, tcp, obj) -> None:
        self.control_ticks += 1
        self.without_command += not had_command
        self.closest_m = min(self.closest_m, float(np.linalg.norm(tcp - obj)))

    def report(self, env) -> dict:
        success_ns = env.success_ns
        return {
            "episode": self.index, "seed": int(self.task["seed"]), "state": self.state,
            "task": self.task, "success": bool(env.success),
            "time_to_success_s": None if success_ns is None else success_ns / 1e9,
            "duration_s": env.time_ns / 1e9, "peak_force_n": self.peak_force_n,
            "closest_approach_m": self.closest_m if math.isfinite(self.closest_m) else None,
            "control_ticks": self.control_ticks,
            "control_ticks_without_command": self.without_command,
            "chunk_verdicts": dict(self.verdicts), "ungated_verdicts": self.ungated_verdicts,
            "lockstep_timeouts": self.lockstep_timeouts, "diverged": bool(env.diverged),
            "wall_s": time.perf_counter() - self.wall_start,
            "final_joints": [float(x) for x in env.joint_positions()], "ticks": self.ticks,
        }
