"""A listener for the running pipeline (demo, benchmarks): chunks, commands, tactile
diagnostics, /clock and /diagnostics, with wall-clock receipt times, and a summary."""

from __future__ import annotations

import bisect
import collections
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState

from restac_ros.msg import ActionChunk, TactileDiagnostics
from restac_ros.nodes import conversions, qos


class PipelineMonitor(Node):
    def __init__(self, command_topic: str = "/restac/command", **kwargs) -> None:
        super().__init__("restac_pipeline_monitor", **kwargs)
        self.chunks: list[tuple[float, ActionChunk]] = []
        self.tactile: list[TactileDiagnostics] = []
        self.commands = 0
        self.first_command_wall: float | None = None
        self.last_command_wall: float | None = None
        self._clock_ns: list[int] = []
        self._clock_wall: list[float] = []
        self.statuses: dict[str, tuple[str, dict[str, str]]] = {}
        sub = self.create_subscription
        sub(ActionChunk, "/restac/action_chunk", self._on_chunk, qos.OUTPUT)
        sub(TactileDiagnostics, "/restac/tactile/diagnostics", self.tactile.append, qos.OUTPUT)
        sub(JointState, command_topic, self._on_command, qos.COMMAND)
        sub(Clock, "/clock", self._on_clock, qos.CLOCK)
        sub(DiagnosticArray, "/diagnostics", self._on_diagnostics, qos.DIAGNOSTICS)

    def _on_chunk(self, msg: ActionChunk) -> None:
        self.chunks.append((time.monotonic(), msg))

    def _on_command(self, msg: JointState) -> None:
        now = time.monotonic()
        self.commands += 1
        self.first_command_wall = self.first_command_wall or now
        self.last_command_wall = now

    def _on_clock(self, msg: Clock) -> None:
        ns = conversions.stamp_to_ns(msg.clock)
        if not self._clock_ns or ns > self._clock_ns[-1]:
            self._clock_ns.append(ns)
            self._clock_wall.append(time.monotonic())

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            self.statuses[s.name] = (s.message, {kv.key: kv.value for kv in s.values})

    def value(self, status: str, key: str) -> str | None:
        return self.statuses.get(status, ("", {}))[1].get(key)

    def wall_of_clock(self, stamp_ns: int) -> float | None:
        """Wall time at which /clock first reached stamp_ns (sim-time replays)."""
        i = bisect.bisect_left(self._clock_ns, stamp_ns)
        return self._clock_wall[i] if i < len(self._clock_wall) else None

    def latencies_ms(self) -> np.ndarray:
        """Observation time (reached on /clock) -> chunk received, per chunk."""
        out = []
        for wall, chunk in self.chunks:
            seen = self.wall_of_clock(conversions.stamp_to_ns(chunk.header.stamp))
            if seen is not None:
                out.append((wall - seen) * 1e3)
        return np.asarray(out)

    def summary_rows(self) -> list[tuple[str, str]]:
        def pct(values: np.ndarray, unit: str) -> str:
            if values.size == 0:
                return "n/a"
            p50, p90, p99 = np.percentile(values, [50, 90, 99])
            return f"p50 {p50:.1f} / p90 {p90:.1f} / p99 {p99:.1f} / max {values.max():.1f} {unit}"

        chunks = [c for _, c in self.chunks]
        ids = [c.chunk_id for c in chunks]
        logvars = np.array([c.logvar for c in chunks])
        gates = np.array([c.gate for c in chunks])
        infer = np.array([c.inference_ms for c in chunks])
        codes = collections.Counter(int(c) for d in self.tactile for c in d.vq_codes)
        modes = sorted({d.mode for d in self.tactile})
        if codes:
            top = ", ".join(f"{code}:{n}" for code, n in codes.most_common(8))
            histogram = f"{len(codes)} distinct; top {top}"
        else:
            histogram = f"no codes ({'/'.join(modes) or 'no'} tactile mode)"
        span = (self.last_command_wall or 0) - (self.first_command_wall or 0)
        rows = [
            ("chunks published", f"{len(chunks)} (ids {ids[0]}..{ids[-1]})" if ids else "0"),
            ("end-to-end latency (obs -> chunk)", pct(self.latencies_ms(), "ms")),
            ("inference time", pct(infer, "ms")),
            ("logvar range", f"{logvars.min():.3f} .. {logvars.max():.3f}" if chunks else "n/a"),
            ("gate range", f"{gates.min():.3f} .. {gates.max():.3f}" if chunks else "n/a"),
            ("VQ code histogram", histogram),
            (
                "commands sent",
                f"{self.commands}" + (f" ({self.commands / span:.0f}/s wall)" if span > 0 else ""),
            ),
        ]
        return rows


def format_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    line = "+" + "-" * (width + 2) + "+" + "-" * 62 + "+"
    out = [line]
    out += [f"| {k.ljust(width)} | {v[:60].ljust(60)} |" for k, v in rows]
    out.append(line)
    return "\n".join(out)
