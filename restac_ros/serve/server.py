"""restac-serve's websocket front end (asyncio, `websockets`), openpi's protocol.

Safety by construction: binds 127.0.0.1 unless told otherwise; an API key (openpi's
`Authorization: Api-Key <key>` header) is checked before the websocket upgrade; at most
`max_clients` connections; a handshake must finish within `open_timeout_s` and a
connected client that sends nothing for `idle_timeout_s` is closed (slow or stuck
clients cannot pin resources); frames above the byte limit are refused by the
websocket layer from the frame header (close 1009, nothing buffered). Each connection
is its own coroutine and the model runs in the batcher's thread, so a bad or slow
client only ever ends its own connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http
import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future

import websockets
import websockets.asyncio.server as ws_server

from restac_ros.serve.batcher import Overloaded
from restac_ros.serve.engine import Job
from restac_ros.serve.protocol import WireLimits
from restac_ros.serve.requests import ServeRequest
from restac_ros.serve.session import (
    API_KEY_HEADER,
    CLOSE_INTERNAL_ERROR,
    CLOSE_TRY_AGAIN_LATER,
    HEALTH_PATH,
    ClientSession,
    SessionError,
    api_key_ok,
)

log = logging.getLogger("restac_ros.serve")


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8000  # 0: any free port (ServerThread.port tells which)
    api_key: str | None = None
    max_clients: int = 32
    open_timeout_s: float = 10.0
    close_timeout_s: float = 5.0  # how long a closing handshake may take
    idle_timeout_s: float = 3600.0  # long: openpi clients do not reconnect by themselves
    seed: int = 0  # base of the per-client noise seeds of requests that name none
    limits: WireLimits = WireLimits()


class PolicyServer:
    def __init__(self, submit: Callable[[Job], Future], parse: Callable[[object], ServeRequest],
                 metadata: dict, options: ServerOptions = ServerOptions()) -> None:
        self._submit = submit
        self._parse = parse
        self._metadata = dict(metadata, limits=dataclasses.asdict(options.limits))
        self.options = options
        self._active: set = set()
        self.errors: dict[str, int] = {}

    def _process_request(self, connection, request):
        if request.path == HEALTH_PATH:
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        if not api_key_ok(self.options.api_key, request.headers.get(API_KEY_HEADER)):
            self._count("unauthorized")
            return connection.respond(http.HTTPStatus.UNAUTHORIZED,
                                      "missing or wrong API key (Authorization: Api-Key <key>)\n")
        if len(self._active) >= self.options.max_clients:
            self._count("too_many_clients")
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE,
                                      f"{self.options.max_clients} clients already connected\n")
        return None

    def _count(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    async def _fail(self, ws, err: SessionError) -> None:
        self._count(err.reason)
        log.warning("client %s: %s", ws.remote_address, err)
        try:
            await ws.send(err.frame())
            await ws.close(err.close_code, err.reason[:120])
        except websockets.ConnectionClosed:
            pass

    async def _handler(self, ws) -> None:
        self._active.add(ws)
        session = ClientSession(self._parse, self._metadata, self.options.limits,
                                self.options.seed)
        try:
            await ws.send(session.open())
            while True:
                try:
                    frame = await asyncio.wait_for(ws.recv(), self.options.idle_timeout_s)
                except TimeoutError:
                    raise SessionError("idle_timeout", f"no request for "
                                       f"{self.options.idle_timeout_s:g} s") from None
                try:
                    fut = self._submit(session.job(frame))
                except Overloaded as err:
                    raise SessionError("overloaded", str(err), CLOSE_TRY_AGAIN_LATER) from None
                await ws.send(session.reply(await asyncio.wrap_future(fut)))
                session.sent()
        except websockets.ConnectionClosed:
            pass
        except SessionError as err:
            await self._fail(ws, err)
        except Exception:  # a server bug: this client learns the traceback, others go on
            log.exception("client %s: internal error", ws.remote_address)
            await self._fail(ws, SessionError("internal_error", traceback.format_exc(),
                                              CLOSE_INTERNAL_ERROR))
        finally:
            self._active.discard(ws)

    async def serve(self, started: Callable[[tuple[str, int]], None] | None = None,
                    stop: asyncio.Event | None = None) -> None:
        o = self.options
        async with ws_server.serve(
            self._handler, o.host, o.port, compression=None,
            max_size=o.limits.max_frame_bytes, process_request=self._process_request,
            open_timeout=o.open_timeout_s, close_timeout=o.close_timeout_s,
        ) as server:
            if started is not None:
                started(next(iter(server.sockets)).getsockname()[:2])
            if stop is None:
                await server.serve_forever()
            else:
                await stop.wait()


class ServerThread:
    """A PolicyServer on its own event loop thread (tests, bench, embedding)."""

    def __init__(self, server: PolicyServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.port: int | None = None
        self.address: tuple[str, int] | None = None  # the bound (host, port)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="restac-serve", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        def started(address: tuple[str, int]) -> None:
            self.address = address
            self.port = address[1]
            self._ready.set()

        async def main() -> None:
            self._stop = asyncio.Event()
            await self.server.serve(started, self._stop)

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    def start(self, timeout_s: float = 30.0) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            raise RuntimeError(f"restac-serve did not start: {self._error!r}")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)
