"""Image decoding and geometry: the one image preprocessing path of restac_ros.

Everything here works on plain bytes / numpy arrays (no ROS types), so the
policy node, the bag evaluator, the policy trainer and the VQ-VAE trainer all
produce bit-identical model inputs from the same pixels.

Fail closed: an image's size is checked from its fields (raw) or its header
(compressed) against `max_pixels` before anything is copied or decoded; a JPEG is
decoded strictly (libjpeg-turbo via simplejpeg: a decoder warning such as corrupt
entropy data or a premature end is an error, where cv2.imdecode would return grey
blocks); a PNG's chunk structure and CRCs are checked before cv2 decodes it.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import cv2
import numpy as np
import simplejpeg

from restac_ros.model.observation import IMAGE_SIZE, TACTILE_SIZE

# sensor_msgs/Image encodings we decode -> channels per pixel (all 8-bit).
ENCODING_CHANNELS: dict[str, int] = {
    "rgb8": 3,
    "bgr8": 3,
    "mono8": 1,
    "rgba8": 4,
    "bgra8": 4,
}
# sensor_msgs/CompressedImage formats we decode (image_transport writes e.g.
# "rgb8; jpeg compressed bgr8"; plain drivers write "jpeg" or "png").
COMPRESSED_FORMATS: tuple[str, ...] = ("jpeg", "jpg", "png")
DEFAULT_MAX_PIXELS = 4096 * 4096
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageDecodeError(ValueError):
    """Raised when image bytes cannot be turned into an RGB array; says why."""


def _check_pixels(height: int, width: int, max_pixels: int, what: str) -> None:
    if height * width > max_pixels:
        raise ImageDecodeError(
            f"{what} is {height}x{width} = {height * width} pixels (> max {max_pixels})"
        )


def check_raw_fields(
    data_size: int, encoding: str, height: int, width: int, step: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> int:
    """sensor_msgs/Image fields checked before the payload is touched; returns channels."""
    channels = ENCODING_CHANNELS.get(encoding)
    if channels is None:
        raise ImageDecodeError(
            f"unsupported encoding {str(encoding)[:40]!r}; supported: {sorted(ENCODING_CHANNELS)}"
        )
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"empty image: height={height}, width={width}")
    _check_pixels(height, width, max_pixels, "image")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageDecodeError(
            f"step {step} < width*channels {row_bytes} ({width} px x {channels} ch, {encoding})"
        )
    if step > row_bytes + 4096:  # row alignment padding, not another image per row
        raise ImageDecodeError(f"step {step} pads rows of {row_bytes} bytes by > 4096 bytes")
    if data_size != step * height:
        raise ImageDecodeError(
            f"data size {data_size} != step*height {step * height} (step={step}, height={height})"
        )
    return channels


def decode_image(
    data: bytes | bytearray | memoryview | np.ndarray,
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode a sensor_msgs/Image payload into a fresh uint8 [H, W, 3] RGB array.

    `is_bigendian` is accepted for message parity; it has no effect on the
    8-bit encodings supported here. Row padding (step > width * channels) is
    dropped. The result never aliases `data` (ROS may reuse message buffers).
    The fields are checked (check_raw_fields) before any pixel is copied.
    """
    del is_bigendian  # 8-bit encodings have no byte order
    buf = _as_bytes_array(data)
    channels = check_raw_fields(buf.size, encoding, height, width, step, max_pixels)
    row_bytes = width * channels
    pixels = buf.reshape(height, step)[:, :row_bytes].reshape(height, width, channels)
    if encoding == "rgb8":
        return pixels.copy()  # C-contiguous, drops row padding
    if encoding == "bgr8":
        return np.ascontiguousarray(pixels[..., ::-1])
    if encoding == "mono8":
        return np.repeat(pixels, 3, axis=2)
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[..., :3])
    return np.ascontiguousarray(pixels[..., 2::-1])  # bgra8 -> rgb


def _compressed_kind(format: str) -> str:
    """'png' or 'jpeg' from a CompressedImage.format ("jpeg", "rgb8; png compressed bgr8")."""
    fmt = str(format).lower()
    if "png" in fmt:
        return "png"
    if "jpeg" in fmt or "jpg" in fmt:
        return "jpeg"
    raise ImageDecodeError(
        f"unsupported compressed format {str(format)[:40]!r}; supported: jpeg, png"
    )


