"""Small bag reads the evaluation needs besides observations: prompt, joint series, metadata.

Observations themselves always come from `restac_ros.core.bag_dataset` (the
live node's path); this module only reads raw joint series (for norm stats)
and the prompt (for the tokenizer), with the same error types.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader

from restac_ros.core.bag_dataset import (
    JOINT_STATE,
    PROMPT_TOPIC,
    STORAGE_ERRORS,
    STRING,
    BagCorrupt,
    BagError,
    BagTopicMissing,
    BagTypeMismatch,
    stamp_ns,
)


def _open(path: Path) -> AnyReader:
    if not Path(path).exists():
        raise BagError(f"bag not found: {path}")
    reader = AnyReader([Path(path)])
    try:
        reader.open()
    except STORAGE_ERRORS as err:
        raise BagCorrupt(f"{path}: cannot open bag: {err}") from None
    return reader


def custom_metadata(path: Path) -> dict[str, str]:
    reader = _open(path)
    try:
        custom: dict[str, str] = {}
        for sub in getattr(reader, "readers", []):
            for holder in (sub, getattr(sub, "storage", None)):  # rosbags 0.11: on .storage
                meta = getattr(holder, "metadata", None)
                custom.update((getattr(meta, "custom", None) or {}) if meta else {})
        return custom
    finally:
        reader.close()


def contact_intervals(path: Path) -> list[tuple[int, int]]:
    """`restac.contact_intervals` metadata as [(start_ns, end_ns)], [] when absent."""
    raw = custom_metadata(path).get("restac.contact_intervals")
    if raw is None:
        return []
    try:
        return [(int(a), int(b)) for a, b in json.loads(raw)]
    except (ValueError, TypeError) as err:
        raise BagError(f"{path}: bad restac.contact_intervals {raw!r}: {err}") from None


def _messages(reader: AnyReader, path: Path, topic: str, msgtype: str):
    conns = [c for c in reader.connections if c.topic == topic]
    if not conns:
        have = sorted({c.topic for c in reader.connections})
        raise BagTopicMissing(f"{path}: missing topics [{topic!r}]; bag has {have}")
    if conns[0].msgtype != msgtype:
        raise BagTypeMismatch(f"{path}: topic {topic!r} has type {conns[0].msgtype!r}, "
                              f"expected {msgtype!r}")
    try:
        for conn, log_ns, raw in reader.messages(connections=conns):
            try:
                msg = reader.deserialize(raw, conn.msgtype)
            except Exception as err:  # rosbags raises many types on truncated CDR
                raise BagCorrupt(f"{path}: cannot deserialize {conn.msgtype} on {topic}: "
                                 f"{err!r}") from None
            yield log_ns, msg
    except STORAGE_ERRORS as err:
        raise BagCorrupt(f"{path}: error reading messages: {err}") from None


def prompt(path: Path, topic: str = PROMPT_TOPIC) -> str | None:
    """The task prompt: `restac.prompt` metadata, else the last message on `topic`."""
    meta = custom_metadata(path).get("restac.prompt")
    if meta:
        return meta
    reader = _open(path)
    try:
        if topic not in {c.topic for c in reader.connections}:
            return None
        text = None
        for _, msg in _messages(reader, path, topic, STRING):
            text = str(msg.data)
        return text
    finally:
        reader.close()


def joint_series(path: Path, topic: str, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(stamps int64 [N], positions float64 [N, len(names)]) of a JointState topic, by name."""
    reader = _open(path)
    stamps, rows = [], []
    try:
        for log_ns, msg in _messages(reader, path, topic, JOINT_STATE):
            given = {n: i for i, n in enumerate(msg.name)}
            if missing := [n for n in names if n not in given]:
                raise BagError(f"{path}: {topic} lacks joints {missing} (has {list(msg.name)})")
            stamps.append(stamp_ns(msg) or log_ns)
            rows.append([msg.position[given[n]] for n in names])
    finally:
        reader.close()
    if not rows:
        raise BagError(f"{path}: no messages on {topic}")
    return np.asarray(stamps, np.int64), np.asarray(rows, np.float64)
