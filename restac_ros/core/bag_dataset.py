"""Replay a rosbag2 (sqlite3 or MCAP) through the live observation path, in bag time.

Messages are pushed into the same `StreamBuffers` the policy node uses (header
stamp as stamp, bag log time as receipt time); at each tick of the configured
rate the same `ObservationBuilder` assembles the observation. Each step also
carries the teacher's commanded actions over the horizon, for evaluation and
training. Bag topics are the ObservationSpec's stream names unless
`stream_topics` maps them.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError

from restac_ros.core.buffers import NS_PER_S, StreamBuffers, StreamCounters, UnstampedPolicy
from restac_ros.core.messages import (
    IMAGE_TYPES,
    JOINT_STATE,
    STRING,
    stamp_ns,
    to_image_input,
    to_joint_sample,
)
from restac_ros.core.observation import InvalidObservation, ObservationBuilder, RawSample
from restac_ros.model.observation import Observation

TEACHER_TOPIC = "/teacher/joint_command"
PROMPT_TOPIC = "/restac/prompt"
TARGET_SLACK_NS = 1_000_000  # 1 ms: stamps on the same 15 Hz grid differ by ns roundings


class BagError(Exception):
    """A bag that cannot be replayed; the message names the bag and the problem."""


class BagTopicMissing(BagError):
    pass


class BagTypeMismatch(BagError):
    pass


class BagCorrupt(BagError):
    pass


# Errors rosbags and sqlite raise on unreadable / truncated storage.
_STORAGE_ERRORS = (AnyReaderError, ReaderError, sqlite3.DatabaseError, EOFError, OSError)


@dataclasses.dataclass(frozen=True)
class BagStep:
    """One tick. Exactly one of observation / invalid is set.

    targets: float32 [H, robot_dim], the teacher command due at stamp + k*dt
    (first command at or after it, within one dt; see teacher_targets); target_mask False where
    none was recorded (targets there are zeros).
    """

    index: int
    stamp_ns: int
    sample: RawSample | None
    observation: Observation | None
    invalid: InvalidObservation | None
    targets: np.ndarray
    target_mask: np.ndarray


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
    custom: dict[str, str] = {}
    for sub in reader.readers:
        for holder in (sub, getattr(sub, "storage", None)):
            meta = getattr(holder, "metadata", None)
            custom.update(getattr(meta, "custom", None) or {})
    return custom


class _Pending:
    """A buffered message still in CDR form; deserialised once, only if a tick uses it."""

    __slots__ = ("conn", "raw", "value")

    def __init__(self, raw: bytes, conn: Any) -> None:
        self.raw = raw
        self.conn = conn
        self.value: Any = None


class BagDataset:
    """Iterate a bag as BagSteps at `rate_hz` in bag time (see module doc)."""

    def __init__(
        self,
        path: str | Path,
        builder: ObservationBuilder,
        rate_hz: float,
        teacher_topic: str | None = TEACHER_TOPIC,
        prompt_topic: str | None = PROMPT_TOPIC,
        unstamped_policy: UnstampedPolicy | str = UnstampedPolicy.STAMP_ON_RECEIPT,
        stream_topics: Mapping[str, str] | None = None,
    ) -> None:
        """stream_topics: {stream name: bag topic} where they differ (default: same)."""
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        streams = [s.name for s in builder.spec.stream_specs()]
        if unknown := set(stream_topics or {}) - set(streams):
            raise ValueError(f"stream_topics names unknown streams {sorted(unknown)}: {streams}")
        self._topic = {s: (stream_topics or {}).get(s, s) for s in streams}
        self._stream = {t: s for s, t in self._topic.items()}
        if len(self._stream) != len(self._topic):
            raise ValueError(f"two streams map to one topic: {self._topic}")
        self.path = Path(path)
        self.builder = builder
        self.rate_hz = float(rate_hz)
        self.teacher_topic = teacher_topic
        self.prompt_topic = prompt_topic
        self.unstamped_policy = UnstampedPolicy(unstamped_policy)
        # Opening parses metadata and every message definition (~0.1 s): the
        # reader stays open for the replay; close() or `with` releases it.
        self._reader: AnyReader | None = None
        self._replay_buffers: StreamBuffers | None = None
        reader = self._get_reader()
        try:
            self.info = self._read_info(reader)
            self._check_topics()
            self._teacher_stamps, self._teacher_actions = self._load_teacher(reader)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> BagDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_reader(self) -> AnyReader:
        if self._reader is None:
            self._reader = self._open()
        return self._reader

    # -- opening and checking ----------------------------------------------
    def _open(self) -> AnyReader:
        if not self.path.exists():
            raise BagError(f"bag not found: {self.path}")
        reader = AnyReader([self.path])
        try:
            reader.open()
        except _STORAGE_ERRORS as err:
            raise BagCorrupt(f"{self.path}: cannot open bag: {err}") from None
        return reader

    def _read_info(self, reader: AnyReader) -> BagInfo:
        topics = {c.topic: c.msgtype for c in reader.connections}
        if reader.message_count == 0:
            raise BagError(f"{self.path}: bag has no messages")
        return BagInfo(
            self.path, reader.start_time, reader.end_time - 1, topics, _custom_data(reader)
        )

    def _expected_types(self) -> dict[str, tuple[str, ...]]:
        spec = self.builder.spec
        expected = {self._topic[s]: IMAGE_TYPES for s in spec.camera_streams.values()}
        expected[self._topic[spec.joint_stream]] = (JOINT_STATE,)
        if spec.tactile_stream is not None:
            expected[self._topic[spec.tactile_stream]] = IMAGE_TYPES
        if self.teacher_topic is not None:
            expected[self.teacher_topic] = (JOINT_STATE,)
        if self.prompt_topic is not None:
            expected[self.prompt_topic] = (STRING,)
        return expected

    def _check_topics(self) -> None:
        spec = self.builder.spec
        required = [self._topic[s] for s in (*spec.camera_streams.values(), spec.joint_stream)]
        if spec.tactile_required:
            required.append(self._topic[spec.tactile_stream])
        if self.teacher_topic is not None:
            required.append(self.teacher_topic)
        if missing := [t for t in required if t not in self.info.topics]:
            raise BagTopicMissing(
                f"{self.path}: missing topics {missing}; bag has {sorted(self.info.topics)}"
            )
        for topic, allowed in self._expected_types().items():
            found = self.info.topics.get(topic)
            if found is not None and found not in allowed:
                raise BagTypeMismatch(
                    f"{self.path}: topic {topic!r} has type {found!r}, expected one of {allowed}"
                )

    def _deserialize(self, reader: AnyReader, raw: bytes, conn: Any) -> Any:
        try:
            return reader.deserialize(raw, conn.msgtype)
        except Exception as err:  # rosbags raises many types on truncated CDR
            raise BagCorrupt(
                f"{self.path}: cannot deserialize a {conn.msgtype} on {conn.topic}: {err!r}"
            ) from None

    def _messages(self, reader: AnyReader, topics: set[str]) -> Iterator[tuple[Any, int, bytes]]:
        """(connection, log time ns, CDR bytes) in log-time order."""
        conns = [c for c in reader.connections if c.topic in topics]
        try:
            yield from reader.messages(connections=conns)
        except _STORAGE_ERRORS as err:
            raise BagCorrupt(f"{self.path}: error reading messages: {err}") from None

    def _header_stamp(self, raw: bytes, conn: Any) -> int:
        """Header stamp read straight from the CDR bytes (messages starting with a Header).

        Saves deserialising the many messages no tick uses (joints at 500 Hz).
        Bytes 0-1: encapsulation (0x0001 little endian); then sec int32, nanosec uint32.
        """
        if len(raw) < 12 or raw[0] != 0 or raw[1] not in (0, 1):
            raise BagCorrupt(f"{self.path}: {conn.topic}: not a CDR message with a header")
        sec, nanosec = struct.unpack_from("<iI" if raw[1] == 1 else ">iI", raw, 4)
        return sec * NS_PER_S + nanosec

    def _resolve(self, reader: AnyReader, pending: _Pending) -> Any:
        if pending.value is None:
            msg = self._deserialize(reader, pending.raw, pending.conn)
            msgtype = pending.conn.msgtype
            pending.value = (
                to_joint_sample(msg) if msgtype == JOINT_STATE else to_image_input(msg, msgtype)
            )
            pending.raw = b""
        return pending.value

    def _resolve_sample(self, reader: AnyReader, sample: RawSample) -> RawSample:
        """Deserialise the buffered messages this tick actually uses."""
        return dataclasses.replace(
            sample,
            images={k: self._resolve(reader, v) for k, v in sample.images.items()},
            joints=self._resolve(reader, sample.joints),
            prev_joints=None
            if sample.prev_joints is None
            else self._resolve(reader, sample.prev_joints),
            tactile=None if sample.tactile is None else self._resolve(reader, sample.tactile),
        )

    def _load_teacher(self, reader: AnyReader) -> tuple[np.ndarray, np.ndarray]:
        """All teacher commands (a 15 Hz topic: small), sorted by stamp, in action order."""
        space = self.builder.spec.action_space
        if self.teacher_topic is None:
            return np.zeros((0,), np.int64), np.zeros((0, space.dim), np.float32)
        stamps, rows = [], []
        for conn, log_ns, raw in self._messages(reader, {self.teacher_topic}):
            msg = self._deserialize(reader, raw, conn)
            given = {n: i for i, n in enumerate(msg.name)}
            if missing := [n for n in space.names if n not in given]:
                raise BagError(
                    f"{self.path}: {self.teacher_topic} lacks action names {missing} "
                    f"(has {list(msg.name)})"
                )
            if len(msg.position) != len(msg.name):
                raise BagCorrupt(f"{self.path}: {self.teacher_topic}: names/positions differ")
            stamps.append(stamp_ns(msg) or log_ns)
            rows.append([msg.position[given[n]] for n in space.names])
        order = np.argsort(np.asarray(stamps, dtype=np.int64), kind="stable")
        return (
            np.asarray(stamps, dtype=np.int64)[order],
            np.asarray(rows, dtype=np.float32).reshape(-1, space.dim)[order],
        )

    # -- replay -------------------------------------------------------------
    def teacher_targets(self, t0_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Teacher commands due at t0 + k*dt, k < horizon: (float32 [H, D], bool [H]).

        Target k is the first command stamped in [due - slack, due + dt - slack):
        the command issued at or after the moment action k is due. The slack
        (TARGET_SLACK_NS) absorbs ns rounding when ticks and commands share a grid.
        """
        space = self.builder.spec.action_space
        dt_ns = space.dt_s * NS_PER_S
        targets = np.zeros((space.horizon, space.dim), dtype=np.float32)
        mask = np.zeros((space.horizon,), dtype=bool)
        stamps = self._teacher_stamps
        for k in range(space.horizon):
            lo = t0_ns + round(k * dt_ns) - TARGET_SLACK_NS
            i = int(np.searchsorted(stamps, lo, side="left"))
            if i < len(stamps) and stamps[i] < lo + dt_ns:
                targets[k] = self._teacher_actions[i]
                mask[k] = True
        return targets, mask

    def tick_times(self) -> np.ndarray:
        """Bag-time ticks: start, start + 1/rate, ... up to the last message."""
        period_ns = NS_PER_S / self.rate_hz
        count = int((self.info.end_ns - self.info.start_ns) // period_ns) + 1
        return self.info.start_ns + np.round(np.arange(count) * period_ns).astype(np.int64)

    def __len__(self) -> int:
        return len(self.tick_times())

    def _step(
        self, reader: AnyReader, index: int, tick: int, buffers: StreamBuffers, prompt: str | None
    ) -> BagStep:
        targets, mask = self.teacher_targets(tick)
        try:
            sample = self.builder.sample_from_buffers(buffers, tick, prompt)
            sample = self._resolve_sample(reader, sample)
            obs = self.builder.build(sample)
        except InvalidObservation as err:
            return BagStep(index, tick, None, None, err, targets, mask)
        return BagStep(index, tick, sample, obs, None, targets, mask)

    def __iter__(self) -> Iterator[BagStep]:
        spec = self.builder.spec
        buffers = StreamBuffers(spec.stream_specs(), self.unstamped_policy)
        self._replay_buffers = buffers
        topics = {t for t in self._topic.values() if t in self.info.topics}
        if self.prompt_topic is not None and self.prompt_topic in self.info.topics:
            topics.add(self.prompt_topic)
        prompt: str | None = self.info.custom.get("restac.prompt")
        ticks = self.tick_times()
        next_tick = 0
        reader = self._get_reader()
        for conn, log_ns, raw in self._messages(reader, topics):
            while next_tick < len(ticks) and log_ns > ticks[next_tick]:
                yield self._step(reader, next_tick, int(ticks[next_tick]), buffers, prompt)
                next_tick += 1
            if conn.topic == self.prompt_topic:
                prompt = str(self._deserialize(reader, raw, conn).data)
            else:
                stamp = self._header_stamp(raw, conn)
                buffers.push(self._stream[conn.topic], stamp, _Pending(raw, conn), log_ns)
        for i in range(next_tick, len(ticks)):
            yield self._step(reader, i, int(ticks[i]), buffers, prompt)

    def topic_messages(self, topic: str) -> Iterator[tuple[int, Any]]:
        """(log time ns, deserialised message) of one topic in log-time order ([] if absent)."""
        reader = self._get_reader()
        for conn, log_ns, raw in self._messages(reader, {topic}):
            yield log_ns, self._deserialize(reader, raw, conn)

    def counters(self) -> dict[str, StreamCounters]:
        """Per-stream received/rejected counters of the latest replay (empty before one)."""
        return {} if self._replay_buffers is None else self._replay_buffers.counters()

    def valid_steps(self) -> Iterator[BagStep]:
        """Only the ticks that produced an observation (e.g. for training)."""
        return (step for step in self if step.observation is not None)
