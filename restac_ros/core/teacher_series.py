"""The teacher's commanded actions of a bag, as BagDataset collects them.

A `TeacherSeries` is filled while the bag replays (the same single pass that
feeds the observation buffers) and stays sorted by stamp. Its arrays are
preallocated from the bag's message count and filled in place: entries not read
yet sit at the end as (INT64_MAX, NaN), so a search for "the last command before
t" is already right for every t the replay has got past.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

UNREAD_STAMP = np.iinfo(np.int64).max


class TeacherSeries:
    """Commands [N, dim] (action order) and their stamps (int64 ns), stamp-sorted."""

    def __init__(self, names: Sequence[str], capacity: int = 0) -> None:
        self.names = tuple(names)
        self.count = 0
        self.complete = False
        self._alloc(max(int(capacity), 0))

    def _alloc(self, capacity: int) -> None:
        stamps = np.full((capacity,), UNREAD_STAMP, np.int64)
        # float64 storage: np.asarray(actions, np.float64) is then this very array.
        actions = np.full((capacity, len(self.names)), np.nan, np.float64)
        if self.count:
            stamps[: self.count] = self.stamps[: self.count]
            actions[: self.count] = self.actions[: self.count]
        self.stamps, self.actions = stamps, actions

    def reset(self) -> None:
        self.count = 0
        self.complete = False
        self.stamps[:] = UNREAD_STAMP
        self.actions[:] = np.nan

    def add(self, stamp: int, row: np.ndarray) -> None:
        """Insert keeping stamp order (stable: equal stamps stay in arrival order)."""
        if self.count == len(self.stamps):
            self._alloc(max(16, 2 * self.count))
        n = self.count
        i = int(np.searchsorted(self.stamps[:n], stamp, side="right"))
        if i < n:  # rare: a command logged after a later-stamped one
            self.stamps[i + 1 : n + 1] = self.stamps[i:n].copy()
            self.actions[i + 1 : n + 1] = self.actions[i:n].copy()
        self.stamps[i] = stamp
        self.actions[i] = row
        self.count = n + 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the commands read so far: (stamps int64 [N], actions float32 [N, dim])."""
        return self.stamps[: self.count].copy(), self.actions[: self.count].astype(np.float32)

    def targets(self, t0_ns: int, horizon: int, dt_ns: float, slack_ns: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """Commands due at t0 + k*dt, k < horizon: (float32 [H, dim], bool [H]).

        Target k is the first command stamped in [due - slack, due + dt - slack).
        """
        targets = np.zeros((horizon, len(self.names)), dtype=np.float32)
        mask = np.zeros((horizon,), dtype=bool)
        stamps = self.stamps[: self.count]
        for k in range(horizon):
            lo = t0_ns + round(k * dt_ns) - slack_ns
            i = int(np.searchsorted(stamps, lo, side="left"))
            if i < len(stamps) and stamps[i] < lo + dt_ns:
                targets[k] = self.actions[i]
                mask[k] = True
        return targets, mask
