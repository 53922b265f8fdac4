"""restac-serve as a Ray Serve application: a local Ray runtime, two CPU replicas, the real
openpi client through the ingress; requests spread over both replicas."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from openpi_client.websocket_client_policy import WebsocketClientPolicy

from test.serve.conftest import OPENPI_CONNECT_WARNING, robot_observation
from test.serve.test_openpi_client import in_process

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

pytestmark = pytest.mark.filterwarnings(OPENPI_CONNECT_WARNING,
                                        "ignore::DeprecationWarning", "ignore::FutureWarning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_client(port: int, timeout_s: float = 240.0) -> WebsocketClientPolicy:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return WebsocketClientPolicy("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_two_replicas_share_the_requests_behind_one_openpi_ingress(serve_checkpoint, engine):
    from restac_ros.serve.ray_app import build_app

    port = _free_port()
    t0 = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(serve_checkpoint, replicas=2, max_batch=2, max_wait_ms=2.0,
                            cpus_per_replica=1.0), name="restac", route_prefix="/")
        start_s = time.monotonic() - t0
        clients = [_wait_client(port) for _ in range(4)]
        meta = clients[0].get_server_metadata()
        assert meta["server"] == "restac-serve" and meta["deployment"] == "ray-serve"
        replies: dict[tuple[int, int], dict] = {}

        def robot(k: int) -> None:
            for r in range(6):
                replies[k, r] = clients[k].infer({**robot_observation(r), "seed": 40 + r})

        threads = [threading.Thread(target=robot, args=(k,)) for k in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        assert len(replies) == 24
        used = {reply["replica"] for reply in replies.values()}
        assert len(used) == 2, f"requests went to {used}"
        for (_, r), reply in replies.items():  # the in-process chunk, whichever replica
            want, _ = in_process(engine, robot_observation(r), 40 + r)
            np.testing.assert_allclose(reply["actions"], want, atol=1e-5, rtol=0)
        # bad requests are refused with the same error frame as restac-serve's own server
        with pytest.raises(RuntimeError, match=r"\(missing_keys\)"):
            clients[0].infer({"prompt": "x"})
        print(f"ray start + 2 replicas ready in {start_s:.1f} s")
    finally:
        serve.shutdown()
        ray.shutdown()
