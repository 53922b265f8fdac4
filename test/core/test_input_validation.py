"""Fail-closed input checks of the core (issue 13 items 2, 4, 7, 8, 11): joint limits and
velocities, stamp windows and bounded tick bookkeeping, image headers checked before
decoding, corrupt/truncated JPEG and PNG, tactile sizes, prompt length and NUL."""

from __future__ import annotations

import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from restac_ros.core import ticks
from restac_ros.core.buffers import RejectReason, StreamBuffers, StreamSpec
from restac_ros.core.images import (
    ImageDecodeError,
    RawCompressedImage,
    RawImage,
    check_image_input,
    compressed_header,
    decode_compressed,
)
from restac_ros.core.input_checks import prompt_summary
from restac_ros.core.observation import InvalidObservation, ReasonCode, joint_sample
from test.core.bagtools import CAMERAS, JOINT_STATES, JOINTS
from test.core.test_observation import PREV, STATE, _fill, make_builder, make_sample

S = 1_000_000_000
MS = 1_000_000
LIMITS = dict(
    joint_position_min=(-3.0,) * 7 + (0.0,),
    joint_position_max=(3.0,) * 7 + (1.0,),
    joint_velocity_max=(5.0,) * 7 + (2.0,),
)


@pytest.fixture()
def limited(norm_stats_path, spm_model_path):
    return make_builder(norm_stats_path, spm_model_path, **LIMITS)


def _reason(builder, sample) -> InvalidObservation:
    with pytest.raises(InvalidObservation) as info:
        builder.build(sample)
    return info.value


# -- joints (item 2) ---------------------------------------------------------


