"""Image decode, compressed decode, letterbox geometry, tactile resize, model range."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from restac_ros.core.images import (
    ImageDecodeError,
    RawCompressedImage,
    RawImage,
    as_rgb,
    decode_compressed,
    decode_image,
    letterbox,
    resize_tactile,
    to_model_range,
)


def _rgb(h: int = 4, w: int = 5) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _padded_rows(pixels: np.ndarray, pad: int) -> tuple[bytes, int]:
    h = pixels.shape[0]
    rows = pixels.reshape(h, -1)
    step = rows.shape[1] + pad
    out = np.zeros((h, step), dtype=np.uint8)
    out[:, : rows.shape[1]] = rows
    return out.tobytes(), step


@pytest.mark.parametrize("pad", [0, 3])
def test_rgb8_roundtrip_with_and_without_row_padding(pad: int) -> None:
    img = _rgb()
    data, step = _padded_rows(img, pad)
    out = decode_image(data, "rgb8", 4, 5, step)
    np.testing.assert_array_equal(out, img)
    assert out.dtype == np.uint8 and out.flags["C_CONTIGUOUS"]


def test_bgr8_is_swapped_to_rgb() -> None:
    img = _rgb()
    data, step = _padded_rows(img[..., ::-1].copy(), 2)
    np.testing.assert_array_equal(decode_image(data, "bgr8", 4, 5, step), img)


def test_mono8_becomes_three_equal_channels() -> None:
    grey = _rgb()[..., 0].copy()
    out = decode_image(grey.tobytes(), "mono8", 4, 5, 5)
    assert out.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


@pytest.mark.parametrize("encoding,order", [("rgba8", [0, 1, 2]), ("bgra8", [2, 1, 0])])
def test_four_channel_encodings_drop_alpha(encoding: str, order: list[int]) -> None:
    img = _rgb()
    alpha = np.full((4, 5, 1), 7, np.uint8)
    packed = np.concatenate([img[..., order], alpha], axis=2)
    np.testing.assert_array_equal(decode_image(packed.tobytes(), encoding, 4, 5, 20), img)


def test_decode_accepts_memoryview_and_numpy_and_does_not_alias() -> None:
    img = _rgb()
    buf = bytearray(img.tobytes())
    out = decode_image(memoryview(buf), "rgb8", 4, 5, 15)
    buf[0] = (buf[0] + 1) % 256
    assert out[0, 0, 0] == img[0, 0, 0]
    arr = np.frombuffer(img.tobytes(), np.uint8)
    np.testing.assert_array_equal(decode_image(arr, "rgb8", 4, 5, 15), img)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"encoding": "yuv422"}, "unsupported encoding 'yuv422'"),
        ({"encoding": "16UC1"}, "unsupported encoding"),
        ({"step": 14}, r"step 14 < width\*channels 15"),
        ({"height": 5}, r"data size 60 != step\*height 75"),
        ({"step": 16}, r"data size 60 != step\*height 64"),
        ({"height": 0}, "empty image"),
    ],
)
def test_decode_rejects_bad_metadata(kwargs: dict, match: str) -> None:
    args = {"data": _rgb().tobytes(), "encoding": "rgb8", "height": 4, "width": 5, "step": 15}
    args.update(kwargs)
    with pytest.raises(ImageDecodeError, match=match):
        decode_image(**args)


def test_decode_rejects_truncated_data() -> None:
    with pytest.raises(ImageDecodeError, match="data size 59"):
        decode_image(_rgb().tobytes()[:-1], "rgb8", 4, 5, 15)


@pytest.mark.parametrize("ext,fmt", [(".png", "png"), (".png", "rgb8; png compressed bgr8")])
def test_decode_compressed_png_is_lossless_rgb(ext: str, fmt: str) -> None:
    img = _rgb(16, 12)
    ok, enc = cv2.imencode(ext, img[..., ::-1])
    assert ok
    np.testing.assert_array_equal(decode_compressed(enc.tobytes(), fmt), img)


def test_decode_compressed_jpeg_close_to_source() -> None:
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., 0] = 200  # red
    ok, enc = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = decode_compressed(enc, "jpeg")
    assert out.shape == (32, 32, 3)
    assert abs(int(out[..., 0].mean()) - 200) < 5 and out[..., 2].mean() < 5


@pytest.mark.parametrize(
    "data,fmt,match",
    [
        (b"\x89PNG garbage", "png", "cannot decode"),
        (b"", "jpeg", "empty compressed"),
        (b"abc", "tiff", "unsupported compressed format"),
    ],
)
def test_decode_compressed_errors(data: bytes, fmt: str, match: str) -> None:
    with pytest.raises(ImageDecodeError, match=match):
        decode_compressed(data, fmt)


@pytest.mark.parametrize(
    "shape,inner",
    [
        ((480, 640), (168, 224)),  # wide: pad top/bottom
        ((640, 480), (224, 168)),  # tall: pad left/right
        ((100, 100), (224, 224)),  # upscale, no pad
        ((448, 446), (224, 223)),  # odd padding: the extra column goes right
    ],
)
def test_letterbox_geometry(shape: tuple[int, int], inner: tuple[int, int]) -> None:
    img = np.full((*shape, 3), 255, np.uint8)
    out = letterbox(img, (224, 224))
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    rows = np.flatnonzero(out[..., 0].max(axis=1))
    cols = np.flatnonzero(out[..., 0].max(axis=0))
    assert (len(rows), len(cols)) == inner
    top, left = (224 - inner[0]) // 2, (224 - inner[1]) // 2
    assert rows[0] == top and cols[0] == left
    assert np.all(out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] == 255)


def test_letterbox_same_size_is_identity_copy() -> None:
    img = _rgb(224, 224)
    out = letterbox(img)
    np.testing.assert_array_equal(out, img)
    assert out is not img


def test_letterbox_rejects_non_rgb() -> None:
    with pytest.raises(ImageDecodeError, match=r"expected shape \[H, W, 3\]"):
        letterbox(np.zeros((10, 10), np.uint8))
    with pytest.raises(ImageDecodeError, match="expected a uint8"):
        letterbox(np.zeros((10, 10, 3), np.float32))


def test_resize_tactile_shape_and_content() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    img[:, 160:] = 200  # right half bright
    out = resize_tactile(img)
    assert out.shape == (128, 160, 3) and out.dtype == np.uint8
    assert np.all(out[:, :80] == 0) and np.all(out[:, 80:] == 200)
    same = _rgb(128, 160)
    np.testing.assert_array_equal(resize_tactile(same), same)
    with pytest.raises(ImageDecodeError):
        resize_tactile(np.zeros((240, 320), np.uint8))


def test_to_model_range() -> None:
    out = to_model_range(np.array([[[0, 255, 51]]], np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[[-1.0, 1.0, 51 / 255 * 2 - 1]]], atol=1e-7)
    every = np.arange(256, dtype=np.uint8)
    openpi = every.astype(np.float32) / 255.0 * 2.0 - 1.0  # openpi's formula, float32
    np.testing.assert_array_equal(to_model_range(every), openpi)
    with pytest.raises(ImageDecodeError, match="expected uint8"):
        to_model_range(np.zeros((2, 2, 3), np.float32))


def test_raw_payloads_decode_lazily() -> None:
    img = _rgb()
    np.testing.assert_array_equal(as_rgb(RawImage(img.tobytes(), "rgb8", 4, 5, 15)), img)
    _, enc = cv2.imencode(".png", img[..., ::-1])
    np.testing.assert_array_equal(as_rgb(RawCompressedImage(enc.tobytes(), "png")), img)
    with pytest.raises(ImageDecodeError, match="data size"):
        as_rgb(RawImage(b"\x00" * 3, "rgb8", 4, 5, 15))
