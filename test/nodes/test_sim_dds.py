"""The closed loop over DDS (sim_node -> policy_node -> chunk_executor -> sim_node, the
real nodes in a `restac-bringup --launch sim` child process, episodes started on
/sim/reset) gives the same episodes as the in-process closed loop for the same seeds.

Two episodes in one pipeline, so the second also checks the reset: a re-randomised world
and nothing of the first episode playing (any leftover would change its chunks). Every
wait is on a condition with a generous bound (lockstep: the run cannot depend on timing).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from restac_ros.eval import params as eval_params
from restac_ros.nodes.sim_episodes import DdsEpisodes, DdsSpec
from restac_ros.sim.closed_loop import ClosedLoopConfig, ClosedLoopRunner, load_executor_params
from restac_ros.sim.world import HOME_Q
from test.ros_helpers import require_loopback

SECONDS = 1.0
SEEDS = (3, 4)
ATOL = 1e-5  # test/eval/test_live_parity.py's tolerance (float32 on the wire)


@pytest.fixture(scope="module")
def dds_episodes(tiny_checkpoint, tmp_path_factory):
    require_loopback()
    spec = DdsSpec(checkpoint=str(tiny_checkpoint), seconds=SECONDS)
    with DdsEpisodes(spec, tmp_path_factory.mktemp("dds")) as episodes:
        return [episodes.run(seed) for seed in SEEDS]


@pytest.fixture(scope="module")
def runner(tiny_checkpoint) -> ClosedLoopRunner:
    from restac_ros.model.policy import RestacPolicy

    p = eval_params.load_params()
    policy = RestacPolicy.from_checkpoint(tiny_checkpoint, num_steps=int(p["num_steps"]))
    return ClosedLoopRunner(policy, ClosedLoopConfig(p, load_executor_params(),
                                                     seconds=SECONDS))


def _in_process(runner: ClosedLoopRunner, seed: int, bag):
    """The in-process episode and its chunks (stamp, actions) from its MCAP."""
    from rosbags.rosbag2 import Reader

    from restac_ros.eval.prediction_bag import make_typestore

    result = runner.run_episode(seed, "on", mcap_path=bag, mcap_images=False)
    store, chunks = make_typestore(), []
    with Reader(result.mcap) as reader:
        for conn, _, raw in reader.messages():
            if conn.topic == "/restac/action_chunk":
                msg = store.deserialize_cdr(raw, conn.msgtype)
                stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                chunks.append((stamp, np.asarray(msg.actions).reshape(msg.horizon, -1)))
    return result, chunks


@pytest.mark.parametrize("index", range(len(SEEDS)))
def test_dds_episode_matches_the_in_process_closed_loop(dds_episodes, runner, tmp_path, index):
    seed = SEEDS[index]
    dds, dds_chunks = dds_episodes[index]
    mine, my_chunks = _in_process(runner, seed, tmp_path / "bag")
    # lockstep held: no wait timed out, no chunk the sim did not wait for
    assert dds["lockstep_timeouts"] == 0 and dds["ungated_verdicts"] == 0
    # the same ticks answered with the same chunks (ticks 0, 1: no previous state)
    assert [c.stamp_ns for c in dds_chunks] == [s for s, _ in my_chunks]
    assert len(my_chunks) == 14 and mine.invalid_ticks == {"no_previous_state": 2}
    for c, (_, actions) in zip(dds_chunks, my_chunks, strict=True):
        np.testing.assert_allclose(c.actions, actions, rtol=0, atol=ATOL)
    dds_valid = [t for t in dds["ticks"] if t["invalid"] is None]
    my_valid = [t for t in mine.ticks if t.invalid is None]
    assert len(dds["ticks"]) == len(mine.ticks) == 16
    for a, b in zip(dds_valid, my_valid, strict=True):
        assert a["t_s"] == pytest.approx(b.t_s, abs=1e-9)
        assert a["logvar"] == pytest.approx(b.logvar, abs=ATOL)
        assert a["gate"] == pytest.approx(b.gate, abs=ATOL)
        assert (a["in_contact"], a["slipping"]) == (b.in_contact, b.slipping)
    # the same outcome
    np.testing.assert_allclose(dds["final_joints"], mine.final_joints, rtol=0, atol=ATOL)
    assert np.abs(np.asarray(mine.final_joints[:7]) - HOME_Q).max() > 0.05  # it moved
    assert dds["success"] == mine.success and dds["time_to_success_s"] == mine.time_to_success_s
    assert dds["peak_force_n"] == pytest.approx(mine.peak_force_n, abs=1e-6)
    assert dds["closest_approach_m"] == pytest.approx(mine.closest_approach_m, abs=ATOL)
    assert dds["control_ticks"] == mine.control_ticks == 101
    assert dds["hold_ticks"]["no_command"] == mine.hold_ticks["no_command"] == 15
    assert dds["chunks_accepted"] == mine.chunks_accepted == 14
    assert dds["duration_s"] == pytest.approx(mine.duration_s)


def test_the_reset_re_randomised_the_world(dds_episodes):
    (first, _), (second, _) = dds_episodes
    assert (first["seed"], second["seed"]) == SEEDS
    assert first["closest_approach_m"] != second["closest_approach_m"]  # another box pose


def test_cli_dds_transport_writes_the_report(tiny_checkpoint, runner, tmp_path):
    """vision_only over DDS (policy_node without a tactile topic) through the CLI: the
    in-process ablation's episode, and the same report files."""
    require_loopback()
    from restac_ros.eval.sim_cli import main

    out = tmp_path / "report"
    assert main(["--checkpoint", str(tiny_checkpoint), "--seeds", "7", "--seconds", "0.5",
                 "--ablations", "vision_only", "--transport", "dds", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["backend"] == "dds"
    assert metrics["ablations"]["vision_only"]["episodes"] == 1
    row = json.loads((out / "episodes.jsonl").read_text().splitlines()[0])
    assert (row["transport"], row["ablation"], row["chunks_accepted"]) == ("dds", "vision_only", 6)
    assert all(t["logvar"] is None for t in row["ticks"])
    assert {"report.html", "episodes.csv"} <= {p.name for p in out.iterdir()}
    short = ClosedLoopRunner(runner.policy, dataclasses.replace(runner.config, seconds=0.5))
    mine = short.run_episode(7, "vision_only")
    np.testing.assert_allclose(row["final_joints"], mine.final_joints, rtol=0, atol=ATOL)
    # zeroed needs two policy calls a tick: in-process only
    assert main(["--checkpoint", str(tiny_checkpoint), "--seeds", "7", "--transport", "dds",
                 "--ablations", "on,zeroed", "--out", str(tmp_path / "o2")]) == 2