@pytest.mark.parametrize("value", [10.0, 1e20, -3.5])
def test_joint_outside_its_limits_is_refused(limited, value) -> None:
    q = STATE.copy()
    q[2] = value
    err = _reason(limited, make_sample(joints=joint_sample(JOINTS, q, 5 * S)))
    assert err.reason is ReasonCode.JOINT_LIMITS and "joint3" in err.message
    prev = PREV.copy()
    prev[7] = -0.5  # gripper below 0 in the previous state
    err = _reason(limited, make_sample(prev_joints=joint_sample(JOINTS, prev, 5 * S - S // 15)))
    assert err.reason is ReasonCode.JOINT_LIMITS and "gripper" in err.message


def test_joint_velocity_between_states_is_bounded(limited) -> None:
    q = STATE.copy()
    q[0] = PREV[0] + 1.0  # 1 rad in 1/15 s = 15 rad/s > 5
    err = _reason(limited, make_sample(joints=joint_sample(JOINTS, q, 5 * S)))
    assert err.reason is ReasonCode.JOINT_VELOCITY and "joint1" in err.message
    limited.build(make_sample())  # the normal sample is fine


def test_consecutive_buffered_states_are_checked(limited) -> None:
    buffers = limited.make_buffers()
    _fill(buffers, 5 * S)
    jump = STATE.copy()
    jump[4] += 0.5  # 0.5 rad in 10 ms = 50 rad/s
    buffers.push(JOINT_STATES, 5 * S + 10 * MS, joint_sample(JOINTS, jump), 5 * S + 10 * MS)
    with pytest.raises(InvalidObservation) as info:
        limited.sample_from_buffers(buffers, 5 * S + 20 * MS, "pick up the cube")
    assert info.value.reason is ReasonCode.JOINT_VELOCITY and "joint5" in info.value.message


def test_limit_fields_are_validated(norm_stats_path, spm_model_path) -> None:
    with pytest.raises(ValueError, match="joint_position_min"):
        make_builder(norm_stats_path, spm_model_path, joint_position_min=(0.0,) * 3)
    with pytest.raises(ValueError, match="joint_velocity_max"):
        make_builder(norm_stats_path, spm_model_path, joint_velocity_max=(0.0,) * 8)
    with pytest.raises(ValueError, match="exceeds"):
        make_builder(norm_stats_path, spm_model_path, joint_position_min=(1.0,) * 8,
                     joint_position_max=(0.0,) * 8)


# -- stamps and tick bookkeeping (item 4) --------------------------------------


def test_stamps_outside_the_window_are_refused() -> None:
    b = StreamBuffers([StreamSpec("cam", 0.5)], max_stamp_age_s=5.0, future_tolerance_s=1.0)
    now = 1000 * S
    assert b.push("cam", S, "far past", now) is RejectReason.TOO_OLD
    assert b.push("cam", now + 86400 * S, "a day ahead", now) is RejectReason.FROM_FUTURE
    assert b.screen("cam", S, now) is RejectReason.TOO_OLD
    assert b.screen("cam", now - S, now) is None
    assert b.push("cam", now - S, "ok", now) is None
    c = b.counters()["cam"]
    assert c.rejected == {"too_old": 2, "from_future": 1} and c.accepted == 1


def test_ticker_never_emits_an_unbounded_run_of_ticks() -> None:
    t = ticks.StampTicker(0, 5.0, ("cam", "joints"), max_lag_s=1.0)
    t.offer("cam", 1 * S)  # one far-off stamp first...
    t.offer("joints", 1 * S)
    start = time.perf_counter()
    t.offer("cam", 1_700_000_000 * S)  # ...then the real ones, 54 years later
    t.offer("joints", 1_700_000_000 * S)
    due = t.due()
    # a loop over the 8.5e9 skipped ticks would take minutes; doing none takes microseconds
    assert time.perf_counter() - start < 10.0
    assert len(due) <= ticks.MAX_TICKS_PER_CALL and due[-1] == 1_700_000_000 * S
    assert t.skipped > 8_000_000_000


def test_tick_backlog_is_bounded_by_time_not_only_by_count() -> None:
    t = ticks.StampTicker(0, 5.0, ("cam",), max_lag_s=1.0)
    t.offer("cam", 0)
    t.offer("cam", 30 * S)  # a gap of 30 s: only the last max_lag_s of ticks are kept
    due = t.due()
    assert due[0] >= 29 * S and due[-1] == 30 * S and t.skipped > 0


# -- images (items 7, 8) -------------------------------------------------------


def _jpeg(h: int = 240, w: int = 320) -> bytes:
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (9, 9), 3)
    return cv2.imencode(".jpg", img)[1].tobytes()


def _png(h: int = 48, w: int = 64) -> bytes:
    return cv2.imencode(".png", np.full((h, w, 3), 77, np.uint8))[1].tobytes()


def _png_header_claiming(h: int, w: int) -> bytes:
    """A PNG whose IHDR claims h x w (a few hundred bytes on the wire)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("seed", range(5))
def test_jpeg_with_corrupted_bytes_is_refused(seed: int) -> None:
    data = bytearray(_jpeg())
    rng = np.random.default_rng(seed)
    start = int(rng.integers(700, len(data) - 500))
    data[start:start + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    with pytest.raises(ImageDecodeError, match="corrupt|Corrupt|JPEG"):
        decode_compressed(bytes(data), "jpeg")


def test_jpeg_with_zeroed_bytes_is_refused() -> None:
    data = bytearray(_jpeg())
    data[1000:1400] = bytes(400)  # cv2.imdecode accepts this (libjpeg only warns)
    assert cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(ImageDecodeError):
        decode_compressed(bytes(data), "jpeg")


@pytest.mark.parametrize("make", [_jpeg, _png])
def test_truncated_compressed_images_are_refused(make) -> None:
    data = make()
    fmt = "jpeg" if data[:2] == b"\xff\xd8" else "png"
    for cut in (len(data) // 2, len(data) - 3):
        with pytest.raises(ImageDecodeError):
            decode_compressed(data[:cut], fmt)
    assert decode_compressed(data, fmt).shape[2] == 3


def test_compressed_header_is_read_without_decoding() -> None:
    assert compressed_header(_jpeg(240, 320), "jpeg") == (240, 320)
    assert compressed_header(_png(48, 64), "png") == (48, 64)
    assert compressed_header(_png_header_claiming(12000, 12000), "png") == (12000, 12000)
    with pytest.raises(ImageDecodeError, match="header"):
        compressed_header(b"\x89PNG\r\n\x1a\n", "png")


def test_huge_compressed_image_is_refused_before_decoding() -> None:
    bomb = _png_header_claiming(12000, 12000)
    with pytest.raises(ImageDecodeError, match="144000000 pixels"):
        decode_compressed(bomb, "png", max_pixels=16_000_000)
    with pytest.raises(ImageDecodeError, match="pixels"):
        check_image_input(RawCompressedImage(bomb, "png"), max_pixels=16_000_000)
    # a jpeg whose SOF claims 20000 x 20000
    data = bytearray(_jpeg(16, 16))
    sof = next(i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xC0)
    data[sof + 5:sof + 9] = struct.pack(">HH", 20000, 20000)
    with pytest.raises(ImageDecodeError, match="pixels"):
        decode_compressed(bytes(data), "jpeg", max_pixels=16_000_000)


def test_huge_raw_image_is_refused_by_its_fields() -> None:
    huge = RawImage(b"\x00" * 30, "rgb8", 8000, 8000, 24000)
    with pytest.raises(ImageDecodeError, match="64000000 pixels"):
        check_image_input(huge, max_pixels=16_000_000)
    with pytest.raises(ImageDecodeError, match="pixels"):
        huge.decode(max_pixels=16_000_000)
    for fields, match in [
        (("rgb8", 2, 2, 5), "step 5 < width"),
        (("rgb8", 2, 2, 6), "data size 30 != step\\*height 12"),
        (("rgb8", -1, 2, 6), "empty image"),
        (("rgb8", 2, 2, 2**40), "step"),
    ]:
        with pytest.raises(ImageDecodeError, match=match):
            check_image_input(RawImage(b"\x00" * 30, *fields), max_pixels=16_000_000)
    check_image_input(RawImage(b"\x00" * 12, "rgb8", 2, 2, 6), max_pixels=16_000_000)


def test_tactile_sizes_outside_the_allowed_ones_are_refused(norm_stats_path, spm_model_path):
    b = make_builder(norm_stats_path, spm_model_path, tactile_sizes=((240, 320), (128, 160)))
    b.build(make_sample())
    small = np.full((64, 64, 3), 9, np.uint8)
    err = _reason(b, make_sample(tactile=small))
    assert err.reason is ReasonCode.BAD_IMAGE and "64x64" in err.message
    stretch = make_builder(norm_stats_path, spm_model_path,
                           tactile_sizes=((240, 320),), tactile_resize="stretch")
    assert stretch.build(make_sample(tactile=small)).tactile_image.shape == (1, 128, 160, 3)
    assert stretch.tactile_stretched == 1
    with pytest.raises(ValueError, match="tactile_resize"):
        make_builder(norm_stats_path, spm_model_path, tactile_resize="squash")


def test_builder_refuses_huge_images_by_its_spec(norm_stats_path, spm_model_path) -> None:
    b = make_builder(norm_stats_path, spm_model_path, max_image_pixels=10_000)
    raw = RawImage(b"\x00" * (200 * 200 * 3), "rgb8", 200, 200, 600)
    images = {slot: raw for slot in CAMERAS}
    err = _reason(b, make_sample(images=images))
    assert err.reason is ReasonCode.BAD_IMAGE and "pixels" in err.message


# -- prompt (item 11) ----------------------------------------------------------


def test_prompt_too_long_or_with_nul_is_refused(norm_stats_path, spm_model_path) -> None:
    b = make_builder(norm_stats_path, spm_model_path, max_prompt_chars=100)
    err = _reason(b, make_sample(prompt="x" * 1_000_000))
    assert err.reason is ReasonCode.BAD_PROMPT and "1000000" in err.message
    assert len(err.message) < 300  # never copies the prompt
    err = _reason(b, make_sample(prompt="pick up\x00 the cube"))
    assert err.reason is ReasonCode.BAD_PROMPT and "NUL" in err.message
    b.build(make_sample(prompt="pick up the cube"))


def test_prompt_summary_is_bounded() -> None:
    assert prompt_summary(None) == "<none>"
    assert prompt_summary("pick up the cube") == "'pick up the cube'"
    long = prompt_summary("y" * 1_000_000)
    assert len(long) < 120 and "1000000 chars" in long
    assert "\\x00" in prompt_summary("a\x00b")

