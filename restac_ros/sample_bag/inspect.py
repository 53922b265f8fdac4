"""Read the sample bag's custom metadata back (used by evaluation).

Works for any rosbag2 directory written by `restac-make-sample-bag` (sqlite3 or
MCAP), given either the bag directory or its storage file.
"""

from __future__ import annotations

import json
from pathlib import Path

from rosbags.rosbag2 import Reader

KEY_INTERVALS = "restac.contact_intervals"
KEY_SEED = "restac.seed"
KEY_PROMPT = "restac.prompt"
KEY_EVENTS = "restac.events"


def _bag_dir(bag_path: str | Path) -> Path:
    p = Path(bag_path)
    if p.is_file():  # a storage file: its metadata.yaml sits next to it
        p = p.parent
    if not (p / "metadata.yaml").is_file():
        raise FileNotFoundError(f"{bag_path}: not a rosbag2 directory (no metadata.yaml)")
    return p


def read_custom_data(bag_path: str | Path) -> dict[str, str]:
    """The bag's `custom_data` (from metadata.yaml), {} when it has none."""
    with Reader(_bag_dir(bag_path)) as reader:
        return dict(reader.storage.metadata.custom or {})


def read_contact_intervals(bag_path: str | Path) -> list[tuple[int, int]]:
    """Ground-truth contact intervals [(start_ns, end_ns), ...] in bag time.

    Closed: a stamp t is in contact iff start_ns <= t <= end_ns (end_ns is the last
    nanosecond of contact; no stamp in the bag equals it, so `t < end_ns` gives the
    same answer). This is what /contact/ground_truth publishes at 30 Hz. An
    interval still open at the end of the episode ends at the bag's end. Raises
    KeyError if the bag has no `restac.contact_intervals` metadata.
    """
    custom = read_custom_data(bag_path)
    if KEY_INTERVALS not in custom:
        raise KeyError(f"{bag_path}: no {KEY_INTERVALS!r} in the bag's custom metadata")
    return [(int(a), int(b)) for a, b in json.loads(custom[KEY_INTERVALS])]


def read_events(bag_path: str | Path) -> list[tuple[str, int]]:
    """Teacher phase changes [(name, t_ns), ...] (touch-driven ones included)."""
    custom = read_custom_data(bag_path)
    return [(str(n), int(t)) for n, t in json.loads(custom.get(KEY_EVENTS, "[]"))]
