"""Closed-loop evaluation: the demo policy drives restac_sim through the live pipeline's maths.

Real parts only: the cached demo checkpoint (.cache/demo_policy, as test/eval uses), the
MuJoCo world with rendering, core's ObservationBuilder and ChunkExecutor, a spawn process
pool and a local Ray runtime. Episodes are 1-1.5 s of sim time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from restac_ros.eval import params as eval_params
from restac_ros.eval.sim_report import summarize, wilson_interval
from restac_ros.sim.closed_loop import (
    ClosedLoopConfig,
    ClosedLoopRunner,
    load_executor_params,
)
from restac_ros.sim.fanout import RunSpec, Task, make_tasks, run_local, run_ray
from restac_ros.sim.world import HOME_Q

REPO = Path(__file__).resolve().parents[2]
SEED = 3


def _timeless(result: dict) -> dict:
    """An episode's result without wall-clock numbers and output paths."""
    out = {k: v for k, v in result.items() if k not in ("wall_s", "mcap")}
    out["ticks"] = [{k: v for k, v in t.items() if k != "inference_ms"} for t in out["ticks"]]
    return out


@pytest.fixture(scope="module")
def demo_checkpoint() -> Path:
    from restac_ros.eval.demo_checkpoint import enable_compile_cache, ensure_demo_checkpoint

    enable_compile_cache(REPO / ".cache" / "jax")
    return ensure_demo_checkpoint(REPO / ".cache" / "demo_policy", progress=False)


@pytest.fixture(scope="module")
def policy(demo_checkpoint):
    from restac_ros.model.policy import RestacPolicy

    return RestacPolicy.from_checkpoint(demo_checkpoint)


def _runner(policy, seconds: float = 1.5, **executor_overrides) -> ClosedLoopRunner:
    config = ClosedLoopConfig(eval_params.load_params(),
                              {**load_executor_params(), **executor_overrides}, seconds=seconds)
    return ClosedLoopRunner(policy, config)


@pytest.fixture(scope="module")
def episodes(policy, tmp_path_factory):
    runner = _runner(policy)
    bag = tmp_path_factory.mktemp("closed_loop") / "on_episode"
    return {a: runner.run_episode(SEED, a, mcap_path=bag if a == "on" else None)
            for a in ("on", "zeroed", "vision_only")}


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson_interval(10, 10)[1] == 1.0


def test_episode_runs_the_pipeline_and_counts_holds(episodes):
    r = episodes["on"]
    # 1.5 s at 15 Hz: ticks 0..22; ticks 0 and 1 lack the joint state 1/15 s back
    assert len(r.ticks) == 23
    assert r.invalid_ticks == {"no_previous_state": 2}
    assert r.chunks_accepted == 21 and r.chunks_refused == {}
    # the first chunk (tick 2, t = 0.1333 s) reaches the executor with the 0.14 s joint
    # state, after its control tick there: the 15 ticks 0 .. 0.14 s had no command to send
    # (the sim held its home pose)
    assert r.hold_ticks == {"no_command": 15}
    assert r.control_ticks == 151
    assert not r.diverged and r.duration_s == pytest.approx(1.5)
    moved = np.abs(np.asarray(r.final_joints[:7]) - HOME_Q)
    assert moved.max() > 0.01  # the policy's chunks were executed
    valid = [t for t in r.ticks if t.invalid is None]
    assert all(t.gate is not None and 0 < t.gate <= 1 for t in valid)


def test_ablations_zeroed_equals_vision_only_and_differs_from_on(episodes):
    on, zeroed, vision = episodes["on"], episodes["zeroed"], episodes["vision_only"]
    # gate 0 and no tactile input both give the backbone's actions: the same trajectory
    assert zeroed.final_joints == vision.final_joints
    assert on.final_joints != zeroed.final_joints  # the open gate changed the actions
    z_valid = [t for t in zeroed.ticks if t.invalid is None]
    assert all(t.gate == 0.0 and t.gate_branch > 0 for t in z_valid)  # reported, not applied
    assert [t.logvar for t in z_valid] == [t.logvar for t in on.ticks if t.invalid is None]
    assert all(t.logvar is None and t.gate is None for t in vision.ticks)


def test_same_seed_same_result(policy, episodes):
    again = _runner(policy).run_episode(SEED, "on")
    assert _timeless(again.as_dict()) == _timeless(episodes["on"].as_dict())


