"""The robot side of remote inference, ROS-free: sample -> request, reply -> chunk.

policy_node's remote backend validates a tick's RawSample with the core builder's own
checks (joint layout, finite values, decodable images, prompt), ships it in our
observation keys, and checks the reply before anything reaches the robot. Images
travel decoded (uint8 RGB) at sensor resolution: the letterbox / tactile resize and
everything after them happen once, in the server's builder, with its pipeline, so the
server's observation is the one a local builder makes from the same messages.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from restac_ros.core import restac_preset
from restac_ros.core.images import ImageDecodeError, as_rgb
from restac_ros.core.observation import (
    InvalidObservation,
    ObservationBuilder,
    ObservationSpec,
    RawSample,
    ReasonCode,
)
from restac_ros.serve.requests import (
    ACTION_PREV_KEY,
    OURS,
    PROMPT_KEY,
    SEED_KEY,
    STATE_KEY,
    TACTILE,
    image_key,
)


class BadReply(ValueError):
    """A reply that must not reach the robot (wrong shape, NaN, missing fields)."""


@dataclasses.dataclass(frozen=True)
class ServerExpectation:
    """What the node's parameters require of the server it talks to."""

    joint_names: tuple[str, ...]
    action_space: str
    action_names: tuple[str, ...]
    dt_s: float
    camera_slots: tuple[str, ...]
    tactile: bool

    def mismatches(self, meta: dict) -> list[str]:
        """Differences between the server's metadata frame and this node; [] = compatible."""
        out = []
        if meta.get("server") != "restac-serve":
            out.append(f"server is {meta.get('server')!r}, not restac-serve")
            return out
        if tuple(meta.get("joint_names", ())) != self.joint_names:
            out.append(f"server joint_names {meta.get('joint_names')} != node "
                       f"{list(self.joint_names)}")
        if meta.get("action_space") != self.action_space:
            out.append(f"server action_space {meta.get('action_space')!r} != node "
                       f"{self.action_space!r}")
        if tuple(meta.get("action_names", ())) != self.action_names:
            out.append(f"server action_names {meta.get('action_names')} != node "
                       f"{list(self.action_names)}")
        if not np.isclose(float(meta.get("dt", -1.0)), self.dt_s, rtol=1e-6):
            out.append(f"server dt {meta.get('dt')} != node action_dt_s {self.dt_s}")
        if missing := sorted(set(meta.get("camera_slots", ())) - set(self.camera_slots)):
            out.append(f"server needs camera slots {missing} the node has no topic for")
        if meta.get("tactile_required") and not self.tactile:
            out.append("server requires tactile input; the node has no tactile_topic")
        return out


def validation_builder(spec: ObservationSpec) -> ObservationBuilder:
    """The robot side's builder: buffers, sampling and validation only. Normalisation,
    tokenising and the pipeline's conventions are the server's builder's (its params), so
    the node-side one runs the default pipeline (the restac pipeline's builder needs
    action stats, which only the server has)."""
    return ObservationBuilder.encoder_inputs_only(
        dataclasses.replace(spec, pipeline=restac_preset.DEFAULT))


def _rgb(image, what: str) -> np.ndarray:
    try:
        return as_rgb(image)
    except ImageDecodeError as err:
        raise InvalidObservation(ReasonCode.BAD_IMAGE, f"{what}: {err}") from None


def request_from_sample(builder: ObservationBuilder, sample: RawSample, seed: int,
                        meta: dict) -> dict:
    """RawSample -> an `infer` request in our keys; raises InvalidObservation like build()."""
    spec = builder.spec
    state = builder.state_vector(sample.joints)
    if sample.prev_joints is None:
        raise InvalidObservation(ReasonCode.NO_PREVIOUS_STATE, "no previous joint state")
    prev = builder.state_vector(sample.prev_joints, "previous joint state")
    prompt = spec.default_prompt if sample.prompt is None else sample.prompt
    if not (prompt or meta.get("default_prompt")):
        raise InvalidObservation(ReasonCode.EMPTY_PROMPT, "no prompt received")
    request = {STATE_KEY: state, ACTION_PREV_KEY: state - prev, SEED_KEY: int(seed)}
    if prompt:
        request[PROMPT_KEY] = prompt
    for slot in meta.get("camera_slots", ()):
        if sample.images.get(slot) is None:
            raise InvalidObservation(ReasonCode.MISSING_STREAM, f"no image for slot {slot!r}")
        request[image_key(OURS, slot)] = _rgb(sample.images[slot], f"camera {slot!r}")
    if sample.tactile is not None and meta.get("tactile"):
        request[image_key(OURS, TACTILE)] = _rgb(sample.tactile, "tactile")
    elif spec.tactile_required:
        raise InvalidObservation(ReasonCode.TACTILE_MISSING, "tactile required but absent")
    return request


@dataclasses.dataclass(frozen=True)
class RemoteChunk:
    actions: np.ndarray  # float32 [H, robot_dim], robot units
    codes: np.ndarray  # int32 [n_q]
    q_event: np.ndarray  # float32 [e]
    logvar: float
    gate: float
    server_infer_ms: float  # the model call on the server (its whole batch)
    batch_size: int


def parse_reply(reply: dict, horizon: int, robot_dim: int) -> RemoteChunk:
    """Check an `infer` reply; raises BadReply."""
    actions = reply.get("actions")
    if not isinstance(actions, np.ndarray) or actions.shape != (horizon, robot_dim):
        got = getattr(actions, "shape", type(actions).__name__)
        raise BadReply(f"actions must be [{horizon}, {robot_dim}], got {got}")
    if actions.dtype.kind != "f" or not np.all(np.isfinite(actions)):
        raise BadReply("actions are not finite floats")
    tactile = reply.get("tactile")
    timing = reply.get("policy_timing") or {}
    try:
        codes = np.asarray(tactile["vq_codes"], np.int32).reshape(-1)
        q_event = np.asarray(tactile["q_event"], np.float32).reshape(-1)
        logvar, gate = float(tactile["logvar"]), float(tactile["gate"])
    except (KeyError, TypeError, ValueError) as err:
        raise BadReply(f"tactile diagnostics missing or malformed: {err!r}") from None
    return RemoteChunk(actions.astype(np.float32), codes, q_event, logvar, gate,
                       float(timing.get("infer_ms", float("nan"))),
                       int(timing.get("batch_size", 1)))
