"""The real openpi-client against restac-serve on loopback: the same chunks as an
in-process RestacPolicy call with the same seed, for our keys and the fork's."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from openpi_client.websocket_client_policy import WebsocketClientPolicy

from restac_ros.core.observation import JointSample, RawSample
from restac_ros.serve.engine import Job
from restac_ros.serve.requests import parse_request
from test.nodes.checkpoints import JOINTS
from test.serve.conftest import OPENPI_CONNECT_WARNING, robot_observation

pytestmark = pytest.mark.filterwarnings(OPENPI_CONNECT_WARNING)

FORK_SLOTS = {  # the fork's restac_policy.py, pi0/pi0.5 order
    "main_realsense_rgb": "base_0_rgb",
    "handeye_realsense_rgb": "left_wrist_0_rgb",
    "side_realsense_rgb": "right_wrist_0_rgb",
}


def in_process(engine, obs: dict, seed: int) -> tuple[np.ndarray, object]:
    """The chunk RestacPolicy.infer gives for this robot observation, built by hand."""
    images, tactile = {}, None
    for key, value in obs.items():
        if key in ("observation/tactile_image", "observation/images/gelsight_left_rgb"):
            tactile = value
        elif key.startswith("observation/images/"):
            name = key.removeprefix("observation/images/")
            images[FORK_SLOTS.get(name, name)] = value
    state = obs["observation/state"].astype(np.float64)
    sample = RawSample(0, images, JointSample(tuple(JOINTS), state),
                       JointSample(tuple(JOINTS), state - obs["action_prev"]),
                       obs["prompt"], tactile)
    builder = engine.builder
    result = engine.policy.infer(builder.build(sample), seed)
    return builder.postprocess_actions(result.actions_norm[0], state), result.diagnostics


@pytest.mark.parametrize("fork", [False, True], ids=["restac_keys", "fork_keys"])
def test_openpi_client_gets_the_in_process_chunk(engine, make_server, fork):
    server = make_server()
    client = WebsocketClientPolicy("127.0.0.1", server.port)
    meta = client.get_server_metadata()
    assert meta["server"] == "restac-serve" and meta["joint_names"] == JOINTS
    for i, seed in enumerate((0, 12345, 2**32 - 1)):
        obs = robot_observation(i, fork=fork)
        reply = client.infer({**obs, "seed": seed})
        want, diag = in_process(engine, obs, seed)
        np.testing.assert_array_equal(reply["actions"], want)
        assert reply["actions"].shape == (10, len(JOINTS)) and reply["seed"] == seed
        tac = reply["tactile"]
        np.testing.assert_array_equal(tac["vq_codes"], diag.codes[0].reshape(-1))
        np.testing.assert_array_equal(tac["q_event"], diag.q_event[0].reshape(-1))
        assert tac["logvar"] == pytest.approx(float(diag.logvar[0, 0]), abs=0)
        assert tac["gate"] == pytest.approx(float(diag.gate[0, 0]), abs=0)
        assert tac["mode"] == "placeholder" and tac["valid"] is True
        assert reply["server_timing"]["infer_ms"] > 0
        assert reply["policy_timing"]["batch_size"] == 1
        if fork:
            np.testing.assert_array_equal(reply["action"], want)  # the fork's reply key
        if i:
            assert reply["server_timing"]["prev_total_ms"] > 0


def test_requests_without_seed_get_distinct_reproducible_client_seeds(engine, make_server):
    server = make_server()
    a = WebsocketClientPolicy("127.0.0.1", server.port)
    b = WebsocketClientPolicy("127.0.0.1", server.port)
    obs = robot_observation(3)
    ra, rb = a.infer(obs), b.infer(obs)
    assert ra["seed"] != rb["seed"]
    for r in (ra, rb):  # the reported seed reproduces the chunk
        np.testing.assert_array_equal(r["actions"], in_process(engine, obs, r["seed"])[0])


def test_concurrent_clients_are_batched_and_each_gets_its_own_chunk(engine, make_server):
    """4 robots at once: every reply equals its own in-process chunk (batching changes
    nothing but float reassociation). A batch waits up to 10 s to fill to max_batch (4),
    and all 4 robots send each round, so every batch is one compiled call of 4."""
    server = make_server(max_wait_ms=10_000.0)
    clients = [WebsocketClientPolicy("127.0.0.1", server.port) for _ in range(4)]
    rounds = 3
    replies: dict[tuple[int, int], dict] = {}
    barrier = threading.Barrier(len(clients))

    def robot(k: int) -> None:
        for r in range(rounds):
            barrier.wait(timeout=60)
            replies[k, r] = clients[k].infer({**robot_observation(10 * k + r), "seed": 100 + k})

    threads = [threading.Thread(target=robot, args=(k,)) for k in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(replies) == len(clients) * rounds
    for (k, r), reply in replies.items():
        want, _ = in_process(engine, robot_observation(10 * k + r), 100 + k)
        np.testing.assert_allclose(reply["actions"], want, atol=1e-5, rtol=0)
    assert dict(server.batcher.batch_sizes) == {4: rounds}
    assert {r["policy_timing"]["batch_size"] for r in replies.values()} == {4}


def test_a_failing_request_fails_alone_in_its_batch(engine):
    spec = engine.builder.spec
    good = [robot_observation(k) for k in range(3)]
    bad = robot_observation(9)
    bad["observation/state"] = bad["observation/state"].copy()
    bad["observation/state"][2] = np.nan
    jobs = [Job(parse_request(o, spec), 7) for o in (good[0], bad, good[1], good[2])]
    results = engine.run(jobs)
    assert results[1].reason == "nonfinite_joints"
    for obs, res in zip(good, (results[0], results[2], results[3]), strict=True):
        np.testing.assert_allclose(res["actions"], in_process(engine, obs, 7)[0], atol=1e-5)
        assert res["policy_timing"]["batch_size"] == 3