def test_logvar_guard_holds_the_arm(policy):
    # the demo's logvar (~0.07) is above this bound: every chunk is held, the arm stays home
    r = _runner(policy, seconds=1.0, logvar_guard=True, logvar_bound=-5.0,
                guard_mode="hold").run_episode(SEED, "on")
    assert r.hold_ticks["hold_uncertain"] == r.control_ticks - r.hold_ticks["no_command"]
    assert np.abs(np.asarray(r.final_joints[:7]) - HOME_Q).max() < 1e-3


def test_episode_mcap(episodes):
    from rosbags.rosbag2 import Reader

    from restac_ros.eval.prediction_bag import make_typestore

    r = episodes["on"]
    store = make_typestore()
    with Reader(r.mcap) as reader:
        counts: dict[str, int] = {}
        chunks = []
        for conn, _, raw in reader.messages():
            counts[conn.topic] = counts.get(conn.topic, 0) + 1
            if conn.topic == "/restac/action_chunk":
                chunks.append(store.deserialize_cdr(raw, conn.msgtype))
    info = yaml.safe_load((Path(r.mcap) / "metadata.yaml").read_text())
    meta = info["rosbag2_bagfile_information"]["custom_data"]
    assert counts["/restac/action_chunk"] == counts["/restac/tactile/diagnostics"] == 21
    assert counts["/joint_states"] == 151 and counts["/restac/command"] == 151 - 15
    assert counts["/camera/base/image_raw/compressed"] == 23
    assert counts["/tactile/image_raw/compressed"] == 46
    assert chunks[0].horizon == 10 and len(chunks[0].actions) == 80
    summary = json.loads(meta["restac.closed_loop"])
    assert summary["ablation"] == "on" and summary["holds"] == 15
    assert meta["restac.seed"] == str(SEED) and meta["restac.success"] == "false"


# ray starts its processes with fork + exec (subprocess), which JAX's warning cannot tell
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
def test_process_pool_and_ray_match_in_process(policy, demo_checkpoint):
    ray = pytest.importorskip("ray")
    spec = RunSpec(checkpoint=str(demo_checkpoint), seconds=1.0,
                   compile_cache=str(REPO / ".cache" / "jax"))
    tasks = [Task(SEED, "on"), Task(SEED + 1, "zeroed")]
    here = [_timeless(_runner(policy, seconds=1.0).run_episode(t.seed, t.ablation).as_dict())
            for t in tasks]
    pooled = run_local(spec, tasks, workers=2)
    assert [_timeless(r) for r in pooled] == here
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        via_ray = run_ray(spec, tasks, workers=2)
    finally:
        ray.shutdown()
    assert [_timeless(r) for r in via_ray] == here


def test_cli_writes_report(demo_checkpoint, tmp_path):
    from restac_ros.eval.sim_cli import main

    out = tmp_path / "sim_eval"
    assert main(["--checkpoint", str(demo_checkpoint), "--seeds", "5", "--seconds", "1",
                 "--ablations", "on,vision_only", "--out", str(out),
                 "--no-mcap-images"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["ablations"]) == {"on", "vision_only"}
    on = m["ablations"]["on"]
    assert on["episodes"] == 1 and on["success_ci95"][0] == 0.0
    assert (out / "episodes" / "on_seed005").is_dir()
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "vision_only" in html
    assert main(["--checkpoint", str(demo_checkpoint), "--seeds", "5", "--out", str(out)]) == 2
    assert main(["--checkpoint", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2


def test_cli_refuses_a_broken_checkpoint_in_workers(tmp_path, capsys):
    from restac_ros.eval.sim_cli import main

    empty = tmp_path / "empty_ckpt"
    empty.mkdir()
    # two seeds: the spawn pool runs; a failing worker is an error, not a respawn loop
    assert main(["--checkpoint", str(empty), "--seeds", "1-2", "--ablations", "on",
                 "--workers", "2", "--out", str(tmp_path / "o")]) == 4
    assert "empty_ckpt" in capsys.readouterr().err


def test_summary_counts_successes():
    base = {"time_to_success_s": None, "peak_force_n": 1.0, "closest_approach_m": 0.1,
            "holds": 3, "hold_ticks": {}, "invalid_ticks": {}, "diverged": False,
            "ticks": [], "wall_s": 1.0}
    rows = [{**base, "ablation": "on", "seed": s, "success": s < 3,
             "time_to_success_s": 2.0 + s if s < 3 else None} for s in range(10)]
    s = summarize(rows)["on"]
    assert s["successes"] == 3 and s["success_rate"] == 0.3
    assert s["success_ci95"] == list(wilson_interval(3, 10))
    assert s["time_to_success_s"]["median"] == 3.0
    assert make_tasks([1, 2], ["on", "zeroed"])[2] == Task(1, "zeroed")
