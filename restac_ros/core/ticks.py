"""When observations are taken and which noise seed each one samples with (ROS-free).

One rule for `restac-eval` (bag time) and `policy_node` (its clock, sim time in replay), so
offline evaluation and live replay through DDS give the same chunks:

Tick grid: tick k is at ``origin_ns + round(k * 1e9 / rate_hz)`` in header-stamp time.
  restac-eval: origin = the bag's first log time (`BagDataset.tick_times`, the same
  formula: `tick_times` here). policy_node: parameter `tick_origin_ns` (0 = the epoch, i.e.
  ticks on whole multiples of the period; set it to the bag start for replay parity; for
  bags starting on a whole multiple of the period, such as the sample bags at 5 Hz or
  15 Hz, 0 and the bag start give the same ticks).

Observation content: the observation of tick T is assembled from exactly the messages
  stamped <= T (freshness judged at T). policy_node with ``tick_on: stamps`` (replay /
  sim time) holds messages back and completes tick T once every required stream has
  delivered a message stamped >= T (streams arrive in stamp order, so nothing stamped
  <= T can still come on them); it then buffers the held-back messages stamped <= T
  and assembles. A message lost in transport changes only that tick's observation.
  restac-eval feeds the buffers the messages logged at or before T; header stamp ==
  log time in bags recorded from stamped sensors replayed by bag_player (and in the
  sample bags), so both see the same messages.

Noise seed: ``tick_seed(base_seed, tick_ns)``, a hash of the configured seed and the
  tick stamp; never a counter of chunks or ticks (skipped or failed ticks shift nothing).
"""

from __future__ import annotations

import hashlib

import numpy as np

NS_PER_S = 1_000_000_000
# due() never returns more ticks than this at once; older due ticks are skipped (counted).
MAX_TICKS_PER_CALL = 64
SEED_BITS = 31  # jax.random.key takes any int; stay positive in int32 for every backend


def period_ns(rate_hz: float) -> float:
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    return NS_PER_S / float(rate_hz)


def tick_at(origin_ns: int, rate_hz: float, k: int) -> int:
    """Stamp of tick k of the grid (k may be negative)."""
    return int(origin_ns) + round(k * period_ns(rate_hz))


def tick_times(origin_ns: int, end_ns: int, rate_hz: float) -> np.ndarray:
    """Ticks origin, origin + 1/rate, ... up to and including end_ns (int64 ns)."""
    period = period_ns(rate_hz)
    count = int((int(end_ns) - int(origin_ns)) // period) + 1
    return int(origin_ns) + np.round(np.arange(max(count, 0)) * period).astype(np.int64)


def first_index_at_or_after(origin_ns: int, rate_hz: float, t_ns: int) -> int:
    """The smallest k with tick_at(origin, rate, k) >= t_ns."""
    period = period_ns(rate_hz)
    k = int(np.floor((int(t_ns) - int(origin_ns)) / period)) - 1
    while tick_at(origin_ns, rate_hz, k) < t_ns:
        k += 1
    return k


def tick_seed(base_seed: int, tick_ns: int) -> int:
    """The flow-matching noise seed of the observation taken at tick_ns."""
    digest = hashlib.blake2b(f"{int(base_seed)}:{int(tick_ns)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << SEED_BITS) - 1)


class StampTicker:
    """Tick bookkeeping of policy_node's ``tick_on: stamps`` mode (see module doc).

    `offer(stream, stamp)` records a delivered message; `due()` returns the ticks now
    complete (every required stream delivered a stamp >= the tick), oldest first, and
    moves past them. The first tick is the first grid point at or after the first stamp.
    A tick is forced once any stream is max_lag_s past it (a required stream that stopped
    or never came: that tick's observation is refused as missing/stale, and the node's
    held-back messages stay bounded). Ticks more than max_lag_s before the newest
    complete one are skipped (counted in `skipped`), and one call returns at most
    MAX_TICKS_PER_CALL ticks: a far-off stamp costs no unbounded run of ticks.
    """

    def __init__(self, origin_ns: int, rate_hz: float, required: tuple[str, ...],
                 max_lag_s: float = 1.0) -> None:
        period_ns(rate_hz)
        if not required:
            raise ValueError("StampTicker needs at least one required stream")
        if not max_lag_s > 0:
            raise ValueError(f"max_lag_s must be > 0, got {max_lag_s}")
        self.max_lag_ns = round(max_lag_s * NS_PER_S)
        self.origin_ns = int(origin_ns)
        self.rate_hz = float(rate_hz)
        self.required = tuple(required)
        self._newest: dict[str, int] = {}
        self._next_k: int | None = None
        self.skipped = 0

    def reset(self) -> None:
        self._newest.clear()
        self._next_k = None

    @property
    def next_tick_ns(self) -> int | None:
        return None if self._next_k is None else tick_at(self.origin_ns, self.rate_hz,
                                                         self._next_k)

    @property
    def complete_through_ns(self) -> int | None:
        """The newest stamp every required stream has reached (None until each has one):
        ticks up to it are complete."""
        if any(s not in self._newest for s in self.required):
            return None
        return min(self._newest[s] for s in self.required)

    def offer(self, stream: str, stamp_ns: int) -> None:
        if self._next_k is None:
            self._next_k = first_index_at_or_after(self.origin_ns, self.rate_hz, stamp_ns)
        if stamp_ns > self._newest.get(stream, -1):
            self._newest[stream] = int(stamp_ns)

    def due(self) -> list[int]:
        if self._next_k is None:
            return []
        forced = max(self._newest.values()) - self.max_lag_ns
        if any(s not in self._newest for s in self.required):
            complete = forced
        else:
            complete = max(min(self._newest[s] for s in self.required), forced)
        keep_from = complete - self.max_lag_ns
        if tick_at(self.origin_ns, self.rate_hz, self._next_k) < keep_from:
            k = first_index_at_or_after(self.origin_ns, self.rate_hz, keep_from)
            self.skipped += k - self._next_k
            self._next_k = k
        last_k = first_index_at_or_after(self.origin_ns, self.rate_hz, complete + 1) - 1
        if last_k - self._next_k + 1 > MAX_TICKS_PER_CALL:
            k = last_k - MAX_TICKS_PER_CALL + 1
            self.skipped += k - self._next_k
            self._next_k = k
        ticks = []
        while (t := tick_at(self.origin_ns, self.rate_hz, self._next_k)) <= complete:
            ticks.append(t)
            self._next_k += 1
        return ticks
