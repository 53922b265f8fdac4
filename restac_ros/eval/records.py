"""What one evaluation step produced: the policy's chunk next to what the teacher commanded.

The runner appends one `StepRecord` per policy call; metrics, plots, the CSV
and the prediction bag all read the stacked form (`StepArrays`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

NS_PER_S = 1_000_000_000


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """One policy call at bag time `stamp_ns`.

    actions:      float [H, D] predicted chunk, robot units (row k applies at stamp + k*dt)
    target:       float [H, D] teacher command at stamp + k*dt (NaN where the bag has none)
    hold:         float [D] last teacher command at or before stamp (hold baseline), NaN if none
    codes:        int [n_q] VQ code per stage (-1 / empty in placeholder mode)
    """

    stamp_ns: int
    actions: np.ndarray
    target: np.ndarray
    hold: np.ndarray
    inference_ms: float
    logvar: float
    gate: float
    codes: np.ndarray
    q_event: np.ndarray
    tactile_valid: bool
    in_contact: bool | None = None


@dataclasses.dataclass(frozen=True)
class StepArrays:
    """StepRecords stacked along a leading step axis N."""

    stamp_ns: np.ndarray  # int64 [N]
    actions: np.ndarray  # [N, H, D]
    target: np.ndarray  # [N, H, D]
    hold: np.ndarray  # [N, D]
    inference_ms: np.ndarray  # [N]
    logvar: np.ndarray  # [N]
    gate: np.ndarray  # [N]
    codes: np.ndarray  # int [N, n_q]
    q_event: np.ndarray  # [N, E]
    tactile_valid: np.ndarray  # bool [N]

    @property
    def n(self) -> int:
        return int(self.stamp_ns.shape[0])

    @property
    def time_s(self) -> np.ndarray:
        """Seconds since the first step."""
        if self.n == 0:
            return np.zeros(0)
        return (self.stamp_ns - self.stamp_ns[0]) / NS_PER_S


def stack(records: list[StepRecord]) -> StepArrays:
    if not records:
        raise ValueError("no evaluation steps to stack")
    n_q = max(int(np.asarray(r.codes).size) for r in records)
    codes = np.full((len(records), n_q), -1, dtype=np.int64)
    for i, r in enumerate(records):
        c = np.asarray(r.codes, dtype=np.int64).ravel()
        codes[i, : c.size] = c
    return StepArrays(
        stamp_ns=np.array([r.stamp_ns for r in records], dtype=np.int64),
        actions=np.stack([np.asarray(r.actions, dtype=np.float64) for r in records]),
        target=np.stack([np.asarray(r.target, dtype=np.float64) for r in records]),
        hold=np.stack([np.asarray(r.hold, dtype=np.float64) for r in records]),
        inference_ms=np.array([r.inference_ms for r in records], dtype=np.float64),
        logvar=np.array([r.logvar for r in records], dtype=np.float64),
        gate=np.array([r.gate for r in records], dtype=np.float64),
        codes=codes,
        q_event=np.stack([np.asarray(r.q_event, dtype=np.float64).ravel() for r in records]),
        tactile_valid=np.array([bool(r.tactile_valid) for r in records]),
    )
