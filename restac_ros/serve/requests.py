"""An `infer` request (a decoded openpi observation dict) -> the core's `RawSample`.

Two key sets are accepted, one per request (never mixed):

ours (`restac_ros` clients, policy_node's remote backend):
  observation/images/base_0_rgb | left_wrist_0_rgb | right_wrist_0_rgb  uint8 [H, W, 3]
  observation/tactile_image                                            uint8 [H, W, 3]
the ResTacVLA fork's (`restac_policy.py`, `make_restac_example`):
  observation/images/main_realsense_rgb     -> base_0_rgb
  observation/images/handeye_realsense_rgb  -> left_wrist_0_rgb
  observation/images/side_realsense_rgb     -> right_wrist_0_rgb
  observation/images/gelsight_left_rgb      -> the tactile image
  (the fork's pi0/pi0.5 slot order; images may also be [3, H, W] as the fork parses them)
shared:
  observation/state  [state_dim] raw robot state in the server's joint_names order
  action_prev        [state_dim] raw state(t) - state(t - dt)
  prompt             str (optional when the server has a default prompt)
  seed               optional int in [0, 2^32): the flow-matching noise seed
  request_id         optional int, echoed in the reply

Only shapes, dtypes and keys are checked here; everything else (finite joints, image
geometry, prompt, tactile presence) is the core ObservationBuilder's job, the same path
as policy_node and restac-eval: the request becomes a RawSample whose previous joint
state is `state - action_prev`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from restac_ros.core.observation import JointSample, ObservationSpec, RawSample

IMAGE_PREFIX = "observation/images/"
STATE_KEY = "observation/state"
ACTION_PREV_KEY = "action_prev"
PROMPT_KEY = "prompt"
SEED_KEY = "seed"
REQUEST_ID_KEY = "request_id"
OUR_TACTILE_KEY = "observation/tactile_image"
TACTILE = "tactile"  # internal slot name of the tactile image

OURS = "restac"
FORK = "restac_fork"
KEYSETS: dict[str, dict[str, str]] = {
    OURS: {
        IMAGE_PREFIX + "base_0_rgb": "base_0_rgb",
        IMAGE_PREFIX + "left_wrist_0_rgb": "left_wrist_0_rgb",
        IMAGE_PREFIX + "right_wrist_0_rgb": "right_wrist_0_rgb",
        OUR_TACTILE_KEY: TACTILE,
    },
    FORK: {
        IMAGE_PREFIX + "main_realsense_rgb": "base_0_rgb",
        IMAGE_PREFIX + "handeye_realsense_rgb": "left_wrist_0_rgb",
        IMAGE_PREFIX + "side_realsense_rgb": "right_wrist_0_rgb",
        IMAGE_PREFIX + "gelsight_left_rgb": TACTILE,
    },
}
SHARED_KEYS = (STATE_KEY, ACTION_PREV_KEY, PROMPT_KEY, SEED_KEY, REQUEST_ID_KEY)
MAX_IMAGE_SIDE = 4096


class BadRequest(ValueError):
    """A request the server refuses before it reaches the model; `reason` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclasses.dataclass(frozen=True)
class ServeRequest:
    sample: RawSample
    state: np.ndarray  # float64 [state_dim], raw (postprocessing adds it back)
    seed: int | None
    request_id: int | None
    keyset: str  # OURS | FORK


def image_key(keyset: str, slot: str) -> str:
    """The request key of a camera slot (or TACTILE) in a key set."""
    return next(k for k, s in KEYSETS[keyset].items() if s == slot)


def accepted_keys(spec: ObservationSpec, keyset: str) -> list[str]:
    slots = [*spec.camera_streams, *([TACTILE] if spec.tactile_stream else [])]
    return [image_key(keyset, s) for s in slots] + list(SHARED_KEYS)


