"""Replay a rosbag2 (sqlite3 or MCAP) through the live observation path, in bag time.

Messages are pushed into the same `StreamBuffers` the policy node uses (header
stamp as stamp, bag log time as receipt time); at each tick of the configured
rate the same `ObservationBuilder` assembles the observation. Each step also
carries the teacher's commanded actions over the horizon, for evaluation and
training. Topic names are the ObservationSpec's stream names.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError

from restac_ros.core.buffers import NS_PER_S, StreamBuffers, UnstampedPolicy
from restac_ros.core.images import RawCompressedImage, RawImage
from restac_ros.core.observation import (
    InvalidObservation,
    JointSample,
    ObservationBuilder,
    RawSample,
)
from restac_ros.model.observation import Observation

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
STRING = "std_msgs/msg/String"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
TEACHER_TOPIC = "/teacher/joint_command"
PROMPT_TOPIC = "/restac/prompt"


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
    (first command at or after it, within one dt); target_mask False where
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


def stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * NS_PER_S + int(msg.header.stamp.nanosec)


def to_image_input(msg: Any, msgtype: str) -> RawImage | RawCompressedImage:
    """sensor_msgs Image / CompressedImage (rosbags or rclpy object) -> core payload."""
    if msgtype == COMPRESSED_IMAGE:
        return RawCompressedImage(np.asarray(msg.data, dtype=np.uint8), str(msg.format))
    return RawImage(
        np.asarray(msg.data, dtype=np.uint8),
        str(msg.encoding),
        int(msg.height),
        int(msg.width),
        int(msg.step),
        bool(msg.is_bigendian),
    )


def to_joint_sample(msg: Any) -> JointSample:
    return JointSample(tuple(msg.name), np.asarray(msg.position, dtype=np.float64), stamp_ns(msg))


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
    ) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.path = Path(path)
        self.builder = builder
        self.rate_hz = float(rate_hz)
        self.teacher_topic = teacher_topic
        self.prompt_topic = prompt_topic
        self.unstamped_policy = UnstampedPolicy(unstamped_policy)
        self.info = self._read_info()
        self._check_topics()
        self._teacher_stamps, self._teacher_actions = self._load_teacher()

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

    def _read_info(self) -> BagInfo:
        reader = self._open()
        try:
            topics = {c.topic: c.msgtype for c in reader.connections}
            custom = _custom_data(reader)
            if reader.message_count == 0:
                raise BagError(f"{self.path}: bag has no messages")
            return BagInfo(self.path, reader.start_time, reader.end_time - 1, topics, custom)
        finally:
            reader.close()

    def _expected_types(self) -> dict[str, tuple[str, ...]]:
        spec = self.builder.spec
        expected = {topic: IMAGE_TYPES for topic in spec.camera_streams.values()}
        expected[spec.joint_stream] = (JOINT_STATE,)
        if spec.tactile_stream is not None:
            expected[spec.tactile_stream] = IMAGE_TYPES
        if self.teacher_topic is not None:
            expected[self.teacher_topic] = (JOINT_STATE,)
        if self.prompt_topic is not None:
            expected[self.prompt_topic] = (STRING,)
        return expected

    def _check_topics(self) -> None:
        spec = self.builder.spec
        required = [*spec.camera_streams.values(), spec.joint_stream]
        if spec.tactile_required:
            required.append(spec.tactile_stream)
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

    def _messages(self, reader: AnyReader, topics: set[str]) -> Iterator[tuple[Any, int, Any]]:
        conns = [c for c in reader.connections if c.topic in topics]
        try:
            for conn, log_ns, raw in reader.messages(connections=conns):
                yield conn, log_ns, self._deserialize(reader, raw, conn)
        except _STORAGE_ERRORS as err:
            raise BagCorrupt(f"{self.path}: error reading messages: {err}") from None

    def _load_teacher(self) -> tuple[np.ndarray, np.ndarray]:
        space = self.builder.spec.action_space
        if self.teacher_topic is None:
            return np.zeros((0,), np.int64), np.zeros((0, space.dim), np.float32)
        stamps, rows = [], []
        reader = self._open()
        try:
            for _, log_ns, msg in self._messages(reader, {self.teacher_topic}):
                given = {n: i for i, n in enumerate(msg.name)}
                if missing := [n for n in space.names if n not in given]:
                    raise BagError(
                        f"{self.path}: {self.teacher_topic} lacks action names {missing} "
                        f"(has {list(msg.name)})"
                    )
                stamps.append(stamp_ns(msg) or log_ns)
                rows.append([msg.position[given[n]] for n in space.names])
        finally:
            reader.close()
        order = np.argsort(np.asarray(stamps, dtype=np.int64), kind="stable")
        return (
            np.asarray(stamps, dtype=np.int64)[order],
            np.asarray(rows, dtype=np.float32).reshape(-1, space.dim)[order],
        )

    # -- replay -------------------------------------------------------------
    def teacher_targets(self, t0_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Teacher commands due at t0 + k*dt, k < horizon: (float32 [H, D], bool [H])."""
        space = self.builder.spec.action_space
        dt_ns = round(space.dt_s * NS_PER_S)
        targets = np.zeros((space.horizon, space.dim), dtype=np.float32)
        mask = np.zeros((space.horizon,), dtype=bool)
        stamps = self._teacher_stamps
        for k in range(space.horizon):
            due = t0_ns + k * dt_ns
            i = int(np.searchsorted(stamps, due, side="left"))
            if i < len(stamps) and stamps[i] < due + dt_ns:
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

    def _step(self, index: int, tick: int, buffers: StreamBuffers, prompt: str | None) -> BagStep:
        targets, mask = self.teacher_targets(tick)
        try:
            sample = self.builder.sample_from_buffers(buffers, tick, prompt)
            obs = self.builder.build(sample)
        except InvalidObservation as err:
            return BagStep(index, tick, None, None, err, targets, mask)
        return BagStep(index, tick, sample, obs, None, targets, mask)

    def __iter__(self) -> Iterator[BagStep]:
        spec = self.builder.spec
        buffers = StreamBuffers(spec.stream_specs(), self.unstamped_policy)
        image_topics = set(spec.camera_streams.values())
        if spec.tactile_stream is not None and spec.tactile_stream in self.info.topics:
            image_topics.add(spec.tactile_stream)
        topics = {*image_topics, spec.joint_stream}
        if self.prompt_topic is not None and self.prompt_topic in self.info.topics:
            topics.add(self.prompt_topic)
        prompt: str | None = self.info.custom.get("restac.prompt")
        ticks = self.tick_times()
        next_tick = 0
        reader = self._open()
        try:
            for conn, log_ns, msg in self._messages(reader, topics):
                while next_tick < len(ticks) and log_ns > ticks[next_tick]:
                    yield self._step(next_tick, int(ticks[next_tick]), buffers, prompt)
                    next_tick += 1
                if conn.topic == self.prompt_topic:
                    prompt = str(msg.data)
                elif conn.topic in image_topics:
                    buffers.push(
                        conn.topic, stamp_ns(msg), to_image_input(msg, conn.msgtype), log_ns
                    )
                else:
                    buffers.push(conn.topic, stamp_ns(msg), to_joint_sample(msg), log_ns)
            for i in range(next_tick, len(ticks)):
                yield self._step(i, int(ticks[i]), buffers, prompt)
        finally:
            reader.close()

    def valid_steps(self) -> Iterator[BagStep]:
        """Only the ticks that produced an observation (e.g. for training)."""
        return (step for step in self if step.observation is not None)
