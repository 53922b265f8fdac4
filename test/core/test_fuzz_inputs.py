"""Property-based fuzzing (hypothesis, derandomized: the same examples every run) of the
core's validation and the chunk executor (issue 13): random message fields never make an
exception other than the typed refusal escape, an accepted observation is finite and
within the joint limits, and no command is ever non-finite, outside the position limits
or faster than the velocity limit."""

from __future__ import annotations

import cv2
import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from restac_ros.core import messages
from restac_ros.core.executor import Chunk, ChunkExecutor, ExecutorConfig, GuardMode
from restac_ros.core.images import (
    ENCODING_CHANNELS,
    ImageDecodeError,
    RawCompressedImage,
    RawImage,
    check_image_input,
    decode_compressed,
)
from restac_ros.core.observation import InvalidObservation, joint_sample
from test.core.bagtools import CAMERAS, JOINT_STATES, JOINTS, TACTILE
from test.core.test_observation import make_builder

FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=150,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
S = 1_000_000_000
STAMP = st.integers(-(2**31) * S, 2**31 * S + S - 1)  # what sec:int32 + nanosec can say
WILD = st.floats(allow_nan=True, allow_infinity=True)
LIMITS = dict(
    joint_position_min=(-3.0,) * 7 + (0.0,),
    joint_position_max=(3.0,) * 7 + (1.0,),
    joint_velocity_max=(5.0,) * 7 + (2.0,),
    tactile_sizes=((240, 320), (128, 160)),
    max_image_pixels=100_000,
    max_prompt_chars=200,
)
LO = np.array(LIMITS["joint_position_min"])
HI = np.array(LIMITS["joint_position_max"])
_JPEG = cv2.imencode(".jpg", np.full((24, 32, 3), 90, np.uint8))[1].tobytes()
_PNG = cv2.imencode(".png", np.full((24, 32, 3), 90, np.uint8))[1].tobytes()

names = st.lists(st.sampled_from([*JOINTS, "elbow", "", "joint1 "]), min_size=0, max_size=10)


@st.composite
def joint_states(draw):
    n = draw(names)
    k = draw(st.one_of(st.just(len(n)), st.integers(0, 12)))
    sane = st.floats(-3.5, 3.5)
    positions = draw(st.lists(st.one_of(sane, sane, WILD), min_size=k, max_size=k))
    return joint_sample(n, positions)


@st.composite
def raw_images(draw):
    return RawImage(
        draw(st.binary(max_size=64)) if draw(st.booleans()) else bytes(
            draw(st.integers(0, 40)) * draw(st.integers(0, 40)) * 3),
        draw(st.sampled_from([*ENCODING_CHANNELS, "bgr16", "", "RGB8"])),
        draw(st.integers(-5, 10**6)),
        draw(st.integers(-5, 10**6)),
        draw(st.integers(-5, 10**7)),
        draw(st.booleans()),
    )


@st.composite
def compressed_images(draw):
    base = bytearray(draw(st.sampled_from([_JPEG, _PNG, b""])))
    for _ in range(draw(st.integers(0, 4))):  # flip, cut or overwrite bytes
        if not base:
            break
        i = draw(st.integers(0, len(base) - 1))
        op = draw(st.sampled_from(["set", "cut"]))
        if op == "set":
            base[i] = draw(st.integers(0, 255))
        else:
            del base[i:]
    fmt = draw(st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "tiff", ""]))
    return RawCompressedImage(bytes(base), fmt)


images = st.one_of(raw_images(), compressed_images(),
                   st.sampled_from([np.zeros((24, 32, 3), np.uint8),
                                    np.zeros((64, 64, 3), np.uint8),
                                    np.zeros((240, 320, 3), np.uint8)]))
prompts = st.one_of(st.none(), st.text(max_size=300),
                    st.just("pick up\x00 the cube"), st.just("pick up the cube"))


def _good(stream: str):
    if stream == TACTILE:
        return np.full((240, 320, 3), 60, np.uint8)
    return RawImage(bytes(24 * 32 * 3), "rgb8", 24, 32, 96)


