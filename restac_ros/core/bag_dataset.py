"""Replay a rosbag2 (sqlite3 or MCAP) through the live observation path, in bag time.

Messages are pushed into the same `StreamBuffers` the policy node uses (header
stamp as stamp, bag log time as receipt time); at each tick of the configured
rate the same `ObservationBuilder` assembles the observation. Each step also
carries the teacher's commanded actions over the horizon, for evaluation and
training. Bag topics are the ObservationSpec's stream names unless
`stream_topics` maps them.

A damaged bag is replayed as far as it is readable (`restac_ros.core.bag_salvage`: no
metadata.yaml, a truncated MCAP); a message that does not deserialize is not used (a
tick that needs it is refused as `corrupt_message`). `damage()` lists what was lost.
"""

from __future__ import annotations

import collections
import dataclasses
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader

from restac_ros.core.bag_info import (  # noqa: F401  (re-exported: the public API)
    BagCorrupt,
    BagError,
    BagInfo,
    BagTopicMissing,
    BagTypeMismatch,
    _custom_data,
)
from restac_ros.core.bag_salvage import STORAGE_ERRORS, open_bag
from restac_ros.core.buffers import NS_PER_S, StreamBuffers, StreamCounters, UnstampedPolicy
from restac_ros.core.messages import (
    IMAGE_TYPES,
    JOINT_STATE,
    STRING,
    stamp_ns,
    to_image_input,
    to_joint_sample,
)
from restac_ros.core.observation import (
    InvalidObservation,
    ObservationBuilder,
    RawSample,
    ReasonCode,
)
from restac_ros.core.teacher_series import TeacherSeries
from restac_ros.model.observation import Observation

TEACHER_TOPIC = "/teacher/joint_command"
PROMPT_TOPIC = "/restac/prompt"
TARGET_SLACK_NS = 1_000_000  # 1 ms: stamps on the same 15 Hz grid differ by ns roundings


_STORAGE_ERRORS = STORAGE_ERRORS  # the old (private) name
# A tick's step waits until the replay is this far past its last target's due time,
# so teacher commands logged after their stamp (transport latency) still count.
TEACHER_LATENCY_S = 0.5


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


