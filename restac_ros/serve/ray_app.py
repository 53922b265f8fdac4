"""restac-serve as a Ray Serve application: replicas on several GPUs / machines behind one
openpi-protocol websocket ingress.

    ray start --head            # or an existing cluster
    python -m restac_ros.serve.ray_app --checkpoint CKPT --replicas 2 --gpus-per-replica 1

`OpenpiIngress` (FastAPI websocket at `/`, `GET /healthz`) speaks exactly what
restac-serve's own server speaks: metadata frame, msgpack-numpy frames, `infer` ->
actions + tactile + `server_timing`/`policy_timing`, errors as a text frame then close
(API key refused before the upgrade: Ray answers 403 rather than 401). It keeps each
client's protocol state (seeds, timings) and forwards every frame to `PolicyReplica`
through a Ray deployment handle, which spreads requests over the replicas (Ray's own
routing: no load balancer of ours). Each replica decodes, validates and batches with
`@serve.batch` into one compiled `PolicyEngine` call (the same engine, builder and
limits as restac-serve) and tags its replies with `replica`.
"""

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path

from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse
from ray import serve
from starlette.websockets import WebSocketDisconnect

from restac_ros.serve.protocol import WireLimits
from restac_ros.serve.session import (
    API_KEY_HEADER,
    HEALTH_PATH,
    ClientSession,
    SessionError,
    api_key_ok,
    decode_job,
)

app = FastAPI()


@serve.deployment
class PolicyReplica:
    def __init__(self, params_path: str | None, checkpoint: str, max_batch: int,
                 max_wait_ms: float, limits: WireLimits) -> None:
        from restac_ros.eval import params as eval_params
        from restac_ros.serve.cli import build_engine
        from restac_ros.serve.requests import parse_request

        p = eval_params.load_params(params_path)
        self.engine = build_engine(p, Path(checkpoint), max_batch=max_batch)
        self.engine.warmup()
        spec = self.engine.builder.spec
        self._parse = lambda obj: parse_request(obj, spec)
        self._limits = limits
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.infer.set_max_batch_size(max_batch)
        self.infer.set_batch_wait_timeout_s(max_wait_ms / 1e3)

    def metadata(self) -> dict:
        return self.engine.metadata()

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def infer(self, items: list[tuple[bytes, int]]) -> list:
        """(frame, the client's fallback seed) per request -> reply dict or the error."""
        out: list = [None] * len(items)
        jobs, where = [], []
        for i, (frame, seed) in enumerate(items):
            try:
                jobs.append(decode_job(frame, self._parse, self._limits, seed))
                where.append(i)
            except SessionError as err:
                out[i] = err
        if jobs:  # the model call runs off the replica's event loop
            for i, result in zip(where, await asyncio.to_thread(self.engine.run, jobs),
                                 strict=True):
                out[i] = {**result, "replica": self.replica} if isinstance(result, dict) \
                    else result
        return out


@serve.deployment
@serve.ingress(app)
class OpenpiIngress:
    def __init__(self, model, api_key: str | None, base_seed: int, limits: WireLimits,
                 idle_timeout_s: float = 3600.0) -> None:
        self._model = model
        self._api_key = api_key
        self._seed = int(base_seed)
        self._limits = limits
        self._idle_timeout_s = float(idle_timeout_s)
        self._metadata: dict | None = None

    @app.get(HEALTH_PATH)
    def healthz(self) -> PlainTextResponse:
        return PlainTextResponse("OK\n")

    @app.websocket("/")
    async def policy(self, websocket: WebSocket) -> None:
        if not api_key_ok(self._api_key, websocket.headers.get(API_KEY_HEADER)):
            await websocket.close(code=1008)  # before accept(): the client sees HTTP 403
            return
        if self._metadata is None:
            meta = await self._model.metadata.remote()
            self._metadata = dict(meta, limits=dataclasses.asdict(self._limits),
                                  deployment="ray-serve")
        await websocket.accept()
        session = ClientSession(None, self._metadata, self._limits, self._seed)
        await websocket.send_bytes(session.open())
        try:
            while True:
                try:
                    message = await asyncio.wait_for(websocket.receive(), self._idle_timeout_s)
                except TimeoutError:
                    raise SessionError("idle_timeout", f"no request for "
                                       f"{self._idle_timeout_s:g} s") from None
                if message["type"] == "websocket.disconnect":
                    return
                frame = message.get("bytes")
                if frame is None:
                    frame = message.get("text", "")
                seed = session.received()
                if isinstance(frame, str):
                    raise SessionError("text_frame", "requests are binary msgpack-numpy frames")
                if len(frame) > self._limits.max_frame_bytes:
                    raise SessionError("frame_too_big", f"frame of {len(frame)} bytes exceeds "
                                       f"the limit of {self._limits.max_frame_bytes}")
                result = await self._model.infer.remote((frame, seed))
                if isinstance(result, SessionError):
                    raise result
                await websocket.send_bytes(session.reply(result))
                session.sent()
        except SessionError as err:
            await websocket.send_text(err.frame())
            await websocket.close(code=err.close_code, reason=err.reason[:120])
        except WebSocketDisconnect:
            return


def build_app(checkpoint, params_path=None, *, replicas: int = 2, max_batch: int = 8,
              max_wait_ms: float = 5.0, cpus_per_replica: float = 1.0,
              gpus_per_replica: float = 0.0, api_key: str | None = None, seed: int = 0,
              limits: WireLimits | None = None):
    """The bound application: `serve.run(build_app(...), route_prefix="/")`."""
    limits = limits or WireLimits()
    model = PolicyReplica.options(
        num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica},
    ).bind(None if params_path is None else str(params_path), str(checkpoint), max_batch,
           max_wait_ms, limits)
    return OpenpiIngress.options(ray_actor_options={"num_cpus": 0}).bind(
        model, api_key, seed, limits)


def main(argv: list[str] | None = None) -> int:
    import os

    import ray

    from restac_ros.serve.cli import API_KEY_ENV

    ap = argparse.ArgumentParser(prog="python -m restac_ros.serve.ray_app",
                                 description="restac-serve as a Ray Serve application")
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--gpus-per-replica", type=float, default=0.0)
    ap.add_argument("--cpus-per-replica", type=float, default=1.0)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--api-key-env", default=API_KEY_ENV)
    args = ap.parse_args(argv)
    ray.init(address="auto" if os.environ.get("RAY_ADDRESS") else None)
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(build_app(args.checkpoint.absolute(), args.params, replicas=args.replicas,
                        max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                        cpus_per_replica=args.cpus_per_replica,
                        gpus_per_replica=args.gpus_per_replica,
                        api_key=os.environ.get(args.api_key_env) or None),
              name="restac", route_prefix="/", blocking=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
