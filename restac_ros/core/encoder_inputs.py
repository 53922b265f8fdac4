"""The tactile VQ-VAE's inputs from a bag, through the ONE observation path.

`vqvae_inputs_from_bag` replays a bag with `BagDataset` and an
`ObservationBuilder.encoder_inputs_only` builder (no norm stats, no tokenizer,
no prompt), so every valid tick gives the Observation the policy node would
build from the same messages: tactile_image [1,128,160,3] and camera images
[1,224,224,3] in [-1, 1]; action_prev = state(t) - state(t - action_prev_dt_s)
in raw units, zero-padded. Each step also carries the contact ground truth at
the tick. The VQ-VAE trainer (`restac_ros.tactile.bag_frames`) takes
tactile_image, the three views and action_prev[:7] from it, exactly as the
policy's tactile encoder does at inference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from restac_ros.core.action_space import joint_position
from restac_ros.core.bag_dataset import BagDataset, BagTypeMismatch
from restac_ros.core.buffers import UnstampedPolicy
from restac_ros.core.observation import (
    DEFAULT_CAMERA_STREAMS,
    ObservationBuilder,
    ObservationSpec,
)
from restac_ros.model.observation import VQ_ACTION_DIM, Observation

ARM_JOINTS: tuple[str, ...] = tuple(f"joint{i}" for i in range(1, 8))
CONTACT_TOPIC = "/contact/ground_truth"
CONTACT_INTERVALS_KEY = "restac.contact_intervals"
BOOL = "std_msgs/msg/Bool"


def encoder_spec(joint_names: Sequence[str] = ARM_JOINTS, **overrides: Any) -> ObservationSpec:
    """Spec for VQ-VAE data: sample-bag topics, the 7 arm joints, tactile required.

    overrides: any other ObservationSpec field (stream names, max ages, action_prev_dt_s).
    """
    names = tuple(joint_names)
    args: dict[str, Any] = dict(
        camera_streams=DEFAULT_CAMERA_STREAMS,
        joint_names=names,
        action_space=joint_position(names),
        action_dim=max(len(names), VQ_ACTION_DIM),
        tactile_required=True,
    )
    args.update(overrides)
    return ObservationSpec(**args)


@dataclasses.dataclass(frozen=True)
class EncoderStep:
    """A valid tick: its index and stamp, the Observation, contact ground truth (None: unknown)."""

    index: int
    stamp_ns: int
    observation: Observation
    contact: bool | None


def contact_labeller(
    ds: BagDataset, topic: str | None = CONTACT_TOPIC
) -> Callable[[int], bool] | None:
    """Contact ground truth at a bag time, or None when the bag records none.

    From the `restac.contact_intervals` metadata when present (closed
    intervals, exact at any time); else from `topic` (std_msgs/Bool): the
    newest message logged at or before the time, False before the first one.
    """
    if CONTACT_INTERVALS_KEY in ds.info.custom:
        intervals = ds.info.contact_intervals()
        return lambda t_ns: any(a <= t_ns <= b for a, b in intervals)
    if topic is None or topic not in ds.info.topics:
        return None
    if ds.info.topics[topic] != BOOL:
        raise BagTypeMismatch(
            f"{ds.path}: topic {topic!r} has type {ds.info.topics[topic]!r}, expected {BOOL!r}"
        )
    stamps, values = [], []
    for log_ns, msg in ds.topic_messages(topic):
        stamps.append(log_ns)
        values.append(bool(msg.data))
    stamp_arr, value_arr = np.asarray(stamps, np.int64), np.asarray(values, bool)

    def label(t_ns: int) -> bool:
        i = int(np.searchsorted(stamp_arr, t_ns, side="right")) - 1
        return bool(value_arr[i]) if i >= 0 else False

    return label


def vqvae_inputs_from_bag(
    path: str | Path,
    rate_hz: float = 15.0,
    spec: ObservationSpec | None = None,
    *,
    contact_topic: str | None = CONTACT_TOPIC,
    stream_topics: Mapping[str, str] | None = None,
    unstamped_policy: UnstampedPolicy | str = UnstampedPolicy.STAMP_ON_RECEIPT,
) -> Iterator[EncoderStep]:
    """Valid ticks of a bag at rate_hz (bag time) as EncoderSteps, in order.

    spec: default `encoder_spec()`; a policy's spec works too (its first 7
    joints feed the VQ-VAE). Tactile is made required: a tick without fresh
    tactile is skipped, never fed black. The bag is opened (and checked) now;
    raises BagError subclasses like BagDataset.
    """
    spec = encoder_spec() if spec is None else spec
    if spec.tactile_stream is None:
        raise ValueError("the VQ-VAE needs a tactile_stream in the spec")
    if not spec.tactile_required:
        spec = dataclasses.replace(spec, tactile_required=True)
    ds = BagDataset(
        path,
        ObservationBuilder.encoder_inputs_only(spec),
        rate_hz,
        teacher_topic=None,
        prompt_topic=None,
        unstamped_policy=unstamped_policy,
        stream_topics=stream_topics,
    )
    try:
        label = contact_labeller(ds, contact_topic)
    except BaseException:
        ds.close()
        raise
    return _steps(ds, label)


def _steps(ds: BagDataset, label: Callable[[int], bool] | None) -> Iterator[EncoderStep]:
    with ds:
        for step in ds.valid_steps():
            contact = None if label is None else label(step.stamp_ns)
            yield EncoderStep(step.index, step.stamp_ns, step.observation, contact)
