"""`restac-eval-sim`: closed-loop evaluation of a policy checkpoint in restac_sim.

  restac-eval-sim --checkpoint DIR --seeds 100-149 --episodes 50 --workers 2 --out OUT \\
      [--ablations on,zeroed,vision_only] [--ray [--ray-address ADDR]]
  restac-eval-sim --checkpoint DIR --seeds 100-109 --out OUT --transport dds

N seeded episodes per ablation (restac_ros/sim/closed_loop.py: the policy_node ->
chunk_executor path in-process, lockstep), in worker processes (or Ray actors with --ray).
`--transport dds` runs them through the real nodes instead (sim_node -> policy_node ->
chunk_executor over DDS, `restac-bringup --launch sim` in a child process, episodes
started on /sim/reset; restac_ros/nodes/sim_episodes.py): ablations `on` and
`vision_only` (a pipeline each), no MCAP (record with `restac-bringup --launch sim
--record DIR`); the same seed gives the same episode as the in-process mode.
Writes OUT/metrics.json, episodes.csv, episodes.jsonl, PNGs, report.html and one MCAP per
episode under OUT/episodes/. Exit status 0 when every episode ran (whatever the success
rate), 2 on bad arguments or params, 4 when a worker cannot load the checkpoint (one line
naming the cause).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from restac_ros.sim.cli import parse_seeds, parse_shape
from restac_ros.sim.closed_loop import Ablation

from . import params as eval_params


def _ablations(text: str) -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    known = [a.value for a in Ablation]
    if not names or any(a not in known for a in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"ablations: a comma list of distinct {known}")
    return names


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="restac-eval-sim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True, help="policy checkpoint directory")
    ap.add_argument("--seeds", type=parse_seeds, default=parse_seeds("100-149"),
                    help="world seeds, e.g. 100-149 or 1,4,7 (default 100-149: held out)")
    ap.add_argument("--episodes", type=int, default=None,
                    help="episodes per ablation: the first N seeds (default: all of them)")
    ap.add_argument("--ablations", type=_ablations, default=None,
                    help="comma list (default: all three in-process; 'on' over DDS)")
    ap.add_argument("--workers", type=int, default=1, help="parallel worker processes/actors")
    ap.add_argument("--out", type=Path, required=True, help="output directory (new or empty)")
    ap.add_argument("--seconds", type=float, default=8.0, help="episode length (sim time)")
    ap.add_argument("--params", type=Path, default=None,
                    help="params YAML (policy_node + chunk_executor; default config/policy.yaml)")
    ap.add_argument("--seed", type=int, default=None, help="noise seed (default: params' seed)")
    ap.add_argument("--tactile-shape", type=parse_shape, default=(128, 160))
    ap.add_argument("--no-mcap", action="store_true", help="write no per-episode MCAP")
    ap.add_argument("--no-mcap-images", action="store_true",
                    help="MCAPs without camera / tactile images (state, chunks, contact only)")
    ap.add_argument("--ray", action="store_true", help="run the workers as Ray actors")
    ap.add_argument("--ray-address", default=None,
                    help="Ray cluster to join (default: start a local runtime)")
    ap.add_argument("--compile-cache", type=Path, default=None,
                    help="persistent XLA compilation cache directory for the workers")
    ap.add_argument("--transport", choices=("inprocess", "dds"), default="inprocess",
                    help="inprocess: the closed loop in worker processes; dds: the real "
                         "nodes over DDS (needs rclpy)")
    ap.add_argument("--sim-params", type=Path, default=None,
                    help="--transport dds: sim_node params layered over --params "
                         "(default config/sim.yaml)")
    return ap


def main(argv: list[str] | None = None) -> int:
    from restac_ros.sim import fanout

    args = build_parser().parse_args(argv)
    seeds = args.seeds
    if args.episodes is not None:
        if not 1 <= args.episodes <= len(seeds):
            print(f"--episodes {args.episodes}: need 1..{len(seeds)} (the seeds given)",
                  file=sys.stderr)
            return 2
        seeds = seeds[: args.episodes]
    if args.workers < 1:
        print("--workers must be >= 1", file=sys.stderr)
        return 2
    ckpt = args.checkpoint.absolute()
    if not ckpt.is_dir():
        print(f"--checkpoint {ckpt}: not a directory", file=sys.stderr)
        return 2
    if args.out.exists() and any(args.out.iterdir()):
        print(f"--out {args.out}: exists and is not empty, refusing to overwrite",
              file=sys.stderr)
        return 2
    try:
        eval_params.load_params(args.params)
    except eval_params.ParamsError as err:
        print(f"params: {err}", file=sys.stderr)
        return 2
    if args.ablations is None:
        args.ablations = ["on"] if args.transport == "dds" else [a.value for a in Ablation]
    if args.transport == "dds" and ("zeroed" in args.ablations or args.workers != 1
                                    or args.ray):
        print("--transport dds: ablations on, vision_only (zeroed needs two policy calls a "
              "tick: in-process only); no --workers / --ray", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.transport == "dds":
        return _main_dds(args, seeds, ckpt)
    spec = fanout.RunSpec(
        checkpoint=str(ckpt), params_path=None if args.params is None else str(args.params),
        seconds=args.seconds, noise_seed=args.seed, tactile_shape=tuple(args.tactile_shape),
        mcap_dir=None if args.no_mcap else str((args.out / "episodes").absolute()),
        mcap_images=not args.no_mcap_images,
        compile_cache=None if args.compile_cache is None else str(args.compile_cache.absolute()))
    tasks = fanout.make_tasks(seeds, args.ablations)
    t0 = time.perf_counter()
    try:
        if args.ray:
            results = fanout.run_ray(spec, tasks, args.workers, args.ray_address)
        else:
            results = fanout.run_local(spec, tasks, args.workers)
    except (OSError, ValueError, RuntimeError) as err:  # checkpoint / params refused
        print(f"restac-eval-sim: {type(err).__name__}: {err}", file=sys.stderr)
        return 4
    backend = "ray" if args.ray else "processes"
    return _write(args, seeds, ckpt, results, time.perf_counter() - t0, backend)


def _write(args, seeds, ckpt: Path, results: list[dict], wall: float, backend: str) -> int:
    from restac_ros.eval import sim_report

    run = {"checkpoint": str(ckpt), "params": str(args.params or
                                                  eval_params.default_params_path()),
           "seeds": f"{seeds[0]}..{seeds[-1]} ({len(seeds)})", "ablations": args.ablations,
           "episode_s": args.seconds, "workers": args.workers,
           "backend": backend, "wall_s": round(wall, 2),
           "machine": f"{platform.machine()} {platform.processor() or ''}".strip()}
    metrics = sim_report.write_outputs(args.out, results, run)
    for row in sim_report.summary_table(metrics["ablations"]):
        print(" | ".join(row))
    for row in sim_report.touch_metrics.targets_table(metrics["touch"]["targets"]):
        print(" | ".join(row))
    print(f"{len(results)} episodes in {wall:.1f}s; report: {args.out / 'report.html'}")
    return 0


def _main_dds(args, seeds, ckpt: Path) -> int:
    """The episodes through the real nodes (rclpy only here, imported on demand)."""
    try:
        from restac_ros.nodes import sim_episodes
    except ImportError as err:
        print(f"--transport dds needs rclpy and the built messages: {err}", file=sys.stderr)
        return 2
    spec = sim_episodes.DdsSpec(
        checkpoint=str(ckpt), params_path=None if args.params is None else str(args.params),
        sim_params_path=None if args.sim_params is None else str(args.sim_params),
        seconds=args.seconds, noise_seed=args.seed, tactile_shape=tuple(args.tactile_shape))
    t0 = time.perf_counter()
    try:
        results = sim_episodes.run_dds(spec, seeds, args.out / "dds", args.ablations, print)
    except (sim_episodes.PipelineDied, TimeoutError) as err:
        print(f"restac-eval-sim: {type(err).__name__}: {err}", file=sys.stderr)
        return 4
    return _write(args, seeds, ckpt, results, time.perf_counter() - t0, "dds")


if __name__ == "__main__":
    sys.exit(main())
