"""Bag-level errors and metadata of a replayed bag (re-exported by bag_dataset)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from rosbags.highlevel import AnyReader

from restac_ros.core.buffers import NS_PER_S


class BagError(Exception):
    """A bag that cannot be replayed; the message names the bag and the problem."""


class BagTopicMissing(BagError):
    pass


class BagTypeMismatch(BagError):
    pass


class BagCorrupt(BagError):
    pass


@dataclasses.dataclass(frozen=True)
class BagInfo:
    path: Path
    start_ns: int
    end_ns: int  # log time of the last message
    topics: dict[str, str]  # topic -> msgtype
    custom: dict[str, str]

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S

    def contact_intervals(self) -> list[tuple[int, int]]:
        """`restac.contact_intervals` custom metadata: [(start_ns, end_ns), ...] ([] if absent)."""
        raw = self.custom.get("restac.contact_intervals")
        if raw is None:
            return []
        try:
            return [(int(a), int(b)) for a, b in json.loads(raw)]
        except (ValueError, TypeError) as err:
            raise BagError(f"{self.path}: bad restac.contact_intervals {raw!r}: {err}") from None


def _custom_data(reader: AnyReader) -> dict[str, str]:
    """rosbag2 metadata.yaml `custom_data` (rosbags keeps it on the directory reader)."""
    custom: dict[str, str] = dict(getattr(reader, "custom", None) or {})  # SalvagedMcap
    for sub in reader.readers:
        for holder in (sub, getattr(sub, "storage", None)):
            meta = getattr(holder, "metadata", None)
            custom.update(getattr(meta, "custom", None) or {})
    return custom
