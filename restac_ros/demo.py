"""restac-demo (`make demo`): the tactile branch at work, closed loop in restac_sim.

Default (touch demo): the embedded policy of `restac_ros.eval.demo_touch` (a small
Residual VQ-VAE and a small Pi0_ResTac trained with it frozen, on scripted-expert sim
recordings; built once and cached under .cache/demo_touch) drives the simulated arm on a
few held-out seeds through the closed loop restac-eval-sim runs (`sim.fanout` ->
`sim.closed_loop`), tactile branch on and zeroed; the demo prints the success rate, the
VQ code histogram, and the logvar and gate ranges in free motion vs contact.

`--replay`: the earlier demo: sample bag -> bag_player -> policy_node -> chunk_executor,
each node its own process over real DDS confined to loopback, with the small demo policy
trained on sample bags (.cache/demo_policy); prints the pipeline's summary table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from restac_ros.dds_env import apply_loopback_env

CACHE = Path(".cache")
DEFAULT_BAG = CACHE / "demo_bag"  # seed 0: held out from the demo policy's training seeds
DEFAULT_CHECKPOINT = CACHE / "demo_policy"
DEMO_SEEDS = "100-102"  # restac-eval-sim's held-out seeds (training uses 1000+)
JAX_CACHE = CACHE / "jax"  # persistent XLA cache: later demos skip most of the warm-up


def parse_args(argv) -> argparse.Namespace:
    from restac_ros.sim.cli import parse_seeds

    ap = argparse.ArgumentParser(prog="restac-demo", description=__doc__.splitlines()[0])
    ap.add_argument("--replay", action="store_true",
                    help="the sample-bag replay demo over DDS instead of the touch demo")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="policy checkpoint (default: the touch demo policy; with --replay "
                         f"{DEFAULT_CHECKPOINT})")
    ap.add_argument("--params", type=Path, default=None, help="default: config/policy.yaml")
    touch = ap.add_argument_group("touch demo")
    touch.add_argument("--seeds", type=parse_seeds, default=parse_seeds(DEMO_SEEDS),
                       help=f"held-out world seeds (default {DEMO_SEEDS})")
    touch.add_argument("--ablations", default="on,zeroed",
                       help="comma list of on, zeroed, vision_only (default on,zeroed)")
    touch.add_argument("--episode-seconds", type=float, default=8.0, help="sim time per episode")
    touch.add_argument("--workers", type=int, default=1, help="episode worker processes")
    replay = ap.add_argument_group("--replay")
    replay.add_argument("--bag", type=Path, default=DEFAULT_BAG, help="made when missing")
    replay.add_argument("--seconds", type=float, default=20.0, help="sample bag length")
    replay.add_argument("--rate", type=float, default=1.0, help="bag playback rate")
    replay.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="give up after (s, once the checkpoint is ready)",
    )
    return ap.parse_args(argv)


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=dict(os.environ))


def script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def ensure_bag(path: Path, seconds: float, seed: int = 0) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        run(
            [
                script("restac-make-sample-bag"),
                str(path),
                "--seconds",
                str(seconds),
                "--seed",
                str(seed),
            ]
        )
    return path


def ensure_checkpoint(path: Path | None) -> Path:
    """--checkpoint DIR as given; the default is the cached demo policy (trained once)."""
    if path is None or path == DEFAULT_CHECKPOINT:
        path = DEFAULT_CHECKPOINT
        from restac_ros.eval.demo_checkpoint import ensure_demo_checkpoint

        return ensure_demo_checkpoint(path)
    if not (path / "restac_config.json").is_file():
        raise SystemExit(f"restac-demo: {path} is not a policy checkpoint")
    return path


def write_params(src: Path | None, dst: Path, checkpoint: Path, bag: Path, rate: float) -> Path:
    from restac_ros.paths import config_path

    data = yaml.safe_load((src or config_path("policy.yaml")).read_text())
    policy = data["policy_node"]["ros__parameters"]
    policy.update(autostart=True, checkpoint_dir=str(checkpoint.resolve()), use_sim_time=True)
    data["chunk_executor"]["ros__parameters"]["use_sim_time"] = True
    data["bag_player"]["ros__parameters"].update(
        bag_path=str(bag.resolve()), rate=float(rate), publish_clock=True, loop=False
    )
    dst.write_text(yaml.safe_dump(data))
    return dst


def start_node(module: str, params: Path, log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            f"restac_ros.nodes.{module}",
            "--ros-args",
            "--params-file",
            str(params),
        ],
        env=dict(os.environ),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if not args.replay:
        from restac_ros.eval.demo_touch_eval import run_touch_demo

        return run_touch_demo(args, JAX_CACHE)
    return replay_demo(args)


def replay_demo(args: argparse.Namespace) -> int:
    env = apply_loopback_env()
    print(f"DDS: loopback only, ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}", flush=True)
    t_start = time.monotonic()
    bag = ensure_bag(args.bag, args.seconds)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(JAX_CACHE.absolute()))
    checkpoint = ensure_checkpoint(args.checkpoint)

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from restac_ros.nodes.pipeline_monitor import PipelineMonitor, format_table

    work = Path(tempfile.mkdtemp(prefix="restac_demo_"))
    params = write_params(args.params, work / "params.yaml", checkpoint, bag, args.rate)
    rclpy.init()
    monitor = PipelineMonitor()
    executor = SingleThreadedExecutor()
    executor.add_node(monitor)
    procs = [
        start_node("policy_node", params, work / "policy_node.log"),
        start_node("chunk_executor", params, work / "chunk_executor.log"),
    ]
    t_pipeline = time.monotonic()
    deadline = t_pipeline + args.timeout  # training (first run only) not counted
    try:
        print("waiting for policy_node to load and compile the policy ...", flush=True)
        while monitor.value("restac: policy_node", "lifecycle") != "active":
            executor.spin_once(timeout_sec=0.1)
            _check_alive(procs, work, deadline)
        print(
            f"policy_node active ({monitor.value('restac: policy_node', 'model')}); "
            "playing the bag",
            flush=True,
        )
        player = start_node("bag_player", params, work / "bag_player.log")
        procs.append(player)
        while player.poll() is None:
            executor.spin_once(timeout_sec=0.05)
            _check_alive(procs[:2], work, deadline)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        if player.returncode != 0:
            raise SystemExit(f"bag_player failed; see {work / 'bag_player.log'}")
    finally:
        stop(procs)
        executor.shutdown(timeout_sec=2.0)
        monitor.destroy_node()
        rclpy.try_shutdown()
    rows = [
        ("bag", f"{bag} (rate {args.rate})"),
        ("checkpoint", str(checkpoint)),
        *monitor.summary_rows(),
        (
            "demo wall time",
            f"{time.monotonic() - t_start:.1f} s (pipeline {time.monotonic() - t_pipeline:.1f} s)",
        ),
        ("node logs", str(work)),
    ]
    print(format_table(rows))
    if not monitor.chunks or monitor.commands == 0:
        print("restac-demo: no chunks or no commands: see the node logs", file=sys.stderr)
        return 1
    return 0


def _check_alive(procs: list[subprocess.Popen], work: Path, deadline: float) -> None:
    for p in procs:
        if p.poll() is not None:
            raise SystemExit(f"{p.args[2]} exited with {p.returncode}; logs in {work}")
    if time.monotonic() > deadline:
        raise SystemExit(f"restac-demo: timed out; logs in {work}")


if __name__ == "__main__":
    sys.exit(main())