@FUZZ
@given(data=st.data())
def test_random_messages_through_buffers_and_builder(norm_stats_path, spm_model_path, data):
    """A valid set of messages, some of them replaced by random ones (random fields,
    random stamps): the builder refuses with a reason or builds a sound observation."""
    builder = make_builder(norm_stats_path, spm_model_path, **LIMITS)
    buffers = builder.make_buffers(max_stamp_age_s=10.0)
    now = data.draw(st.integers(10 * S, 2**31 * S), label="now")
    dt = S // 15
    plan = [(s, now - S // 100) for s in [*CAMERAS.values(), TACTILE]]
    plan += [(JOINT_STATES, now - dt - S // 100), (JOINT_STATES, now - S // 100)]
    for stream, stamp in plan:
        if data.draw(st.integers(0, 3), label=f"mutate {stream}") == 0:
            near = st.integers(now - 2 * S, now + 2 * S)
            stamp = data.draw(st.one_of(near, STAMP, st.just(0), st.just(stamp)))
            value = data.draw(joint_states() if stream == JOINT_STATES else images)
        elif stream == JOINT_STATES:
            value = joint_sample(JOINTS, data.draw(st.lists(
                st.floats(-0.2, 0.2), min_size=8, max_size=8)))
        else:
            value = _good(stream)
        if stream != JOINT_STATES:
            try:  # what the node does before buffering
                check_image_input(value, builder.spec.max_image_pixels)
            except ImageDecodeError:
                event("image refused on arrival")
                continue
            builder.prepare_image(stream, value)
        buffers.push(stream, stamp, value, now)
    try:
        sample = builder.sample_from_buffers(buffers, now, data.draw(prompts))
        obs = builder.build(sample)
    except InvalidObservation as exc:
        event(f"refused: {exc.reason.value}")
        return
    event("observation built")
    for array in (obs.state, obs.action_prev, obs.tactile_image, *obs.images.values()):
        assert np.all(np.isfinite(array))
    state = builder.state_vector(sample.joints)
    assert np.all((state >= LO) & (state <= HI))
    assert obs.tactile_image.shape == (1, 128, 160, 3)


@FUZZ
@given(data=st.binary(max_size=200), fmt=st.sampled_from(["jpeg", "png", "x"]))
def test_random_bytes_never_escape_the_image_decoder(data, fmt):
    try:
        out = decode_compressed(data, fmt, max_pixels=1_000_000)
    except ImageDecodeError:
        return
    assert out.dtype == np.uint8 and out.ndim == 3


@FUZZ
@given(raw=st.one_of(st.binary(max_size=64),
                     st.builds(lambda n, body: b"\x00\x01\x00\x00"
                               + n.to_bytes(4, "little") + body,
                               st.integers(0, 2**32 - 1), st.binary(max_size=40))))
def test_random_cdr_strings_are_refused_or_clean(raw):
    try:
        text = messages.string_from_cdr(raw)
    except ValueError:
        return
    assert "\x00" not in text


DIM = 3
VMAX = np.array([1.0, 2.0, 0.5])
PMIN = np.array([-1.0, -2.0, 0.0])
PMAX = np.array([1.0, 2.0, 1.0])
PERIOD = 0.01


@st.composite
def chunk_fields(draw):
    h = draw(st.integers(0, 30))
    d = draw(st.sampled_from([DIM, DIM, 2, 0]))
    actions = draw(st.lists(st.one_of(st.floats(-5, 5), WILD), min_size=h * d,
                            max_size=h * d))
    return dict(
        t0_ns=draw(st.one_of(STAMP, st.integers(0, 20 * S))),
        dt_s=draw(st.one_of(WILD, st.floats(0.001, 1.0))),
        actions=np.array(actions, dtype=np.float64).reshape(h, d),
        logvar=draw(st.one_of(st.none(), WILD)),
        chunk_id=draw(st.integers(-(2**31), 2**31)),
    )


@FUZZ
@given(ops=st.lists(st.one_of(
    st.tuples(st.just("chunk"), chunk_fields(), st.integers(0, 20 * S)),
    st.tuples(st.just("step"), st.integers(-S, 20 * S)),
    st.tuples(st.just("seed"), st.lists(WILD, min_size=DIM, max_size=DIM)),
    st.tuples(st.just("reset")),
), max_size=60), guard=st.sampled_from([None, GuardMode.HOLD, GuardMode.SLOW]))
def test_executor_commands_stay_finite_and_within_limits(ops, guard):
    config = ExecutorConfig(PERIOD, crossfade_s=0.1, position_min=PMIN, position_max=PMAX,
                            max_velocity=VMAX, logvar_bound=None if guard is None else 0.0,
                            guard_mode=guard or GuardMode.SLOW)
    ex = ChunkExecutor(config, DIM)
    previous = None
    for op in ops:
        if op[0] == "chunk":
            try:
                chunk = Chunk(**op[1])
            except ValueError:
                continue
            ex.add_chunk(chunk, op[2])
        elif op[0] == "seed":
            try:
                ex.seed(np.array(op[1]))
            except ValueError:
                continue
            previous = None  # a seed is a measured state, not a command step
        elif op[0] == "reset":
            ex.reset()
        else:
            cmd = ex.step(op[1])
            if cmd.positions is None:
                continue
            p = cmd.positions
            assert np.all(np.isfinite(p))
            assert np.all(p >= PMIN - 1e-12) and np.all(p <= PMAX + 1e-12)
            if previous is not None:
                assert np.all(np.abs(p - previous) <= VMAX * PERIOD + 1e-9)
            previous = p
