"""The wire format: interchangeable with openpi_client.msgpack_numpy, decoded under limits."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from openpi_client import msgpack_numpy as openpi_msgpack

from restac_ros.serve.protocol import WireError, WireLimits, pack, unpack


def _obs():
    return {
        "observation/state": np.linspace(-1, 1, 8).astype(np.float32),
        "observation/images/base_0_rgb": np.arange(48, dtype=np.uint8).reshape(4, 4, 3),
        "prompt": "pick up the cube",
        "seed": np.uint32(7),
        "nested": {"ids": np.array([1, 2], np.int64), "flag": np.bool_(True)},
    }


def _equal(a, b):
    assert type(a) is type(b) or isinstance(a, np.generic)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _equal(a[k], b[k])
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("direction", ["openpi_to_ours", "ours_to_openpi"])
def test_frames_interchange_with_openpi_client(direction):
    obs = _obs()
    if direction == "openpi_to_ours":
        back = unpack(openpi_msgpack.Packer().pack(obs))
    else:
        back = openpi_msgpack.unpackb(pack(obs))
    _equal(obs, back)
    assert isinstance(back["seed"], np.uint32)


def _raw_array(dtype: str, shape, data: bytes) -> bytes:
    return msgpack.packb({"x": {b"__ndarray__": True, b"data": data, b"dtype": dtype,
                                b"shape": shape}})


@pytest.mark.parametrize("frame, says", [
    (_raw_array("|O", [1], b"\0" * 8), "not allowed"),
    (_raw_array("<c16", [1], b"\0" * 16), "not allowed"),
    (_raw_array(">f4", [1], b"\0" * 4), "not allowed"),
    (_raw_array("<f4", [2, 2], b"\0" * 12), "needs 16 bytes"),
    (_raw_array("<f4", [-1], b""), "non-negative"),
    (_raw_array("<f4", [1, 1, 1, 1, 1], b"\0" * 4), "at most 4"),
    (_raw_array("<f4", [1 << 40], b""), "exceeds the limit"),
    (_raw_array("no-such-type", [1], b"\0"), "unknown array dtype"),
    (b"\xc1\xff\x00garbage", "not a msgpack frame"),
    (msgpack.packb([[[[[[[[[[1]]]]]]]]]] * 100), "not a msgpack frame"),  # 100 > 64 items
    (msgpack.packb({"p": "x" * 5000}), "not a msgpack frame"),
])
def test_bad_frames_are_refused_with_the_reason(frame, says):
    with pytest.raises(WireError, match=says):
        unpack(frame)


def test_frame_size_limit_applies_before_decoding():
    limits = WireLimits(max_frame_bytes=1000)
    with pytest.raises(WireError, match="exceeds the limit of 1000"):
        unpack(pack({"a": np.zeros(1000, np.uint8)}), limits)


def test_decoded_arrays_are_read_only_views_of_the_frame():
    arr = unpack(pack({"a": np.ones((2, 3), np.float32)}))["a"]
    assert arr.shape == (2, 3) and not arr.flags.writeable
