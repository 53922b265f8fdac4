"""Observation assembly: synchronized raw sensor data -> the model's batch-1 `Observation`.

The ONE preprocessing path: `policy_node`, `restac-eval`,
`restac-train-policy` and the VQ-VAE trainer (`encoder_inputs.py`) all go
StreamBuffers -> `sample_from_buffers` -> `build`, and map model outputs back
with `postprocess_actions`.
"""

from __future__ import annotations

import dataclasses
import enum
import types
from collections.abc import Mapping, Sequence

import numpy as np

from restac_ros.core import input_checks, restac_preset
from restac_ros.core.buffers import NS_PER_S, Stamped, StreamBuffers, UnstampedPolicy
from restac_ros.core.images import (
    ImageDecodeError,
    ImageInput,
    as_rgb,
    letterbox,
    resize_tactile,
    to_model_range,
)
from restac_ros.core.observation_spec import (  # noqa: F401  (re-exported: the public API)
    DEFAULT_CAMERA_STREAMS,
    MAX_JOINT_RATE_HZ,
    STAMP_SLACK_NS,
    ObservationSpec,
    default_delta_action_mask,
    delta_action_mask_from_meta,
)
from restac_ros.core.prepared import PreparedImages
from restac_ros.model import norm_stats as norm
from restac_ros.model.observation import IMAGE_KEYS, IMAGE_SIZE, TACTILE_SIZE, Observation
from restac_ros.model.tokenizer import PromptTokenizer


class ReasonCode(enum.StrEnum):
    """Why an observation was refused (shown on /diagnostics and in eval reports)."""

    NONFINITE_JOINTS = "nonfinite_joints"
    MISSING_JOINTS = "missing_joints"  # also renamed joints: maps by name
    BAD_JOINT_LAYOUT = "bad_joint_layout"  # names/positions length mismatch, duplicates
    NO_PREVIOUS_STATE = "no_previous_state"  # no joint state action_prev_dt_s back
    MISSING_STREAM = "missing_stream"  # a required stream never arrived
    STALE_STREAM = "stale_stream"
    TACTILE_MISSING = "tactile_missing"  # tactile required but absent
    EMPTY_PROMPT = "empty_prompt"
    BAD_IMAGE = "bad_image"
    JOINT_LIMITS = "joint_out_of_limits"  # a position outside the configured limits
    JOINT_VELOCITY = "joint_velocity_limit"  # two states further apart than vmax allows
    BAD_PROMPT = "bad_prompt"  # too long, or contains NUL
    CORRUPT_MESSAGE = "corrupt_message"  # a recorded message that does not deserialize