def _png_chunks(buf: bytes) -> list[tuple[bytes, int, int]]:
    """(type, body start, body length) of every chunk, CRCs checked, ending with IEND."""
    if not buf.startswith(PNG_SIGNATURE):
        raise ImageDecodeError("cannot decode: not a PNG (bad signature)")
    chunks, pos = [], len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(buf):
            raise ImageDecodeError(f"truncated PNG: chunk header at byte {pos} of {len(buf)}")
        length, kind = struct.unpack(">I4s", buf[pos:pos + 8])
        end = pos + 8 + length
        if end + 4 > len(buf):
            raise ImageDecodeError(f"truncated PNG: {kind!r} chunk runs past the data end")
        (crc,) = struct.unpack(">I", buf[end:end + 4])
        if zlib.crc32(buf[pos + 4:end]) & 0xFFFFFFFF != crc:
            raise ImageDecodeError(f"corrupt PNG: CRC mismatch in {kind!r} chunk")
        chunks.append((kind, pos + 8, length))
        pos = end + 4
        if kind == b"IEND":
            return chunks


def _png_size(buf: bytes) -> tuple[int, int]:
    if len(buf) < 24 or not buf.startswith(PNG_SIGNATURE) or buf[12:16] != b"IHDR":
        raise ImageDecodeError("cannot decode: PNG header (IHDR) missing or truncated")
    width, height = struct.unpack(">II", buf[16:24])
    return int(height), int(width)


def compressed_header(data: bytes | bytearray | memoryview | np.ndarray,
                      format: str) -> tuple[int, int]:
    """(height, width) from a JPEG/PNG header, without decoding the pixels."""
    kind = _compressed_kind(format)
    buf = _as_bytes_array(data)
    if buf.size == 0:
        raise ImageDecodeError(f"empty compressed image data (format {str(format)[:40]!r})")
    raw = buf.tobytes() if kind == "png" else buf
    if kind == "png":
        return _png_size(raw[:24])
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(raw)
    except ValueError as exc:
        raise ImageDecodeError(f"cannot decode: JPEG header unreadable ({exc})") from None
    return int(height), int(width)


