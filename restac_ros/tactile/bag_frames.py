"""Training frames for the VQ-VAE from a rosbag2 (read with ``rosbags``).

One sample per tactile frame (the anchor stream, every ``stride``-th frame):
each other stream contributes its message with the nearest *earlier or equal*
header stamp.  ``action_prev`` is state(anchor) - state(previous anchor) of the
first 7 joints (``joint1..joint7``), raw units; with the default stride 2 on a
30 Hz tactile stream that is the 15 Hz control step.  Anchors before every
stream has a message, and the first anchor (no previous state), are dropped.

Images go through the shared preprocessing: ``decode_image`` then
``resize_tactile`` for tactile, ``letterbox`` to 224x224 for cameras.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from restac_ros.core.images import decode_image, letterbox, resize_tactile

CAMERA_TOPICS = ("/camera/base/image_raw", "/camera/left_wrist/image_raw",
                 "/camera/right_wrist/image_raw")  # Prophet view order
TACTILE_TOPIC = "/tactile/image_raw"
JOINT_TOPIC = "/joint_states"
CONTACT_TOPIC = "/contact/ground_truth"
ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))


class BagFramesError(ValueError):
    """The bag lacks a topic or holds unusable data; names the bag and the problem."""


@dataclasses.dataclass
class BagFrames:
    tactile: np.ndarray  # uint8 [N, 128, 160, 3]
    views: np.ndarray  # uint8 [N, V, 224, 224, 3]
    action_prev: np.ndarray  # float32 [N, 7]
    contact: np.ndarray | None  # bool [N] (None when the bag has no contact topic)
    stamps_ns: np.ndarray  # int64 [N] anchor stamps
    source: str

    def __len__(self) -> int:
        return int(self.stamps_ns.shape[0])


def nearest_earlier(stamps: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of the last stamp <= each query in sorted ``stamps`` (-1 where none)."""
    return np.searchsorted(stamps, queries, side="right") - 1


def _stamp_ns(msg, bag_ns: int) -> int:
    header = getattr(msg, "header", None)
    if header is None:
        return int(bag_ns)
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _sorted(items: list[tuple[int, object]]) -> tuple[np.ndarray, list]:
    items.sort(key=lambda it: it[0])
    return np.array([s for s, _ in items], dtype=np.int64), [m for _, m in items]


def _image(msg) -> np.ndarray:
    return decode_image(msg.data, msg.encoding, msg.height, msg.width, msg.step)


def read_bag_frames(path: str | os.PathLike, *, stride: int = 2,
                    camera_topics: Sequence[str] = CAMERA_TOPICS,
                    tactile_topic: str = TACTILE_TOPIC, joint_topic: str = JOINT_TOPIC,
                    contact_topic: str | None = CONTACT_TOPIC,
                    joint_names: Sequence[str] = ARM_JOINTS) -> BagFrames:
    where = os.fspath(path)
    typestore = get_typestore(Stores.LATEST)
    wanted = [*camera_topics, tactile_topic, joint_topic]
    if contact_topic:
        wanted.append(contact_topic)
    raw: dict[str, list[tuple[int, object]]] = {t: [] for t in wanted}
    with Reader(where) as reader:
        present = {c.topic for c in reader.connections}
        for topic in (*camera_topics, tactile_topic, joint_topic):
            if topic not in present:
                raise BagFramesError(f"{where}: topic {topic} not in bag (has {sorted(present)})")
        conns = [c for c in reader.connections if c.topic in raw]
        for conn, bag_ns, data in reader.messages(connections=conns):
            msg = typestore.deserialize_cdr(data, conn.msgtype)
            raw[conn.topic].append((_stamp_ns(msg, bag_ns), msg))
    streams = {t: _sorted(v) for t, v in raw.items()}
    anchor_ns, tactile_msgs = streams[tactile_topic]
    keep = np.arange(0, len(anchor_ns), stride)
    anchor_ns = anchor_ns[keep]
    idx = {t: nearest_earlier(streams[t][0], anchor_ns) for t in (*camera_topics, joint_topic)}
    valid = np.all(np.stack([i >= 0 for i in idx.values()]), axis=0)
    valid[0] = False  # no previous state for the first anchor
    joint_msgs = streams[joint_topic][1]
    states = []
    for j in idx[joint_topic]:
        msg = joint_msgs[max(int(j), 0)]
        names = list(msg.name)
        try:
            states.append([float(msg.position[names.index(n)]) for n in joint_names])
        except ValueError as exc:
            raise BagFramesError(f"{where}: {joint_topic} lacks joint ({exc})") from exc
    states = np.asarray(states, dtype=np.float64)
    action_prev = np.zeros_like(states)
    action_prev[1:] = states[1:] - states[:-1]
    sel = np.flatnonzero(valid)
    if sel.size == 0:
        raise BagFramesError(f"{where}: no tactile frame has every stream before it")
    tactile = np.stack([resize_tactile(_image(tactile_msgs[keep[i]])) for i in sel])
    views = np.stack([np.stack([letterbox(_image(streams[t][1][idx[t][i]])) for t in camera_topics])
                      for i in sel])
    contact = None
    if contact_topic and streams[contact_topic][1]:
        c_ns, c_msgs = streams[contact_topic]
        ci = nearest_earlier(c_ns, anchor_ns[sel])
        contact = np.array([bool(c_msgs[i].data) if i >= 0 else False for i in ci])
    return BagFrames(tactile=tactile, views=views, action_prev=action_prev[sel].astype(np.float32),
                     contact=contact, stamps_ns=anchor_ns[sel], source=where)


def concat_frames(frames: Sequence[BagFrames]) -> BagFrames:
    """Stack several bags' frames (action_prev never spans two bags)."""
    contact = None
    if all(f.contact is not None for f in frames):
        contact = np.concatenate([f.contact for f in frames])
    return BagFrames(tactile=np.concatenate([f.tactile for f in frames]),
                     views=np.concatenate([f.views for f in frames]),
                     action_prev=np.concatenate([f.action_prev for f in frames]),
                     contact=contact, stamps_ns=np.concatenate([f.stamps_ns for f in frames]),
                     source=",".join(f.source for f in frames))