class InvalidObservation(Exception):
    """Raised instead of producing an observation; never silently patched up."""

    def __init__(self, reason: ReasonCode, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class InvalidActions(ValueError):
    """Model output that must not reach a robot (wrong shape, NaN/inf)."""


@dataclasses.dataclass(frozen=True)
class JointSample:
    """sensor_msgs/JointState without ROS: names and positions, same length."""

    names: tuple[str, ...]
    positions: np.ndarray
    stamp_ns: int = 0


@dataclasses.dataclass(frozen=True)
class RawSample:
    """Synchronized inputs of one tick.

    stamp_ns: the tick time; a chunk predicted from this sample is stamped with
      it (its action k is due at stamp_ns + k*dt) and teacher targets align to it.
    images: {slot: image} for every slot of ObservationSpec.camera_streams.
    prev_joints: the joint state action_prev_dt_s before `joints` (see
      ObservationSpec); action_prev = joints - prev_joints in raw units.
    tactile: None = no tactile input (allowed only when tactile is optional).
    """

    stamp_ns: int
    images: Mapping[str, ImageInput]
    joints: JointSample
    prev_joints: JointSample | None
    prompt: str | None
    tactile: ImageInput | None = None


class ObservationBuilder:
    """Validates a RawSample and turns it into a normalised, tokenised batch-1 Observation.

    `ObservationBuilder.encoder_inputs_only(spec)` builds without norm stats or
    tokenizer, for data that feeds only the tactile encoder (VQ-VAE training).
    """

    inputs_only = False

    def __init__(
        self,
        spec: ObservationSpec,
        stats: Mapping[str, norm.NormStats],
        tokenizer: PromptTokenizer,
    ) -> None:
        # Stats narrower than the data would leave trailing dims unnormalised: refuse.
        needs = {"state": spec.state_dim, "actions": spec.robot_dim}
        for key, width in needs.items():
            if key not in stats:
                raise ValueError(f"norm stats lack {key!r} (have {sorted(stats)})")
            have = np.asarray(stats[key].mean).shape[-1]
            if have < width:
                raise ValueError(f"norm stats {key!r} have {have} dims, need >= {width}")
            if spec.use_quantile_norm and (stats[key].q01 is None or stats[key].q99 is None):
                raise ValueError(f"quantile normalisation needs q01/q99 in norm stats {key!r}")
        rows = np.asarray(stats["actions"].mean)
        if rows.ndim == 2 and rows.shape[0] != spec.action_space.horizon:
            raise ValueError(f"per-step norm stats 'actions' cover {rows.shape[0]} chunk steps, "
                             f"the policy's horizon is {spec.action_space.horizon}")
        if spec.pipeline == restac_preset.RESTAC:
            restac_preset.check_stats(stats, spec.action_dim, spec.robot_dim)
        self.spec = spec
        self.stats = stats
        self.tokenizer = tokenizer
        self._last_state_raw: np.ndarray | None = None
        self.prepared = PreparedImages()
        self.tactile_stretched = 0  # off-size tactile images stretched (tactile_resize)

    @classmethod
    def encoder_inputs_only(cls, spec: ObservationSpec) -> ObservationBuilder:
        """A builder for the tactile encoder's inputs only (no policy checkpoint needed).

        Same buffers, sampling, validation and image/tactile/action_prev
        preprocessing as a full builder; but no prompt is needed and none is
        tokenised (tokenized_prompt is [1, 0]) and state is not normalised
        (zeros, mask it out: never feed these observations to the policy).
        postprocess_actions refuses (no action stats).
        """
        if spec.pipeline == restac_preset.RESTAC:
            raise ValueError("pipeline 'restac' normalises action_prev with a policy's action "
                             "stats; an encoder-inputs-only builder has none")
        builder = cls.__new__(cls)
        builder.spec = spec
        builder.stats = types.MappingProxyType({})
        builder.tokenizer = None
        builder.inputs_only = True
        builder._last_state_raw = None
        builder.prepared = PreparedImages()
        builder.tactile_stretched = 0
        return builder

    # -- stream side -------------------------------------------------------
    def make_buffers(
        self,
        unstamped_policy: UnstampedPolicy | str = UnstampedPolicy.STAMP_ON_RECEIPT,
        future_tolerance_s: float = 1.0,
        max_stamp_age_s: float | None = None,
    ) -> StreamBuffers:
        """Buffers for every stream of the spec (what a node's callbacks push into); stamps
        outside [receipt - max_stamp_age_s, receipt + future_tolerance_s] are refused."""
        return StreamBuffers(self.spec.stream_specs(), unstamped_policy, future_tolerance_s,
                             max_stamp_age_s)

    def sample_from_buffers(
        self, buffers: StreamBuffers, now_ns: int, prompt: str | None
    ) -> RawSample:
        """Newest message of every stream, if all required ones are fresh at now_ns.

        Buffered values: images as ImageInput, joints as JointSample.
        Optional tactile that is missing or stale is left out (mask False).
        """
        spec = self.spec
        report = buffers.freshness(now_ns)
        tactile = None
        if spec.tactile_stream is not None:
            t_status = report.status(spec.tactile_stream)
            if spec.tactile_required and t_status.missing:
                raise InvalidObservation(
                    ReasonCode.TACTILE_MISSING,
                    f"tactile required but nothing received on {spec.tactile_stream!r}",
                )
            if t_status.fresh:
                tactile = buffers.latest(spec.tactile_stream).value
        if missing := report.missing_required:
            raise InvalidObservation(
                ReasonCode.MISSING_STREAM, f"nothing received yet on {list(missing)}"
            )
        if stale := report.stale_required:
            detail = ", ".join(f"{s.name} age {s.age_s:.3f}s > {s.max_age_s:.3f}s" for s in stale)
            raise InvalidObservation(ReasonCode.STALE_STREAM, detail)
        joints = buffers.latest(spec.joint_stream)
        if spec.joint_velocity_max:
            self._check_consecutive_joints(buffers.history(spec.joint_stream)[-2:])
        prev = self._previous_joints(buffers, joints.stamp_ns)
        images = {slot: buffers.latest(s).value for slot, s in spec.camera_streams.items()}
        return RawSample(
            stamp_ns=int(now_ns),
            images=images,
            joints=joints.value,
            prev_joints=prev.value,
            prompt=prompt,
            tactile=tactile,
        )

    def _check_consecutive_joints(self, last_two: tuple[Stamped, ...]) -> None:
        """The newest joint state may not move faster than joint_velocity_max from the one
        before it (by their buffer stamps)."""
        if len(last_two) < 2:
            return
        older, newer = last_two
        self._check_velocity(
            self.state_vector(newer.value),
            self.state_vector(older.value, "previous joint state"),
            (newer.stamp_ns - older.stamp_ns) / NS_PER_S,
        )

    def _check_velocity(self, newer: np.ndarray, older: np.ndarray, dt_s: float) -> None:
        error = input_checks.joint_velocity_error(
            newer, older, dt_s, self.spec.joint_names, self.spec.joint_velocity_max
        )
        if error is not None:
            raise InvalidObservation(ReasonCode.JOINT_VELOCITY, f"joint state: {error}")

    def _previous_joints(self, buffers: StreamBuffers, t_ns: int) -> Stamped:
        """The joint state stamped nearest to and not after t - action_prev_dt_s."""
        spec = self.spec
        want_ns = t_ns - spec.action_prev_dt_ns
        prev = buffers.at_or_before(spec.joint_stream, want_ns + STAMP_SLACK_NS)
        if prev is None:
            span = (t_ns - buffers.history(spec.joint_stream)[0].stamp_ns) / NS_PER_S
            raise InvalidObservation(
                ReasonCode.NO_PREVIOUS_STATE,
                f"action_prev needs a joint state {spec.action_prev_dt_s:.4f}s before the "
                f"newest; joint history spans {span:.4f}s",
            )
        gap_s = (want_ns - prev.stamp_ns) / NS_PER_S
        if gap_s > spec.joint_max_age_s:
            raise InvalidObservation(
                ReasonCode.NO_PREVIOUS_STATE,
                f"joint stream gap: the state {spec.action_prev_dt_s:.4f}s back is "
                f"{gap_s:.3f}s older still (> joint_max_age_s {spec.joint_max_age_s:.3f}s)",
            )
        return prev

    # -- validation + preprocessing ----------------------------------------
    def state_vector(self, joints: JointSample, what: str = "joint state") -> np.ndarray:
        """Raw positions in spec.joint_names order (float64), validated."""
        names = tuple(joints.names)
        positions = np.asarray(joints.positions, dtype=np.float64).reshape(-1)
        if len(names) != positions.shape[0]:
            raise InvalidObservation(
                ReasonCode.BAD_JOINT_LAYOUT,
                f"{what}: {len(names)} names but {positions.shape[0]} positions",
            )
        if len(set(names)) != len(names):
            raise InvalidObservation(ReasonCode.BAD_JOINT_LAYOUT, f"{what}: duplicate names")
        given = {n: i for i, n in enumerate(names)}
        if missing := [n for n in self.spec.joint_names if n not in given]:
            extra = sorted(set(names) - set(self.spec.joint_names))
            raise InvalidObservation(
                ReasonCode.MISSING_JOINTS, f"{what}: missing {missing}; unexpected {extra}"
            )
        state = positions[[given[n] for n in self.spec.joint_names]]
        if bad := [
            n for n, v in zip(self.spec.joint_names, state, strict=True) if not np.isfinite(v)
        ]:
            raise InvalidObservation(ReasonCode.NONFINITE_JOINTS, f"{what}: NaN/inf in {bad}")
        error = input_checks.joint_limits_error(
            state, self.spec.joint_names, self.spec.joint_position_min,
            self.spec.joint_position_max,
        )
        if error is not None:
            raise InvalidObservation(ReasonCode.JOINT_LIMITS, f"{what}: {error}")
        return state

    def _image(self, image: ImageInput, what: str) -> np.ndarray:
        try:
            return as_rgb(image, self.spec.max_image_pixels)
        except ImageDecodeError as err:
            raise InvalidObservation(ReasonCode.BAD_IMAGE, f"{what}: {err}") from None

    def _convert(self, stream: str, image: ImageInput, what: str) -> np.ndarray:
        """One image message -> model input [1, H, W, 3] in [-1, 1] (cameras letterboxed
        to IMAGE_SIZE, tactile stretched to TACTILE_SIZE)."""
        rgb = self._image(image, what)
        if stream == self.spec.tactile_stream:
            self._check_tactile_size(rgb, what)
            return to_model_range(resize_tactile(rgb))[None]
        if self.spec.pipeline == restac_preset.RESTAC:  # the fork's PIL resize
            return to_model_range(restac_preset.letterbox_pil(rgb, IMAGE_SIZE))[None]
        return to_model_range(letterbox(rgb, IMAGE_SIZE))[None]

    def _check_tactile_size(self, rgb: np.ndarray, what: str) -> None:
        sizes = self.spec.tactile_sizes
        if not sizes or rgb.shape[:2] in sizes:
            return
        allowed = ", ".join(f"{h}x{w}" for h, w in sizes)
        if self.spec.tactile_resize == "stretch":
            self.tactile_stretched += 1  # shown on /diagnostics
            return
        raise InvalidObservation(
            ReasonCode.BAD_IMAGE,
            f"{what}: {rgb.shape[0]}x{rgb.shape[1]} is not an allowed tactile size ({allowed}; "
            f"tactile_resize: stretch would resize it)",
        )

    def prepare_image(self, stream: str, image: ImageInput) -> bool:
        """Convert a just-buffered image now, so the tick's build() finds it ready
        (core/prepared.py). A bad image is left for build() to report; returns whether
        it was stored."""
        try:
            array = self._convert(stream, image, stream)
        except InvalidObservation:
            return False
        self.prepared.put(stream, image, array)
        return True

    def _model_image(self, stream: str, image: ImageInput, what: str) -> np.ndarray:
        ready = self.prepared.get(stream, image)
        return ready if ready is not None else self._convert(stream, image, what)

    def _prompt_tokens(
        self, prompt: str | None, state_n: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.inputs_only:
            return np.zeros((0,), np.int32), np.zeros((0,), bool)
        text = self.spec.default_prompt if prompt is None else prompt
        if text is not None and (error := input_checks.prompt_error(
                text, self.spec.max_prompt_chars)) is not None:
            raise InvalidObservation(ReasonCode.BAD_PROMPT, error)
        if text is None or not text.strip():
            raise InvalidObservation(
                ReasonCode.EMPTY_PROMPT,
                "no prompt received" if text is None else
                f"prompt is empty ({input_checks.prompt_summary(prompt)})",
            )
        tokens, mask = self.tokenizer.tokenize(text, state_n if self.spec.state_in_prompt else None)
        return np.asarray(tokens, dtype=np.int32), np.asarray(mask, dtype=bool)

    def _pad(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros((self.spec.action_dim,), dtype=np.float32)
        out[: x.shape[0]] = x
        return out

    def build(self, sample: RawSample) -> Observation:
        """RawSample -> Observation (batch 1); raises InvalidObservation with a reason code."""
        spec = self.spec
        state = self.state_vector(sample.joints)
        if sample.prev_joints is None:
            raise InvalidObservation(ReasonCode.NO_PREVIOUS_STATE, "no previous joint state")
        prev_state = self.state_vector(sample.prev_joints, "previous joint state")
        if sample.joints.stamp_ns > 0 and sample.prev_joints.stamp_ns > 0:
            self._check_velocity(
                state, prev_state,
                (sample.joints.stamp_ns - sample.prev_joints.stamp_ns) / NS_PER_S,
            )
        action_prev = state - prev_state  # raw units, not normalised (the Prophet's input)
        if self.inputs_only:
            state_n = np.zeros_like(state)
        elif spec.pipeline == restac_preset.RESTAC:  # the fork: see core/restac_preset.py
            state_n = restac_preset.normalize_state(state, self.stats["state"], spec.action_dim,
                                                    spec.use_quantile_norm)
            action_prev = restac_preset.normalize_action_prev(
                action_prev, self.stats["actions"], spec.use_quantile_norm)
        else:
            state_n = norm.normalize(
                state, self.stats["state"], use_quantiles=spec.use_quantile_norm
            )
        tokens, token_mask = self._prompt_tokens(sample.prompt, state_n)

        images, masks = {}, {}
        for slot in IMAGE_KEYS:
            stream = spec.camera_streams.get(slot)
            if stream is None:
                images[slot] = np.full((1, *IMAGE_SIZE, 3), -1.0, dtype=np.float32)
                masks[slot] = np.zeros((1,), dtype=bool)
                continue
            if slot not in sample.images or sample.images[slot] is None:
                raise InvalidObservation(ReasonCode.MISSING_STREAM, f"no image for slot {slot!r}")
            images[slot] = self._model_image(stream, sample.images[slot],
                                             f"camera {slot!r} ({stream})")
            masks[slot] = np.ones((1,), dtype=bool)

        if sample.tactile is not None:
            tactile = self._model_image(spec.tactile_stream, sample.tactile,
                                        f"tactile ({spec.tactile_stream})")
            tactile_mask = np.ones((1,), dtype=bool)
        elif spec.tactile_required:
            raise InvalidObservation(ReasonCode.TACTILE_MISSING, "tactile required but absent")
        else:
            tactile = np.full((1, *TACTILE_SIZE, 3), -1.0, dtype=np.float32)
            tactile_mask = np.zeros((1,), dtype=bool)

        self._last_state_raw = state
        return Observation(
            images=images,
            image_masks=masks,
            state=self._pad(state_n)[None],
            tokenized_prompt=tokens[None],
            tokenized_prompt_mask=token_mask[None],
            tactile_image=tactile,
            tactile_mask=tactile_mask,
            action_prev=self._pad(action_prev)[None],
        )

    @property
    def delta_mask(self) -> np.ndarray:
        """bool [robot_dim]: dims the model predicts relative to the current raw state."""
        mask = np.zeros((self.spec.robot_dim,), bool)
        mask[: len(self.spec.delta_action_mask)] = self.spec.delta_action_mask
        return mask

    def _state_for_actions(self, state_raw: np.ndarray | None) -> np.ndarray:
        if state_raw is None:
            state_raw = self._last_state_raw
            if state_raw is None:
                raise InvalidActions("delta actions need the observation's raw state")
        state = np.asarray(state_raw, np.float64).reshape(-1)
        if state.shape[0] < self.spec.robot_dim:
            raise InvalidActions(f"raw state has {state.shape[0]} dims, "
                                 f"need {self.spec.robot_dim}")
        return np.where(self.delta_mask, state[: self.spec.robot_dim], 0.0)

    def relative_actions(self, actions_raw: np.ndarray, state_raw: np.ndarray) -> np.ndarray:
        """Robot-unit actions [H, robot_dim] -> the model's (un-normalised) action space."""
        return np.asarray(actions_raw, np.float64) - self._state_for_actions(state_raw)

    def action_targets(self, actions_raw: np.ndarray, state_raw: np.ndarray) -> np.ndarray:
        """Training targets: robot-unit actions [H, robot_dim] -> float32 [H, action_dim]
        (relative for the delta dims, normalised, padded): the inverse of postprocess."""
        rel = norm.normalize(self.relative_actions(actions_raw, state_raw),
                             self.stats["actions"], use_quantiles=self.spec.use_quantile_norm)
        out = np.zeros((rel.shape[0], self.spec.action_dim), np.float32)
        out[:, : rel.shape[1]] = rel
        return out

    def postprocess_actions(
        self, actions_norm: np.ndarray, state_raw: np.ndarray | None = None
    ) -> np.ndarray:
        """Model actions [H, action_dim] (normalised, padded) -> float32 [H, robot_dim].

        state_raw: the raw state [state_dim] of the observation the actions were
        predicted from (`state_vector(sample.joints)`), added back on the delta dims.
        None: the raw state of this builder's latest build() (for callers that
        postprocess right after building, one observation at a time).
        """
        if self.inputs_only:
            raise InvalidActions("an encoder_inputs_only builder has no action stats")
        actions = np.asarray(actions_norm)
        if actions.ndim != 2 or actions.shape[1] != self.spec.action_dim:
            raise InvalidActions(
                f"expected actions [H, {self.spec.action_dim}], got shape {actions.shape}"
            )
        if not np.all(np.isfinite(actions)):
            raise InvalidActions("model actions contain NaN/inf")
        robot = actions[:, : self.spec.robot_dim].astype(np.float64)
        out = norm.unnormalize(
            robot, self.stats["actions"], use_quantiles=self.spec.use_quantile_norm
        )
        if self.spec.delta_action_mask and any(self.spec.delta_action_mask):
            out = out + self._state_for_actions(state_raw)
        return np.asarray(out, dtype=np.float32)


def joint_sample(
    names: Sequence[str], positions: Sequence[float], stamp_ns: int = 0
) -> JointSample:
    """Convenience constructor (copies positions to float64)."""
    return JointSample(tuple(names), np.array(positions, dtype=np.float64), int(stamp_ns))