def _image(key: str, value) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype != np.uint8 or value.ndim != 3:
        got = (f"{value.dtype} {list(value.shape)}" if isinstance(value, np.ndarray)
               else type(value).__name__)
        raise BadRequest("bad_image", f"{key} must be a uint8 array [H, W, 3], got {got}")
    if value.shape[2] != 3 and value.shape[0] == 3:
        value = np.moveaxis(value, 0, -1)  # [3, H, W], as the fork's _parse_image accepts
    h, w, c = value.shape
    if c != 3 or not (0 < h <= MAX_IMAGE_SIDE and 0 < w <= MAX_IMAGE_SIDE):
        raise BadRequest("bad_image", f"{key} must be [H, W, 3] with 0 < H, W <= "
                         f"{MAX_IMAGE_SIDE}, got {list(value.shape)}")
    return np.ascontiguousarray(value)


def _vector(key: str, value, width: int) -> np.ndarray:
    if isinstance(value, list | tuple):
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise BadRequest("bad_vector", f"{key} must hold numbers")
        value = np.asarray(value, dtype=np.float64)
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        raise BadRequest("bad_vector", f"{key} must be a numeric array, got "
                         f"{getattr(value, 'dtype', type(value).__name__)}")
    if value.shape != (width,):
        raise BadRequest("bad_vector", f"{key} must have shape [{width}] (the server's "
                         f"joint_names), got {list(value.shape)}")
    return value.astype(np.float64)


def _optional_int(key: str, value, upper: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, np.integer):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < upper:
        raise BadRequest(f"bad_{key}", f"{key} must be an int in [0, {upper}), got {value!r:.40}")
    return value


def _keyset(keys: set[str]) -> str:
    used = [name for name, table in KEYSETS.items() if keys & table.keys()]
    if len(used) > 1:
        raise BadRequest("mixed_keys", "request mixes restac and ResTacVLA-fork image keys: "
                         f"{sorted(k for k in keys if k.startswith(IMAGE_PREFIX))}")
    return used[0] if used else OURS


def parse_request(obj, spec: ObservationSpec) -> ServeRequest:
    """Decoded frame -> ServeRequest for this server's spec; raises BadRequest."""
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise BadRequest("not_a_map", "the observation must be a map with string keys")
    keyset = _keyset(set(obj))
    table = KEYSETS[keyset]
    accepted = accepted_keys(spec, keyset)
    if unknown := sorted(set(obj) - set(accepted)):
        raise BadRequest("unknown_keys", f"unknown keys {unknown}; this server accepts "
                         f"{accepted}")
    wanted = [image_key(keyset, s) for s in spec.camera_streams] + [STATE_KEY, ACTION_PREV_KEY]
    if missing := [k for k in wanted if k not in obj]:
        raise BadRequest("missing_keys", f"missing keys {missing}")
    images = {table[k]: _image(k, v) for k, v in obj.items() if k in table}
    width = spec.state_dim
    state = _vector(STATE_KEY, obj[STATE_KEY], width)
    action_prev = _vector(ACTION_PREV_KEY, obj[ACTION_PREV_KEY], width)
    prompt = obj.get(PROMPT_KEY)
    if isinstance(prompt, bytes):
        try:
            prompt = prompt.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("bad_prompt", "prompt bytes are not UTF-8") from None
    if prompt is not None and not isinstance(prompt, str):
        raise BadRequest("bad_prompt", f"prompt must be a string, got {type(prompt).__name__}")
    names = spec.joint_names
    sample = RawSample(
        stamp_ns=0,
        images={slot: img for slot, img in images.items() if slot != TACTILE},
        joints=JointSample(names, state),
        prev_joints=JointSample(names, state - action_prev),
        prompt=prompt,
        tactile=images.get(TACTILE),
    )
    return ServeRequest(sample, state, _optional_int(SEED_KEY, obj.get(SEED_KEY), 2**32),
                        _optional_int(REQUEST_ID_KEY, obj.get(REQUEST_ID_KEY), 2**63), keyset)
