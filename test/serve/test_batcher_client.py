"""Batcher order/bounds, and the remote backend's bounded-time client against real servers."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from restac_ros.serve import client as client_module
from restac_ros.serve.batcher import Batcher, Overloaded
from restac_ros.serve.client import RemoteClient, RemoteFailed, RemoteTimeout, RemoteUnavailable
from test.serve.conftest import robot_observation


def test_batches_fill_in_arrival_order_up_to_max_batch():
    release = threading.Event()
    seen: list[list[int]] = []

    def run(jobs):
        seen.append(list(jobs))
        if len(seen) == 1:
            release.wait(30)  # hold the worker so the next jobs queue up behind it
        return [j * 10 for j in jobs]

    # Full batches never wait: max_wait only bounds how long a partial batch waits.
    b = Batcher(run, max_batch=3, max_wait_ms=60_000, max_queue=6)
    first = [b.submit(j) for j in range(3)]
    while not seen:  # the worker took jobs 0-2 and is now held inside run()
        threading.Event().wait(0.01)
    futures = [b.submit(j) for j in range(3, 9)]
    with pytest.raises(Overloaded):
        b.submit(9)  # 6 queued = max_queue: refused at once, nothing grows
    release.set()
    assert [f.result(30) for f in first + futures] == [10 * j for j in range(9)]
    assert seen == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]  # FIFO; no job overtakes an older one
    assert b.stop()


def test_a_failing_batch_reports_to_each_of_its_jobs():
    def run(jobs):
        raise RuntimeError("device lost")

    b = Batcher(run, max_batch=2, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="device lost"):
        b.submit(1).result(30)
    assert b.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_backs_off_without_blocking(monkeypatch):
    # a first backoff far longer than the two calls take, however loaded the machine
    monkeypatch.setattr(client_module, "FIRST_BACKOFF_S", 60.0)
    client = RemoteClient("127.0.0.1", _free_port(), timeout_s=5.0, max_backoff_s=120.0)
    obs = robot_observation(0)
    with pytest.raises(RemoteUnavailable, match="ConnectionRefused"):
        client.infer(obs)
    with pytest.raises(RemoteUnavailable, match="retrying in"):
        client.infer(obs)  # inside the backoff: no new attempt
    assert client.counters["connect_failed"] == 1 and not client.connected


def test_late_reply_is_dropped_with_its_connection_then_the_client_recovers(make_server):
    # A real server whose batch waits 5 s for company: a lone request is answered late.
    slow = make_server(max_wait_ms=5_000.0)
    # the reply comes after 5 s; connecting is not what is timed here (bounded separately)
    client = RemoteClient("127.0.0.1", slow.port, timeout_s=0.3, connect_timeout_s=30.0)
    with pytest.raises(RemoteTimeout, match="no reply within 0.3 s"):
        client.infer(robot_observation(0))
    assert client.counters["late_replies_dropped"] == 1 and not client.connected
    fast = make_server(max_wait_ms=0.0)
    client = RemoteClient("127.0.0.1", fast.port, timeout_s=30.0)
    obs = robot_observation(0)
    reply = client.infer({**obs, "seed": 3})
    assert reply["request_id"] == 1 and reply["actions"].shape == (10, 8)
    # a refused request: the server's text frame becomes the error, the next call reconnects
    with pytest.raises(RemoteFailed, match=r"\(bad_vector\)"):
        client.infer({**obs, "observation/state": np.zeros(3)})
    assert not client.connected
    again = client.infer({**obs, "seed": 3})
    np.testing.assert_array_equal(again["actions"], reply["actions"])
    assert client.counters["connects"] == 2 and client.counters["server_errors"] == 1


def test_wrong_api_key_is_unavailable_with_the_reason(make_server):
    server = make_server(api_key="k")
    with pytest.raises(RemoteUnavailable, match="401"):
        RemoteClient("127.0.0.1", server.port, api_key="nope", timeout_s=10).connect()
    meta = RemoteClient("127.0.0.1", server.port, api_key="k", timeout_s=10).connect()
    assert meta["server"] == "restac-serve"


def test_robot_side_builder_accepts_the_restac_pipeline():
    """A remote node configured with `pipeline: restac` validates locally; the fork's
    conventions (action_prev normalised with action stats) apply on the server."""
    import dataclasses

    from restac_ros.core import restac_preset
    from restac_ros.eval import params as eval_params
    from restac_ros.serve.remote import validation_builder

    p = {**eval_params.load_params(), "pipeline": restac_preset.RESTAC}
    spec = eval_params.observation_spec(p, 10, 8, False)
    assert spec.pipeline == restac_preset.RESTAC
    builder = validation_builder(spec)
    assert builder.spec == dataclasses.replace(spec, pipeline=restac_preset.DEFAULT)
    assert builder.state_vector(_joints()).shape == (8,)


def _joints():
    from restac_ros.core.observation import joint_sample
    from test.nodes.checkpoints import JOINTS

    return joint_sample(JOINTS, [0.1] * len(JOINTS))
