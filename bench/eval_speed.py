"""Evaluation speed of `restac-eval` in multiples of real time (small model, CPU).

Writes a fresh sample episode, loads the policy (default: the cached demo
checkpoint, trained once if missing) and replays the episode through the
evaluation runner at several policy rates. "x real time" = seconds of bag
evaluated / wall seconds from opening the bag to the last chunk, excluding the
one-off jit compilation (reported separately); "with outputs" adds metrics,
plots, HTML report and prediction MCAP.
Replaces the section under HEADING in bench/RESULTS.md (other sections kept).

Usage: JAX_PLATFORMS=cpu .venv/bin/python bench/eval_speed.py [--seconds 20] [--rates 5 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from results_md import RESULTS, write_section  # noqa: E402  (bench/ is on sys.path)

os.environ.setdefault("JAX_PLATFORMS", "cpu")

HEADING = "Evaluation speed (CPU, 2-core x86_64 dev machine)"
REPO = Path(__file__).resolve().parents[1]
GOAL = 20.0


def cpu_name() -> str:
    """The CPU model (Linux /proc/cpuinfo), else the platform's name for it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="policy checkpoint (default: the cached demo checkpoint)")
    ap.add_argument("--seconds", type=float, default=20.0, help="episode length")
    ap.add_argument("--rates", type=float, nargs="+", default=[5.0, 15.0],
                    help="policy rates in Hz (5 = config/policy.yaml's rate_hz)")
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 1],
                    help="ticks per policy call (8 = restac-eval's default; 1 = live-like)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="evaluations per configuration; the median is reported")
    ap.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = ap.parse_args()

    from restac_ros.eval import params, runner
    from restac_ros.eval.demo_checkpoint import enable_compile_cache, ensure_demo_checkpoint
    from restac_ros.model.policy import RestacPolicy
    from restac_ros.sample_bag.writer import write_sample_bag

    enable_compile_cache(REPO / ".cache" / "jax")
    ckpt = args.checkpoint or ensure_demo_checkpoint(REPO / ".cache" / "demo_policy")
    p = params.load_params()
    policy = RestacPolicy.from_checkpoint(ckpt, num_steps=int(p["num_steps"]))
    c = policy.config
    model = (f"{c.paligemma_variant}/{c.action_expert_variant}/{c.vision_variant}, "
             f"H={c.action_horizon}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bag = write_sample_bag(Path(tmp) / "bench_episode", storage="mcap",
                               seconds=args.seconds, seed=201).path
        configs = [(r, b) for b in args.batches for r in args.rates]
        for i, (rate, batch) in enumerate(configs):
            opts = runner.EvalOptions(rate_hz=rate, seed=0, progress=False, batch_size=batch)
            runs = []
            for _ in range(max(1, args.repeats)):
                res = runner.evaluate_bag(bag, policy, p, opts)
                runs.append((res.wall_s - res.warmup_s, res))
            loop_s, res = sorted(runs, key=lambda x: x[0])[len(runs) // 2]  # median run
            warmup_s = max(r.warmup_s for _, r in runs)  # the first run compiled
            t0 = time.perf_counter()
            m = runner.write_outputs(Path(tmp) / f"out_{i}", res, policy, p, opts, ckpt)
            out_s = time.perf_counter() - t0
            evaluated = m["duration_s"] + 1.0 / rate
            rows.append((rate, batch, m["steps"], evaluated, loop_s, evaluated / loop_s,
                         evaluated / (loop_s + out_s), m["inference"]["mean_ms"], warmup_s))
    lines = [
        "| policy rate (Hz) | ticks per call | chunks | bag s | eval s | x real time | "
        "x real time with outputs | inference ms per tick (mean) | compile s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r[0]:g} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]:.2f} | {r[5]:.1f}x | "
                     f"{r[6]:.1f}x | {r[7]:.1f} | {r[8]:.1f} |")
    table = "\n".join(lines)
    print(table)
    verdict = "meets" if rows[0][5] >= GOAL else "misses"
    body = (
        f"`bench/eval_speed.py`: {args.seconds:g} s sample episode (MCAP, 3 cameras 15 Hz, "
        f"tactile 30 Hz, joints 100 Hz) replayed through `restac-eval`'s runner (core "
        f"BagDataset + ObservationBuilder, jit-compiled RestacPolicy, {p['num_steps']} flow "
        f"steps) with `{ckpt.name}` ({model}), {cpu_name()} ({platform.machine()}), "
        f"{os.cpu_count()} cores shared with other jobs, Python {sys.version.split()[0]}. "
        f"\"eval s\" = wall seconds from opening the bag (one pass, in a reader thread that "
        f"runs ahead of the policy, reads observations, prompt and teacher commands together) "
        f"to the last chunk, jit compilation excluded (shown separately), median of "
        f"{args.repeats} runs; \"ticks per call\": observations batched into one policy call "
        f"(restac-eval's default 8; 1 = one call per tick as on the robot); "
        f"\"x real time\" = bag seconds evaluated / eval s; \"with outputs\" adds metrics, "
        f"plots, HTML report and prediction MCAP.\n\n"
        f"{table}\n\n"
        f"At the configured rate ({args.rates[0]:g} Hz, {args.batches[0]} ticks per call) "
        f"evaluation {verdict} the >= {GOAL:g}x goal.")
    if not args.no_write:
        write_section(HEADING, body)
        print(f"updated {RESULTS} ({HEADING})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