class _Pending:
    """A buffered message still in CDR form; deserialised once, only if a tick uses it.
    value: the converted message, or the InvalidObservation it raised when corrupt."""

    __slots__ = ("conn", "log_ns", "raw", "value")

    def __init__(self, raw: bytes, conn: Any, log_ns: int) -> None:
        self.raw = raw
        self.conn = conn
        self.log_ns = log_ns
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
        self._open_notes: list[str] = []
        self._read_error: str | None = None
        self._corrupt: dict[str, list] = {}  # topic -> [count, first problem], latest pass
        reader = self._get_reader()
        try:
            self.info = self._read_info(reader)
            self._check_topics()
            count = sum(getattr(c, "msgcount", 0) or 0 for c in reader.connections
                        if c.topic == teacher_topic)
            self._teacher = TeacherSeries(builder.spec.action_space.names, count)
            self._replaying = False
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
        reader, self._open_notes = open_bag(self.path)
        return reader

    def damage(self) -> list[str]:
        """What of the bag is missing or was not used, one line each naming the bag: no
        metadata.yaml, an unreadable tail, messages that do not deserialize ([]: intact)."""
        out = list(self._open_notes)
        if self._read_error is not None:
            out.append(self._read_error)
        for topic, (count, first) in sorted(self._corrupt.items()):
            out.append(f"{self.path}: {count} message(s) on {topic} do not deserialize and "
                       f"were not used (first at log time {first})")
        return out

    def _note_corrupt(self, conn: Any, log_ns: int, problem: str) -> None:
        entry = self._corrupt.setdefault(conn.topic, [0, f"{log_ns}: {problem}"])
        entry[0] += 1

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
        """(connection, log time ns, CDR bytes) in log-time order, up to the first
        unreadable part of the storage (noted in damage())."""
        for topic in topics:
            self._corrupt.pop(topic, None)
        self._read_error = None
        conns = [c for c in reader.connections if c.topic in topics]
        last_ns = None
        try:
            for item in reader.messages(connections=conns):
                last_ns = item[1]
                yield item
        except STORAGE_ERRORS as err:
            after = "at its start" if last_ns is None else f"after log time {last_ns}"
            self._read_error = (f"{self.path}: storage unreadable {after} ({err}); the messages "
                                "before it are used")

    def _try_deserialize(self, reader: AnyReader, conn: Any, log_ns: int, raw: bytes) -> Any:
        """The message, or None (noted in damage()) when it does not deserialize."""
        try:
            return reader.deserialize(raw, conn.msgtype)
        except Exception as err:  # rosbags raises many types on truncated CDR
            self._note_corrupt(conn, log_ns, f"{type(err).__name__}: {err}")
            return None

    def _header_stamp(self, raw: bytes, conn: Any) -> int | None:
        """Header stamp read straight from the CDR bytes (messages starting with a Header);
        None when the bytes cannot hold one.

        Saves deserialising the many messages no tick uses (joints at 500 Hz).
        Bytes 0-1: encapsulation (0x0001 little endian); then sec int32, nanosec uint32.
        """
        if len(raw) < 12 or raw[0] != 0 or raw[1] not in (0, 1):
            return None
        sec, nanosec = struct.unpack_from("<iI" if raw[1] == 1 else ">iI", raw, 4)
        return sec * NS_PER_S + nanosec

    def _resolve(self, reader: AnyReader, pending: _Pending) -> Any:
        if pending.value is None:
            msg = self._try_deserialize(reader, pending.conn, pending.log_ns, pending.raw)
            msgtype = pending.conn.msgtype
            if msg is None:
                pending.value = InvalidObservation(
                    ReasonCode.CORRUPT_MESSAGE, f"the {msgtype} on {pending.conn.topic} logged "
                    f"at {pending.log_ns} does not deserialize")
            else:
                pending.value = (to_joint_sample(msg) if msgtype == JOINT_STATE
                                 else to_image_input(msg, msgtype))
            pending.raw = b""
        if isinstance(pending.value, InvalidObservation):
            raise pending.value
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

    def _add_teacher(self, reader: AnyReader, conn: Any, log_ns: int, raw: bytes) -> None:
        """Adds one teacher message's (stamp, command float32 [dim] in action order);
        one that does not deserialize or whose names and positions differ is not used."""
        msg = self._try_deserialize(reader, conn, log_ns, raw)
        if msg is None:
            return
        given = {n: i for i, n in enumerate(msg.name)}
        names = self._teacher.names
        if missing := [n for n in names if n not in given]:
            raise BagError(f"{self.path}: {self.teacher_topic} lacks action names {missing} "
                           f"(has {list(msg.name)})")
        if len(msg.position) != len(msg.name):
            self._note_corrupt(conn, log_ns, f"{len(msg.name)} names, {len(msg.position)} "
                                             "positions")
            return
        row = np.asarray([msg.position[given[n]] for n in names], np.float32)
        self._teacher.add(stamp_ns(msg) or log_ns, row)

    def _ensure_teacher(self) -> None:
        """Outside a replay: read the teacher topic alone if no replay has collected it."""
        if self._teacher.complete or self._replaying:
            return
        self._teacher.reset()
        if self.teacher_topic is not None:
            reader = self._get_reader()
            for conn, log_ns, raw in self._messages(reader, {self.teacher_topic}):
                self._add_teacher(reader, conn, log_ns, raw)
        self._teacher.complete = True

    def teacher_series(self) -> tuple[np.ndarray, np.ndarray]:
        """All teacher commands, stamp-sorted: (stamps int64 [N], actions float32 [N, dim]).

        Collected by the replay itself (iterating the dataset); called before any
        complete replay, it reads the teacher topic in a pass of its own. During a
        replay: the commands read so far (every one stamped before the step just
        yielded, and those due over its horizon).
        """
        self._ensure_teacher()
        return self._teacher.arrays()

    @property
    def _teacher_stamps(self) -> np.ndarray:
        """Compatibility: the live, in-place filled stamps (unread: INT64_MAX at the end)."""
        return self._teacher.stamps

    @property
    def _teacher_actions(self) -> np.ndarray:
        """Compatibility: the live, in-place filled commands (unread: NaN at the end)."""
        return self._teacher.actions

    # -- replay -------------------------------------------------------------
    def teacher_targets(self, t0_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Teacher commands due at t0 + k*dt, k < horizon: (float32 [H, D], bool [H]).

        Target k is the first command stamped in [due - slack, due + dt - slack):
        the command issued at or after the moment action k is due. The slack
        (TARGET_SLACK_NS) absorbs ns rounding when ticks and commands share a grid.
        """
        self._ensure_teacher()
        space = self.builder.spec.action_space
        return self._teacher.targets(t0_ns, space.horizon, space.dt_s * NS_PER_S,
                                     TARGET_SLACK_NS)

    def tick_times(self) -> np.ndarray:
        """Bag-time ticks: start, start + 1/rate, ... up to the last message."""
        period_ns = NS_PER_S / self.rate_hz
        count = int((self.info.end_ns - self.info.start_ns) // period_ns) + 1
        return self.info.start_ns + np.round(np.arange(count) * period_ns).astype(np.int64)

    def __len__(self) -> int:
        return len(self.tick_times())

    def _sample(self, reader: AnyReader, tick: int, buffers: StreamBuffers,
                prompt: str | None) -> RawSample | InvalidObservation:
        """The tick's sample, taken from the buffers as they are at the tick."""
        try:
            return self._resolve_sample(reader, self.builder.sample_from_buffers(
                buffers, tick, prompt))
        except InvalidObservation as err:
            return err

    def _step(self, index: int, tick: int, sample: RawSample | InvalidObservation) -> BagStep:
        targets, mask = self.teacher_targets(tick)
        if isinstance(sample, InvalidObservation):
            return BagStep(index, tick, None, None, sample, targets, mask)
        try:
            obs = self.builder.build(sample)
        except InvalidObservation as err:
            return BagStep(index, tick, None, None, err, targets, mask)
        return BagStep(index, tick, sample, obs, None, targets, mask)

    def __iter__(self) -> Iterator[BagStep]:
        """One pass over the bag: observation streams, prompt and teacher commands."""
        spec = self.builder.spec
        buffers = StreamBuffers(spec.stream_specs(), self.unstamped_policy)
        self._replay_buffers = buffers
        topics = {t for t in self._topic.values() if t in self.info.topics}
        if self.prompt_topic is not None and self.prompt_topic in self.info.topics:
            topics.add(self.prompt_topic)
        collect = not self._teacher.complete and self.teacher_topic is not None
        wait_ns = 0
        if collect:
            topics.add(self.teacher_topic)
            self._teacher.reset()
            space = spec.action_space
            wait_ns = round((space.horizon * space.dt_s + TEACHER_LATENCY_S) * NS_PER_S)
        prompt: str | None = self.info.custom.get("restac.prompt")
        ticks = self.tick_times()
        next_tick = 0
        pending: collections.deque = collections.deque()  # (index, tick, sample) awaiting targets
        reader = self._get_reader()
        self._replaying = True
        last_ns = None
        try:
            for conn, log_ns, raw in self._messages(reader, topics):
                last_ns = log_ns
                while next_tick < len(ticks) and log_ns > ticks[next_tick]:
                    tick = int(ticks[next_tick])
                    pending.append((next_tick, tick, self._sample(reader, tick, buffers, prompt)))
                    next_tick += 1
                while pending and log_ns > pending[0][1] + wait_ns:
                    yield self._step(*pending.popleft())
                if conn.topic == self.teacher_topic:
                    self._add_teacher(reader, conn, log_ns, raw)
                elif conn.topic == self.prompt_topic:
                    if (msg := self._try_deserialize(reader, conn, log_ns, raw)) is not None:
                        prompt = str(msg.data)
                elif (stamp := self._header_stamp(raw, conn)) is None:
                    self._note_corrupt(conn, log_ns, "too short for a CDR header")
                else:
                    buffers.push(self._stream[conn.topic], stamp, _Pending(raw, conn, log_ns),
                                 log_ns)
            if self._read_error is not None:  # the rest of the bag is unreadable: no ticks
                ticks = ticks[: next_tick] if last_ns is None else ticks[ticks <= last_ns]
            for i in range(next_tick, len(ticks)):
                pending.append((i, int(ticks[i]), self._sample(reader, int(ticks[i]), buffers,
                                                                prompt)))
            self._teacher.complete = True
            while pending:
                yield self._step(*pending.popleft())
        finally:
            self._replaying = False

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
