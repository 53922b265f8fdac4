"""VQ-VAE training frames from rosbags: a thin adapter over the core's observation path.

Frames come from ``restac_ros.core.encoder_inputs.vqvae_inputs_from_bag``
(``BagDataset`` + ``ObservationBuilder``: the buffers, stamp alignment, decoding,
letterbox and tactile resize that ``policy_node`` and ``restac-eval`` use), one
per valid tick at ``rate_hz`` in bag time.  This module only stacks what the
policy's tactile encoder takes from each ``Observation`` (``model/tactile.py``):
``tactile_image``, the three views in Prophet order (``jax_port.stack_views``)
and ``action_prev[:7]`` (raw joint delta over ``ObservationSpec.action_prev_dt_s``).
No preprocessing happens here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence

import numpy as np

from restac_ros.core.encoder_inputs import EncoderStep, vqvae_inputs_from_bag
from restac_ros.core.observation import ObservationSpec
from restac_ros.model.observation import VQ_ACTION_DIM
from restac_ros.tactile.jax_port import stack_views


class BagFramesError(ValueError):
    """The bag gave no usable frame; names the bag and the problem."""


@dataclasses.dataclass
class BagFrames:
    tactile: np.ndarray  # float32 [N, 128, 160, 3] in [-1, 1]
    views: np.ndarray  # float32 [N, 3, 224, 224, 3] in [-1, 1] (base, left wrist, right wrist)
    action_prev: np.ndarray  # float32 [N, 7], raw units
    contact: np.ndarray | None  # bool [N] (None when the bag records no contact)
    stamps_ns: np.ndarray  # int64 [N] tick stamps
    source: str

    def __len__(self) -> int:
        return int(self.stamps_ns.shape[0])


def frames_from_steps(steps: Iterable[EncoderStep], source: str) -> BagFrames:
    """Stack the encoder's inputs of each step's Observation (batch 1)."""
    tactile, views, action_prev, contact, stamps = [], [], [], [], []
    for step in steps:
        obs = step.observation
        tactile.append(obs.tactile_image[0])
        views.append(stack_views(obs.images, xp=np)[0])
        action_prev.append(obs.action_prev[0, :VQ_ACTION_DIM])
        contact.append(step.contact)
        stamps.append(step.stamp_ns)
    if not stamps:
        raise BagFramesError(f"{source}: no tick had fresh cameras, joints (with history) "
                             "and tactile")
    labels = None if any(c is None for c in contact) else np.asarray(contact, bool)
    return BagFrames(tactile=np.stack(tactile).astype(np.float32, copy=False),
                     views=np.stack(views).astype(np.float32, copy=False),
                     action_prev=np.stack(action_prev).astype(np.float32, copy=False),
                     contact=labels, stamps_ns=np.asarray(stamps, np.int64), source=source)


def read_bag_frames(path: str | os.PathLike, rate_hz: float = 15.0,
                    spec: ObservationSpec | None = None) -> BagFrames:
    """All valid ticks of one bag at ``rate_hz`` (spec: default ``encoder_spec()``)."""
    return frames_from_steps(vqvae_inputs_from_bag(path, rate_hz, spec), os.fspath(path))


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
