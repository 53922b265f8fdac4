"""openpi's websocket wire format: msgpack frames with numpy arrays, decoded under limits.

Arrays travel as maps `{b"__ndarray__": True, b"data": bytes, b"dtype": str, b"shape":
[...]}` and numpy scalars as `{b"__npgeneric__": True, b"data": item, b"dtype": str}`,
the encoding of `openpi_client.msgpack_numpy` (so its Packer and ours are interchangeable).

Decoding never trusts the peer: msgpack's own length limits bound every string, bytes
and container before it is allocated, and each array header (dtype, rank, shape, byte
count) is checked before a numpy view of the bytes is made. Anything else raises
`WireError` with the reason.
"""

from __future__ import annotations

import dataclasses
import math

import msgpack
import numpy as np

# numpy kinds that may cross the wire: bool, signed/unsigned int, float (openpi refuses
# object, void and complex as well; the server has no use for them).
ALLOWED_KINDS = frozenset("biuf")


class WireError(ValueError):
    """A frame that is not valid openpi msgpack-numpy within the limits; says why."""


@dataclasses.dataclass(frozen=True)
class WireLimits:
    """Upper bounds applied while decoding one frame."""

    max_frame_bytes: int = 8 * 1024 * 1024  # one request (4 uint8 images of 640x480 = 3.7 MB)
    max_array_bytes: int = 4 * 1024 * 1024
    max_array_rank: int = 4
    max_str_len: int = 4096  # prompts, keys
    max_container_len: int = 64  # keys per map, items per list

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if int(getattr(self, f.name)) <= 0:
                raise ValueError(f"{f.name} must be > 0")


def _encode(obj):
    if isinstance(obj, np.ndarray | np.generic) and obj.dtype.kind in "VOc":
        raise WireError(f"cannot send dtype {obj.dtype}")
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        return {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": arr.dtype.str,
                b"shape": list(arr.shape)}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def pack(obj) -> bytes:
    """One frame, the way `openpi_client.msgpack_numpy.Packer().pack` writes it."""
    return msgpack.packb(obj, default=_encode)


def _dtype(value, limits: WireLimits) -> np.dtype:
    if not isinstance(value, str) or len(value) > 16:
        raise WireError(f"array dtype must be a short string, got {value!r:.40}")
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise WireError(f"unknown array dtype {value!r}") from None
    if dtype.kind not in ALLOWED_KINDS or dtype.byteorder == ">" or dtype.fields:
        raise WireError(f"array dtype {value!r} is not allowed (little-endian bool/int/float)")
    return dtype


def _array(obj: dict, limits: WireLimits) -> np.ndarray:
    dtype = _dtype(obj.get(b"dtype"), limits)
    shape, data = obj.get(b"shape"), obj.get(b"data")
    if not isinstance(data, bytes):
        raise WireError("array data must be bytes")
    if not isinstance(shape, list | tuple) or len(shape) > limits.max_array_rank:
        raise WireError(f"array shape must be a list of at most {limits.max_array_rank} ints")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise WireError(f"array shape {shape!r:.80} must hold non-negative ints")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > limits.max_array_bytes:
        raise WireError(f"array of {nbytes} bytes exceeds the limit of {limits.max_array_bytes}")
    if nbytes != len(data):
        raise WireError(f"array {dtype.str}{list(shape)} needs {nbytes} bytes, frame has "
                        f"{len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _scalar(obj: dict, limits: WireLimits) -> np.generic:
    dtype = _dtype(obj.get(b"dtype"), limits)
    value = obj.get(b"data")
    if not isinstance(value, bool | int | float):
        raise WireError(f"numpy scalar data must be a number, got {type(value).__name__}")
    try:
        return dtype.type(value)
    except (OverflowError, ValueError):
        raise WireError(f"{value!r} does not fit {dtype.str}") from None


def unpack(frame: bytes, limits: WireLimits = WireLimits()):
    """Decode one frame (bytes) under `limits`; raises WireError."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise WireError(f"expected a binary frame, got {type(frame).__name__}")
    if len(frame) > limits.max_frame_bytes:
        raise WireError(f"frame of {len(frame)} bytes exceeds the limit of "
                        f"{limits.max_frame_bytes}")

    def hook(obj: dict):
        if b"__ndarray__" in obj:
            return _array(obj, limits)
        if b"__npgeneric__" in obj:
            return _scalar(obj, limits)
        return obj

    try:
        return msgpack.unpackb(
            frame, object_hook=hook,
            max_str_len=limits.max_str_len, max_bin_len=limits.max_array_bytes,
            max_array_len=limits.max_container_len, max_map_len=limits.max_container_len,
            max_ext_len=0,
        )
    except WireError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as err:  # everything msgpack raises for bad input
        raise WireError(f"not a msgpack frame: {type(err).__name__}: {err}"[:300]) from None
