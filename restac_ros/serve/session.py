"""One client's side of the openpi protocol, independent of the websocket library.

Both front ends (restac-serve's own websockets server and the Ray Serve ingress) speak
through it: `open()` is the metadata frame, `job(frame)` turns a binary frame into a
model job (or raises `SessionError`), `reply(result)` packs the answer with openpi's
`server_timing` (`infer_ms`: this request, from decoded to answered; `prev_total_ms`:
the previous request, receive to sent, as openpi's server reports it).

Every error is sent as one text frame (openpi clients raise it as RuntimeError) and
the connection is closed with `close_code`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections.abc import Callable

from restac_ros.serve.engine import Job, RequestFailed
from restac_ros.serve.protocol import WireError, WireLimits, pack, unpack
from restac_ros.serve.requests import BadRequest, ServeRequest

CLOSE_POLICY_VIOLATION = 1008  # the client sent something we refuse
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
API_KEY_HEADER = "Authorization"  # openpi_client: "Authorization: Api-Key <key>"
HEALTH_PATH = "/healthz"


class SessionError(Exception):
    def __init__(self, reason: str, message: str, close_code: int = CLOSE_POLICY_VIOLATION):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.close_code = close_code

    def __reduce__(self):  # crosses process boundaries (Ray) intact
        return type(self), (self.reason, self.message, self.close_code)

    def frame(self) -> str:
        return f"restac-serve error ({self.reason}): {self.message}"


def api_key_ok(expected: str | None, header_value: str | None) -> bool:
    """The request's Authorization header carries `Api-Key <expected>` (or no key is set)."""
    if not expected:
        return True
    return hmac.compare_digest((header_value or "").encode(), f"Api-Key {expected}".encode())


def client_seed(base_seed: int, client: int, index: int) -> int:
    """Noise seed of a client's index-th request that named none: distinct per client,
    reproducible for the same server seed and connection order."""
    digest = hashlib.blake2b(f"{base_seed}:{client}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def decode_job(frame, parse: Callable[[object], ServeRequest], limits: WireLimits,
               fallback_seed: int) -> Job:
    """A client's frame -> model job; raises SessionError saying what is wrong with it."""
    if isinstance(frame, str):
        raise SessionError("text_frame", "requests are binary msgpack-numpy frames")
    try:
        request = parse(unpack(frame, limits))
    except WireError as err:
        raise SessionError("bad_frame", str(err)) from None
    except BadRequest as err:
        raise SessionError(err.reason, err.message) from None
    return Job(request, fallback_seed if request.seed is None else request.seed)


_clients = itertools.count()


class ClientSession:
    def __init__(self, parse: Callable[[object], ServeRequest], metadata: dict,
                 limits: WireLimits, base_seed: int = 0) -> None:
        self._parse = parse
        self._metadata = metadata
        self._limits = limits
        self._base_seed = int(base_seed)
        self.client = next(_clients)
        self.requests = 0
        self._received: float | None = None
        self._prev_total_ms: float | None = None

    def open(self) -> bytes:
        return pack(self._metadata)

    def received(self) -> int:
        """A frame arrived: starts its timing; returns this client's seed for it (used
        when the request names none)."""
        self._received = time.monotonic()
        seed = client_seed(self._base_seed, self.client, self.requests)
        self.requests += 1
        return seed

    def job(self, frame) -> Job:
        return decode_job(frame, self._parse, self._limits, self.received())

    def reply(self, result: dict | RequestFailed) -> bytes:
        if isinstance(result, RequestFailed):
            raise SessionError(result.reason, result.message)
        now = time.monotonic()
        timing = {"infer_ms": (now - (self._received or now)) * 1e3}
        if self._prev_total_ms is not None:
            timing["prev_total_ms"] = self._prev_total_ms
        frame = pack({**result, "server_timing": timing})
        return frame

    def sent(self) -> None:
        """Call after the reply went out: closes this request's total time."""
        if self._received is not None:
            self._prev_total_ms = (time.monotonic() - self._received) * 1e3