def decode_compressed(
    data: bytes | bytearray | memoryview | np.ndarray,
    format: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg/png) into uint8 [H, W, 3] RGB.

    The header's size is checked against max_pixels first; JPEG decodes strictly
    (any libjpeg warning: corrupt, truncated), PNG after its chunks and CRCs check out.
    """
    kind = _compressed_kind(format)
    height, width = compressed_header(data, format)
    _check_pixels(height, width, max_pixels, f"{kind} image (header)")
    buf = _as_bytes_array(data)
    if kind == "jpeg":
        try:
            rgb = simplejpeg.decode_jpeg(buf, colorspace="RGB", strict=True)
        except ValueError as exc:
            raise ImageDecodeError(f"corrupt JPEG ({buf.size} bytes): {exc}") from None
    else:
        _png_chunks(buf.tobytes())
        # IMREAD_COLOR gives 3-channel BGR for grey, colour and alpha inputs alike.
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ImageDecodeError(
                f"cannot decode {buf.size} bytes as {str(format)[:40]!r} (corrupt PNG)"
            )
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb.shape[:2] != (height, width):
        raise ImageDecodeError(f"decoded {rgb.shape[:2]} != header {(height, width)}")
    return rgb


def _as_bytes_array(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageDecodeError(f"image data must be uint8 bytes, got dtype {data.dtype}")
        return data.reshape(-1)
    return np.frombuffer(data, dtype=np.uint8)


def _check_rgb_uint8(img: np.ndarray, what: str) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise ImageDecodeError(f"{what}: expected a uint8 numpy array, got {_describe(img)}")
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageDecodeError(f"{what}: expected shape [H, W, 3], got {img.shape}")


def _describe(obj: object) -> str:
    if isinstance(obj, np.ndarray):
        return f"ndarray dtype={obj.dtype} shape={obj.shape}"
    return type(obj).__name__


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    # INTER_AREA when shrinking (anti-aliased, like PIL's bilinear that openpi
    # trains with), INTER_LINEAR when enlarging.
    shrinking = height < img.shape[0] or width < img.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)


def letterbox(img: np.ndarray, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """Aspect-preserving resize into `size` = (H, W), centred, zero (black) padded.

    Geometry follows openpi's `resize_with_pad`: ratio = max(w/W, h/H), the
    resized side lengths are truncated to int, the padding is split with the
    extra pixel at the bottom/right. Black (0) becomes -1 in model range,
    which is what openpi pads with.
    """
    _check_rgb_uint8(img, "letterbox")
    out_h, out_w = size
    cur_h, cur_w = img.shape[:2]
    if (cur_h, cur_w) == (out_h, out_w):
        return img.copy()
    ratio = max(cur_w / out_w, cur_h / out_h)
    new_h = max(1, min(out_h, int(cur_h / ratio)))
    new_w = max(1, min(out_w, int(cur_w / ratio)))
    resized = _resize(img, new_h, new_w)
    top = (out_h - new_h) // 2
    left = (out_w - new_w) // 2
    out = np.zeros((out_h, out_w, 3), dtype=np.uint8)
    out[top : top + new_h, left : left + new_w] = resized
    return out


def resize_tactile(img: np.ndarray) -> np.ndarray:
    """THE tactile preprocessing shared by VQ-VAE training and policy inference.

    uint8 [H, W, 3] RGB (GelSight-style 240x320, or already 128x160) ->
    uint8 [128, 160, 3]. A plain stretch (no letterbox: 240x320 and 128x160
    differ in aspect ratio, and the published VQ-VAE was trained on the
    stretched image) with cv2.INTER_AREA. Anything that feeds the tactile
    encoder must call this function, never its own resize.
    """
    _check_rgb_uint8(img, "resize_tactile")
    out_h, out_w = TACTILE_SIZE
    if img.shape[:2] == (out_h, out_w):
        return img.copy()
    return cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)


def to_model_range(img: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (x / 255 * 2 - 1), same shape."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise ImageDecodeError(f"to_model_range: expected uint8 array, got {_describe(img)}")
    # In place, same float32 operations as openpi's `x / 255.0 * 2.0 - 1.0` (bit-identical).
    out = img.astype(np.float32)
    out /= np.float32(255.0)
    out *= np.float32(2.0)
    out -= np.float32(1.0)
    return out


@dataclasses.dataclass(frozen=True)
class RawImage:
    """A sensor_msgs/Image payload without ROS types; decoded lazily at the tick."""

    data: bytes | bytearray | memoryview | np.ndarray
    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: bool = False

    def decode(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        return decode_image(
            self.data, self.encoding, self.height, self.width, self.step, self.is_bigendian,
            max_pixels,
        )


@dataclasses.dataclass(frozen=True)
class RawCompressedImage:
    """A sensor_msgs/CompressedImage payload without ROS types."""

    data: bytes | bytearray | memoryview | np.ndarray
    format: str

    def decode(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        return decode_compressed(self.data, self.format, max_pixels)


# What a sample may carry per camera: already decoded RGB, or a payload to decode.
ImageInput = np.ndarray | RawImage | RawCompressedImage


def as_rgb(image: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a payload (or validate an already decoded array) -> uint8 [H, W, 3] RGB."""
    if isinstance(image, RawImage | RawCompressedImage):
        return image.decode(max_pixels)
    _check_rgb_uint8(image, "decoded image")
    _check_pixels(image.shape[0], image.shape[1], max_pixels, "decoded image")
    return image


def check_image_input(image: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """The cheap checks of a payload, before it is buffered: raw fields (encoding, size,
    step, data length) or a compressed header's size and format. Decoding comes later."""
    if isinstance(image, RawImage):
        check_raw_fields(_as_bytes_array(image.data).size, image.encoding, image.height,
                         image.width, image.step, max_pixels)
    elif isinstance(image, RawCompressedImage):
        height, width = compressed_header(image.data, image.format)
        _check_pixels(height, width, max_pixels, "compressed image (header)")
    else:
        _check_rgb_uint8(image, "decoded image")
        _check_pixels(image.shape[0], image.shape[1], max_pixels, "decoded image")
