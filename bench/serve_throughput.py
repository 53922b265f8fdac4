#!/usr/bin/env python3
"""restac-serve throughput and latency for 1, 2, 4, 8 concurrent openpi clients vs
in-process calls, one run, one table.

    python bench/serve_throughput.py [--checkpoint CKPT] [--requests 30] [--max-batch 8]

in-process: one loop of the local node's path (core builder -> RestacPolicy.infer ->
postprocess), one call at a time, so N robots sharing one in-process model would queue.
served: N threads, each a real `openpi_client.WebsocketClientPolicy` on loopback, each
sending `--requests` observations back to back (a robot at full speed); the server
batches concurrent requests into one compiled call. Latency is measured at the client
(send -> reply decoded); throughput is all replies over the wall time of the round.
Default checkpoint: the demo policy (`make demo-policy`), else a tiny random one.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from restac_ros.eval import params as eval_params
from restac_ros.serve.batcher import Batcher
from restac_ros.serve.cli import build_engine
from restac_ros.serve.requests import parse_request
from restac_ros.serve.server import PolicyServer, ServerOptions, ServerThread

warnings.filterwarnings("ignore", "connect\\(\\) must be used", DeprecationWarning)


def observation(p: dict, k: int) -> dict:
    rng = np.random.default_rng(k)
    obs = {f"observation/images/{slot}": rng.integers(0, 256, (224, 224, 3), np.uint8)
           for slot in p["camera_slots"]}
    obs["observation/tactile_image"] = rng.integers(0, 256, (240, 320, 3), np.uint8)
    n = len(p["joint_names"])
    obs["observation/state"] = rng.uniform(-1, 1, n).astype(np.float32)
    obs["action_prev"] = rng.uniform(-0.01, 0.01, n).astype(np.float32)
    obs["prompt"] = "pick up the cube"
    obs["seed"] = k
    return obs


def stats(latencies_ms: list[float], wall_s: float) -> tuple[float, float, float]:
    lat = np.asarray(latencies_ms)
    return len(lat) / wall_s, float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def in_process(engine, p: dict, n: int) -> tuple[float, float, float]:
    spec = engine.builder.spec
    requests = [parse_request(observation(p, k), spec) for k in range(n)]
    lat = []
    t0 = time.perf_counter()
    for k, req in enumerate(requests):
        t = time.perf_counter()
        r = engine.policy.infer(engine.builder.build(req.sample), k)
        engine.builder.postprocess_actions(r.actions_norm[0], req.state)
        lat.append((time.perf_counter() - t) * 1e3)
    return stats(lat, time.perf_counter() - t0)


def served(port: int, p: dict, clients: int, n: int) -> tuple[float, float, float]:
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    conns = [WebsocketClientPolicy("127.0.0.1", port) for _ in range(clients)]
    lat: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def robot(c: int) -> None:
        obs = [observation(p, 1000 * c + k) for k in range(n)]
        barrier.wait()
        for o in obs:
            t = time.perf_counter()
            conns[c].infer(o)
            with lock:
                lat.append((time.perf_counter() - t) * 1e3)

    threads = [threading.Thread(target=robot, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return stats(lat, time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--requests", type=int, default=30, help="per client")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    args = ap.parse_args()
    p = eval_params.load_params()
    ckpt = args.checkpoint or Path(p["checkpoint_dir"])
    if not (ckpt / "restac_config.json").is_file():
        from test.nodes.checkpoints import make_tiny_checkpoint

        ckpt = make_tiny_checkpoint(Path(tempfile.mkdtemp()) / "ckpt")
    engine = build_engine(p, ckpt, max_batch=args.max_batch)
    warm = engine.warmup()
    batcher = Batcher(engine.run, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    spec = engine.builder.spec
    server = ServerThread(PolicyServer(batcher.submit, lambda o: parse_request(o, spec),
                                       engine.metadata(), ServerOptions(port=0))).start()
    rows = [("in-process", 1, *in_process(engine, p, args.requests), 1.0)]
    for clients in (1, 2, 4, 8):
        b0, j0 = batcher.batches, batcher.jobs
        rows.append(("restac-serve", clients, *served(server.port, p, clients, args.requests),
                     (batcher.jobs - j0) / max(1, batcher.batches - b0)))
    server.stop()
    batcher.stop()
    print(f"\n{engine.describe}; warm-up (all batch sizes) {warm:.1f} s; max_batch "
          f"{args.max_batch}, max_wait {args.max_wait_ms:g} ms; {args.requests} requests per "
          f"client; {os.cpu_count()} CPUs {platform.machine()}, load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| mode | clients | throughput req/s | p50 ms | p99 ms | mean batch |")
    print("|---|---|---|---|---|---|")
    for mode, clients, thr, p50, p99, batch in rows:
        print(f"| {mode} | {clients} | {thr:.1f} | {p50:.1f} | {p99:.1f} | {batch:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
