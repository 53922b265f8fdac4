"""A bounded-time openpi-protocol client: the policy_node remote backend's connection.

Unlike `openpi_client.WebsocketClientPolicy` (which waits for the server forever),
every call here returns or raises within `timeout_s`:

- connect: refused / timed out -> `RemoteUnavailable`; further attempts wait out an
  exponential backoff (0.1 s doubling to `max_backoff_s`), failing at once meanwhile.
- reply later than `timeout_s` -> `RemoteTimeout`; the connection is dropped, so the
  late reply can never be taken for the next request's.
- error text frame, connection lost mid-request, a reply that is not the answer to
  this request (request_id) -> `RemoteFailed`; the connection is dropped.
The next call reconnects by itself. Every outcome is counted (`counters`).
"""

from __future__ import annotations

import collections
import itertools
import threading
import time

import websockets
import websockets.sync.client as ws_client

from restac_ros.serve.protocol import WireError, WireLimits, pack, unpack
from restac_ros.serve.session import API_KEY_HEADER

FIRST_BACKOFF_S = 0.1
REPLY_LIMITS = WireLimits(max_frame_bytes=4 * 1024 * 1024, max_array_bytes=1024 * 1024,
                          max_container_len=256)


class RemoteError(RuntimeError):
    """Base of the reasons a remote call produced no reply; `kind` is a counter key."""

    kind = "remote_error"


class RemoteUnavailable(RemoteError):
    kind = "remote_unavailable"


class RemoteTimeout(RemoteError):
    kind = "remote_timeout"


class RemoteFailed(RemoteError):
    kind = "remote_failed"


class RemoteClient:
    def __init__(self, host: str, port: int, *, api_key: str = "", timeout_s: float = 1.0,
                 max_backoff_s: float = 2.0, connect_timeout_s: float | None = None) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.url = f"ws://{host}:{int(port)}"
        self._headers = {API_KEY_HEADER: f"Api-Key {api_key}"} if api_key else None
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s or timeout_s)
        self.max_backoff_s = float(max_backoff_s)
        self._ws: ws_client.ClientConnection | None = None
        self.metadata: dict | None = None
        self._backoff_s = 0.0
        self._next_attempt = 0.0
        self._last_error = ""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # one call at a time
        self.counters: collections.Counter[str] = collections.Counter()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def last_error(self) -> str:
        return self._last_error

    def connect(self) -> dict:
        """Connect now (unless backing off); returns the server's metadata frame."""
        with self._lock:
            return self._ensure_connected()

    def _ensure_connected(self) -> dict:
        if self._ws is not None:
            return self.metadata
        now = time.monotonic()
        if now < self._next_attempt:
            raise RemoteUnavailable(f"{self.url} unreachable ({self._last_error}); retrying in "
                                    f"{self._next_attempt - now:.2f} s")
        try:
            ws = ws_client.connect(self.url, compression=None,
                                   max_size=REPLY_LIMITS.max_frame_bytes,
                                   additional_headers=self._headers, proxy=None,
                                   open_timeout=self.connect_timeout_s, legacy=True,
                                   close_timeout=min(self.timeout_s, 1.0))
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as err:
            self._backoff_s = min(self.max_backoff_s, max(FIRST_BACKOFF_S, 2 * self._backoff_s))
            self._next_attempt = time.monotonic() + self._backoff_s
            self._last_error = f"{type(err).__name__}: {err}"
            self.counters["connect_failed"] += 1
            raise RemoteUnavailable(f"{self.url}: {self._last_error}") from None
        try:
            metadata = unpack(ws.recv(timeout=self.connect_timeout_s), REPLY_LIMITS)
        except (TimeoutError, websockets.ConnectionClosed, WireError) as err:
            ws.close()
            self._last_error = f"no metadata frame: {type(err).__name__}: {err}"
            self.counters["connect_failed"] += 1
            raise RemoteUnavailable(f"{self.url}: {self._last_error}") from None
        if not isinstance(metadata, dict):
            ws.close()
            raise RemoteFailed(f"{self.url}: metadata frame is not a map")
        self._ws, self.metadata, self._backoff_s = ws, metadata, 0.0
        self.counters["connects"] += 1
        return metadata

    def _drop(self, reason: str) -> None:
        self._last_error = reason
        if self._ws is not None:
            self._ws.close()  # bounded by close_timeout
            self._ws = None

    def infer(self, observation: dict) -> dict:
        """One request -> its reply within timeout_s (connect time included) or RemoteError."""
        with self._lock:
            start = time.monotonic()
            self._ensure_connected()
            request_id = next(self._ids)
            self.counters["requests"] += 1
            try:
                self._ws.send(pack({**observation, "request_id": request_id}))
                left = self.timeout_s - (time.monotonic() - start)
                frame = self._ws.recv(timeout=max(left, 1e-3))
            except TimeoutError:
                self.counters["late_replies_dropped"] += 1
                self._drop(f"no reply within {self.timeout_s:g} s")
                raise RemoteTimeout(f"{self.url}: no reply within {self.timeout_s:g} s; "
                                    "connection dropped") from None
            except websockets.ConnectionClosed as err:
                self.counters["connection_lost"] += 1
                self._drop(f"connection lost: {err}")
                raise RemoteFailed(f"{self.url}: connection lost: {err}") from None
            if isinstance(frame, str):
                self.counters["server_errors"] += 1
                self._drop(frame[:300])
                raise RemoteFailed(f"{self.url}: {frame[:500]}")
            try:
                reply = unpack(frame, REPLY_LIMITS)
            except WireError as err:
                self.counters["bad_replies"] += 1
                self._drop(str(err))
                raise RemoteFailed(f"{self.url}: undecodable reply: {err}") from None
            if not isinstance(reply, dict) or reply.get("request_id") != request_id:
                self.counters["bad_replies"] += 1
                self._drop("reply for another request")
                raise RemoteFailed(f"{self.url}: reply is not for request {request_id}")
            self.counters["replies"] += 1
            return reply

    def close(self) -> None:
        with self._lock:
            self._drop("closed")
