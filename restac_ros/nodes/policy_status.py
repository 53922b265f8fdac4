"""policy_node's /diagnostics content: counters, rates, staleness, inference time, reasons.

Updated from the executor thread (callbacks, ticks) and the inference worker,
read by the diagnostics timer; all access goes through one lock.
"""

from __future__ import annotations

import collections
import threading

import numpy as np

from restac_ros.core.buffers import FreshnessReport, StreamCounters
from restac_ros.core.input_checks import prompt_summary
from restac_ros.nodes import diagnostics


class PolicyStatus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lifecycle = "unconfigured"
        self.clock = "running"  # core.clock_watch state of the node clock
        self._model = ""
        self._warmup_ms = float("nan")
        self._error = ""
        self._chunks = 0
        self._busy_skips = 0
        self._infer_ms: collections.deque[float] = collections.deque(maxlen=100)
        self._build_ms: collections.deque[float] = collections.deque(maxlen=100)
        self._overhead_ms: collections.deque[float] = collections.deque(maxlen=100)
        self._logvar = float("nan")
        self._gate = float("nan")
        self._last_reason = ""
        self._reasons = diagnostics.ReasonLog()
        self._chunk_rate = diagnostics.RateCounter()
        self._rates: dict[str, diagnostics.RateCounter] = {}
        self._received: collections.Counter[str] = collections.Counter()

    def set_error(self, text: str) -> None:
        with self._lock:
            self._error = text

    def configured(self, model: str, warmup_ms: float) -> None:
        with self._lock:
            self.lifecycle, self._model, self._warmup_ms, self._error = (
                "inactive",
                model,
                warmup_ms,
                "",
            )

    def received(self, stream: str) -> None:
        with self._lock:
            rate = self._rates.setdefault(stream, diagnostics.RateCounter())
            self._received[stream] += 1
        rate.tick()

    def received_count(self, stream: str) -> int:
        """Messages of `stream` taken so far (accepted or refused)."""
        with self._lock:
            return self._received[stream]

    def reject(self, key: str, detail: str) -> None:
        """An observation (or message) refused: counted by key; the text says why."""
        self._reasons.add(key, detail)
        with self._lock:
            self._last_reason = diagnostics.bounded(f"{key}: {detail}")

    def skipped_busy(self) -> None:
        with self._lock:
            self._busy_skips += 1

    def published(
        self, inference_ms: float, build_ms: float, overhead_ms: float, logvar: float, gate: float
    ) -> None:
        """overhead_ms: tick -> outputs published, minus the model's inference time."""
        self._chunk_rate.tick()
        with self._lock:
            self._chunks += 1
            self._infer_ms.append(inference_ms)
            self._build_ms.append(build_ms)
            self._overhead_ms.append(overhead_ms)
            self._logvar, self._gate = logvar, gate
            self._last_reason = ""

    @property
    def chunks(self) -> int:
        with self._lock:
            return self._chunks

    def diagnostics(
        self,
        name: str,
        hardware_id: str,
        freshness: FreshnessReport | None,
        counters: dict[str, StreamCounters] | None,
        topics: dict[str, str],
        prompt: str | None,
        extra: dict[str, object] | None = None,
    ) -> list:
        with self._lock:
            infer = np.array(self._infer_ms) if self._infer_ms else np.array([np.nan])
            build = np.array(self._build_ms) if self._build_ms else np.array([np.nan])
            over = np.array(self._overhead_ms) if self._overhead_ms else np.array([np.nan])
            values: dict[str, object] = {
                "lifecycle": self.lifecycle,
                "model": self._model,
                "warmup_ms": self._warmup_ms,
                "chunks_published": self._chunks,
                "chunk_rate_hz": self._chunk_rate.rate_hz(),
                "inference_ms_last": float(infer[-1]),
                "inference_ms_mean": float(np.mean(infer)),
                "preprocess_ms_mean": float(np.mean(build)),
                "node_overhead_ms_p50": float(np.percentile(over, 50)),
                "node_overhead_ms_p99": float(np.percentile(over, 99)),
                "logvar": self._logvar,
                "gate": self._gate,
                "ticks_skipped_busy": self._busy_skips,
                "prompt": prompt_summary(prompt),
                "clock": self.clock,
                "last_rejection": self._last_reason or "<none>",
            }
            rates = {k: r.rate_hz() for k, r in self._rates.items()}
            error, last_reason, lifecycle = self._error, self._last_reason, self.lifecycle
        for stream, topic in topics.items():
            prefix = f"stream.{stream}"
            values[f"{prefix}.topic"] = topic
            values[f"{prefix}.rate_hz"] = rates.get(stream, 0.0)
            if freshness is not None and stream in counters:
                st = freshness.status(stream)
                values[f"{prefix}.age_s"] = "missing" if st.missing else st.age_s
                values[f"{prefix}.fresh"] = st.fresh
                c = counters[stream]
                values[f"{prefix}.received"] = c.received
                values[f"{prefix}.stamped_on_receipt"] = c.stamped_on_receipt
                for reason, count in c.rejected.items():
                    values[f"{prefix}.rejected.{reason}"] = count
        values.update(extra or {})
        for key, (count, last) in self._reasons.snapshot().items():
            values[f"rejected.{key}"] = f"{count} (last: {last})"
        if error:
            level, message = diagnostics.ERROR, error
        elif lifecycle != "active":
            level, message = diagnostics.WARN, f"lifecycle state {lifecycle}"
        elif self.clock == "stalled":
            level, message = diagnostics.WARN, "no chunk: node clock stalled (no /clock?)"
        elif last_reason:
            level, message = diagnostics.WARN, f"no chunk: {last_reason}"
        else:
            level, message = diagnostics.OK, "publishing chunks"
        return [diagnostics.status(name, level, message, values, hardware_id)]
