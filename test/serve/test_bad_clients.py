"""Every bad request gets a clear error (text frame, then close) and never disturbs the
other clients: a well-behaved openpi client stays connected and served throughout."""

from __future__ import annotations

import http.client
import socket

import numpy as np
import pytest
import websockets
import websockets.sync.client as ws_client
from openpi_client import msgpack_numpy
from openpi_client.websocket_client_policy import WebsocketClientPolicy

from restac_ros.serve.protocol import WireLimits
from test.serve.conftest import OPENPI_CONNECT_WARNING, robot_observation

pytestmark = pytest.mark.filterwarnings(OPENPI_CONNECT_WARNING)


def _connect(url: str, **kw) -> ws_client.ClientConnection:
    ws = ws_client.connect(url, compression=None, max_size=None, proxy=None, legacy=True, **kw)
    msgpack_numpy.unpackb(ws.recv(timeout=30))  # metadata
    return ws


def _error_then_close(ws) -> tuple[str, int]:
    """The text frame and the close code the server answers a bad request with."""
    text = ws.recv(timeout=30)
    assert isinstance(text, str), f"expected an error text frame, got {type(text).__name__}"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        ws.recv(timeout=30)
    return text, closed.value.rcvd.code


def _packed(**changes) -> bytes:
    obs = robot_observation(1)
    for key, value in changes.items():
        key = key.replace("__", "/")
        if value is None:
            obs.pop(key)
        else:
            obs[key] = value
    return msgpack_numpy.packb(obs)


BAD_REQUESTS = {
    "garbage_bytes": (b"\x00\xff\xc1 not msgpack at all", "bad_frame"),
    "text_frame": ("hello", "text_frame"),
    "wrong_dtype": (_packed(observation__images__base_0_rgb=np.zeros((224, 224, 3), np.float32)),
                    "bad_image"),
    "wrong_shape": (_packed(observation__state=np.zeros(5, np.float32)), "bad_vector"),
    "missing_keys": (_packed(action_prev=None), "missing_keys"),
    "unknown_key": (_packed(**{"observation/extra": np.zeros(2)}), "unknown_keys"),
    "mixed_keys": (_packed(**{"observation/images/main_realsense_rgb":
                              np.zeros((8, 8, 3), np.uint8)}), "mixed_keys"),
    "nan_state": (_packed(observation__state=np.full(8, np.nan, np.float32)),
                  "nonfinite_joints"),
    "no_prompt": (_packed(prompt=None), "empty_prompt"),
    "no_tactile": (_packed(**{"observation/tactile_image": None}), "tactile_missing"),
    "not_a_map": (msgpack_numpy.packb([1, 2, 3]), "not_a_map"),
    "object_array": (msgpack_numpy.packb({"observation/state": {
        b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "|O", b"shape": [1]}}),
        "bad_frame"),
}


def test_every_bad_request_is_answered_and_others_are_not_disturbed(make_server):
    server = make_server()
    good = WebsocketClientPolicy("127.0.0.1", server.port)
    assert good.infer(robot_observation(0))["actions"].shape == (10, 8)
    for name, (frame, reason) in BAD_REQUESTS.items():
        ws = _connect(server.url)
        ws.send(frame)
        text, code = _error_then_close(ws)
        assert f"({reason})" in text, f"{name}: {text}"
        assert code == 1008, name
        # the well-behaved client on its own connection is still served
        assert good.infer(robot_observation(0))["actions"].shape == (10, 8), name
    assert server.server.errors["bad_image"] == 1


def test_oversize_frame_is_refused_from_its_header(make_server):
    server = make_server(limits=WireLimits(max_frame_bytes=200_000))
    good = WebsocketClientPolicy("127.0.0.1", server.port)
    assert good.get_server_metadata()["limits"]["max_frame_bytes"] == 200_000
    ws = _connect(server.url)
    ws.send(b"\0" * 300_000)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        ws.recv(timeout=30)
    assert closed.value.rcvd.code == 1009  # message too big
    assert "exceeds limit" in closed.value.rcvd.reason
    # the 320x240 images of a robot observation exceed 200 kB too: refused the same way
    with pytest.raises(websockets.ConnectionClosed):
        WebsocketClientPolicy("127.0.0.1", server.port).infer(robot_observation(0))
    small = {**robot_observation(0), **{f"observation/images/{s}": np.zeros((32, 32, 3), np.uint8)
                                        for s in ("base_0_rgb", "left_wrist_0_rgb",
                                                  "right_wrist_0_rgb")},
             "observation/tactile_image": np.zeros((32, 40, 3), np.uint8)}
    assert good.infer(small)["actions"].shape == (10, 8)


def test_api_key_is_required_when_set(make_server):
    server = make_server(api_key="s3cret")
    with pytest.raises(websockets.InvalidStatus) as refused:
        _connect(server.url)
    assert refused.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus):
        _connect(server.url, additional_headers={"Authorization": "Api-Key wrong"})
    client = WebsocketClientPolicy("127.0.0.1", server.port, api_key="s3cret")
    assert client.infer(robot_observation(0))["actions"].shape == (10, 8)


def test_healthz_and_default_bind_address(make_server):
    server = make_server()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/healthz")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"OK\n"
    assert server.thread.address == ("127.0.0.1", server.port)  # loopback unless told


def test_slow_loris_clients_are_closed_and_do_not_block_others(make_server):
    server = make_server(open_timeout_s=1.0, idle_timeout_s=1.0, close_timeout_s=1.0)
    # 1. a TCP client that never finishes its HTTP upgrade request
    loris = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    loris.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # ... and nothing more
    # 2. a websocket client that sends half a frame header and stalls
    half = _connect(server.url)
    half.socket.sendall(b"\x82\xfe")  # binary frame, 16-bit length to follow: never sent
    # 3. a connected client that never sends a request
    idle = _connect(server.url)
    good = WebsocketClientPolicy("127.0.0.1", server.port)
    for k in range(3):
        assert good.infer(robot_observation(k))["actions"].shape == (10, 8)
    loris.settimeout(30)
    data = b""
    while chunk := loris.recv(4096):  # the server gives up on the handshake and closes
        data += chunk
    text, code = _error_then_close(idle)
    assert "(idle_timeout)" in text and code == 1008
    text, code = _error_then_close(half)  # its frame never completes: idle as well
    assert "(idle_timeout)" in text and code == 1008
    fresh = WebsocketClientPolicy("127.0.0.1", server.port)  # `good` idled out meanwhile
    assert fresh.infer(robot_observation(5))["actions"].shape == (10, 8)
