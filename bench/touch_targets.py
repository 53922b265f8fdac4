"""Does touch help? The issue's targets measured closed loop on held-out seeds.

    python bench/touch_targets.py --checkpoint DIR [--seeds 100-149] [--vision-only]
        [--workers 2] [--seconds 8] [--out DIR] [--no-write] [--from-run DIR]

Runs restac-eval-sim's runner (restac_ros/sim/fanout.run_local: the policy_node ->
chunk_executor path in-process, lockstep) on every seed with ablations `on` and `zeroed`
(and `vision_only` with --vision-only), writes restac-eval-sim's outputs (metrics.json with
the `touch` section, report.html) under --out, prints the targets (target vs measured,
pass/fail, shortfall) and, unless --no-write, appends them to bench/RESULTS.md under a
heading naming the checkpoint, with the machine. --from-run DIR re-reads DIR/episodes.jsonl
of an earlier run instead of running episodes (the metrics are recomputed from the ticks).

--baseline CKPT also runs a separately trained vision-only policy (`restac-train-policy
--no-tactile` on the same bags; `python -m restac_ros.eval.demo_touch --vision-baseline`
builds the demo's) on the same seeds and reports tactile `on` against it (Wilson intervals,
Newcombe difference): `zeroed` removes the tactile correction from a network trained with
it, the baseline is what vision alone learns from the same demonstrations.

--expert-open-loop also records the scripted expert on the same seeds (restac_sim's
recorder, contact ground truth in the bag) and runs the policy over those bags with
restac-eval's runner (`eval.runner.evaluate_bag`, 15 Hz): the gate / logvar / VQ-code
measures on contact-rich trajectories, whatever the closed loop reaches (a policy that
never touches leaves the closed-loop measures empty). Supplementary, not the targets.

Seeds must be held out: a seed whose `episode_NNN` bag is in the checkpoint's training
list (policy_meta.json `training.bags`) is refused.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results_md import RESULTS, write_section  # noqa: E402  (bench/ is on sys.path)

from restac_ros.eval import sim_report, touch_metrics  # noqa: E402
from restac_ros.sim.cli import parse_seeds  # noqa: E402

MIN_SEEDS = 50


def training_seeds(checkpoint: Path) -> set[int]:
    """Seeds of the `episode_NNN` bags the checkpoint was trained on (empty if unknown)."""
    meta = checkpoint / "policy_meta.json"
    if not meta.is_file():
        return set()
    bags = json.loads(meta.read_text()).get("training", {}).get("bags", []) or []
    return {int(m.group(1)) for b in bags if (m := re.search(r"episode_(\d+)", str(b)))}


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} CPUs, {platform.machine()}, Python "
            f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end")


def run_episodes(args, checkpoint: Path | None = None,
                 ablations: list[str] | None = None) -> tuple[list[dict], float]:
    from restac_ros.sim import fanout

    spec = fanout.RunSpec(checkpoint=str((checkpoint or args.checkpoint).absolute()),
                          params_path=None if args.params is None else str(args.params),
                          seconds=args.seconds, mcap_dir=None,
                          compile_cache=str(Path(args.compile_cache).absolute()))
    tasks = fanout.make_tasks(args.seeds, ablations or args.ablations)
    t0 = time.perf_counter()
    results = fanout.run_local(spec, tasks, args.workers)
    return results, time.perf_counter() - t0


def expert_open_loop(args, bag_dir: Path) -> dict:
    """Touch measures of the policy's tactile branch over held-out expert episodes."""
    import numpy as np

    from restac_ros.eval import metrics as open_loop_metrics
    from restac_ros.eval import params as eval_params
    from restac_ros.eval import runner
    from restac_ros.model.policy import RestacPolicy
    from restac_ros.sim.recorder import record_episode

    p = eval_params.load_params(args.params)
    policy = RestacPolicy.from_checkpoint(args.checkpoint, num_steps=int(p["num_steps"]))
    opts = runner.EvalOptions(rate_hz=15.0, seed=int(p["seed"]), progress=False)
    episodes, t0 = [], time.perf_counter()
    for seed in args.seeds:
        bag = bag_dir / f"episode_{seed:03d}"
        if not bag.exists():
            record_episode(bag, seed, seconds=args.seconds)
        res = runner.evaluate_bag(bag, policy, p, opts)
        stamps = np.asarray([r.stamp_ns for r in res.records], np.int64)
        contact = open_loop_metrics.in_contact(stamps, res.contact_intervals)
        episodes.append({"seed": seed, "ablation": "expert_open_loop", "success": None,
                         "ticks": [{"t_s": (r.stamp_ns - int(stamps[0])) / 1e9,
                                    "in_contact": bool(c), "logvar": float(r.logvar),
                                    "gate_branch": float(r.gate),
                                    "codes": [int(x) for x in np.asarray(r.codes).reshape(-1)
                                              if x >= 0],
                                    "invalid": None if r.tactile_valid else "tactile"}
                                   for r, c in zip(res.records, contact, strict=True)]})
    return {"gate": touch_metrics.gate_split(episodes),
            "logvar_onset": touch_metrics.logvar_onset(episodes),
            "vq_contact": touch_metrics.vq_contact(episodes),
            "episodes": len(episodes), "wall_s": round(time.perf_counter() - t0, 1)}


def seeds_arg(seeds: list[int]) -> str:
    """The --seeds text for these seeds (a range when contiguous)."""
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def markdown(rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
                     + ["| " + " | ".join(r) + " |" for r in rows[1:]])


def baseline_comparison(results: list[dict], baseline: list[dict]) -> dict:
    """Tactile `on` vs the vision-only policy on the same seeds."""
    d = touch_metrics.success_difference([r for r in results if r["ablation"] == "on"],
                                         baseline)
    return {"on": d["on"], "vision_policy": d["zeroed"], "difference": d["difference"],
            "on_ci95": d["on_ci95"], "vision_policy_ci95": d["zeroed_ci95"],
            "difference_ci95": d["difference_ci95"], "on_beats_vision_policy":
            d["on_beats_zeroed"], "same_seeds": d["same_seeds"]}


def baseline_lines(cmp: dict, checkpoint: Path) -> list[str]:
    (k1, n1), (k2, n2) = cmp["on"], cmp["vision_policy"]
    lo1, hi1 = cmp["on_ci95"]
    lo2, hi2 = cmp["vision_policy_ci95"]
    diff = cmp["difference_ci95"]
    return ["", f"Against a vision-only policy trained on the same episodes "
            f"(`{checkpoint}`, no tactile branch): tactile on {k1}/{n1} (95% CI {lo1:.2f}-"
            f"{hi1:.2f}) vs vision-only {k2}/{n2} ({lo2:.2f}-{hi2:.2f}); difference "
            f"{cmp['difference']:+.3f}" + ("" if diff is None else
                                           f", Newcombe 95% {diff[0]:+.3f} .. {diff[1]:+.3f}")
            + f"; CIs disjoint with on above: "
            f"{'yes' if cmp['on_beats_vision_policy'] else 'no'}."]


def report(metrics: dict, args, wall_s: float | None, expert: dict | None = None,
           baseline: dict | None = None) -> str:
    run = metrics["run"]
    touch = metrics["touch"]
    diff = touch.get("on_vs_zeroed") or {}
    lines = [
        f"`python bench/touch_targets.py --checkpoint {args.checkpoint} --seeds "
        f"{seeds_arg(args.seeds)} --workers {args.workers} --seconds {args.seconds:g}"
        f"{' --vision-only' if args.vision_only else ''}"
        f"{f' --baseline {args.baseline}' if args.baseline else ''}` "
        f"({datetime.date.today().isoformat()}): ablations {', '.join(args.ablations)}, "
        f"{run['seeds']} held-out seeds, {args.seconds:g} s of sim time per episode"
        + ("" if wall_s is None else f", {wall_s:.0f} s wall") + f". Machine: {machine()}.",
        "", markdown(touch_metrics.targets_table(touch["targets"])), "",
        markdown(sim_report.summary_table(metrics["ablations"])), "",
        markdown(sim_report.touch_table(touch)), ""]
    if diff.get("difference_ci95"):
        lo, hi = diff["difference_ci95"]
        lines.append(f"Success on - zeroed {diff['difference']:+.3f}, Newcombe 95% "
                     f"{lo:+.3f} .. {hi:+.3f}.")
    if baseline is not None:
        lines += baseline_lines(baseline, args.baseline)
    if expert is not None:
        lines += ["", f"Supplementary: the same policy's tactile branch over the scripted "
                  f"expert's episodes on the same {expert['episodes']} seeds (open loop, "
                  f"restac-eval's runner at 15 Hz, {expert['wall_s']:.0f} s):", "",
                  markdown(sim_report.touch_table({"per_ablation": {"expert_open_loop":
                                                                    expert}}))]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--seeds", type=parse_seeds, default=parse_seeds("100-149"))
    ap.add_argument("--vision-only", action="store_true", help="also the vision_only ablation")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--params", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None,
                    help="restac-eval-sim outputs (default: a new directory under /tmp)")
    ap.add_argument("--from-run", type=Path, default=None,
                    help="recompute from DIR/episodes.jsonl instead of running episodes")
    ap.add_argument("--compile-cache", default=".cache/jax")
    ap.add_argument("--heading", default=None)
    ap.add_argument("--allow-few-seeds", action="store_true",
                    help=f"a smoke run with fewer than {MIN_SEEDS} seeds (not a result)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a vision-only policy checkpoint to compare tactile `on` with")
    ap.add_argument("--expert-open-loop", action="store_true",
                    help="also the touch measures over the expert's episodes (open loop)")
    ap.add_argument("--expert-bags", type=Path, default=None,
                    help="where the expert episodes go / are reused (default OUT/expert_bags)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    args.ablations = ["on", "zeroed"] + (["vision_only"] if args.vision_only else [])
    if len(args.seeds) < MIN_SEEDS and not args.allow_few_seeds:
        print(f"{len(args.seeds)} seeds: the targets need >= {MIN_SEEDS} "
              "(--allow-few-seeds for a smoke run)", file=sys.stderr)
        return 2
    if not 1 <= args.workers <= 2:
        print("--workers: 1 or 2 on this shared 2-core machine", file=sys.stderr)
        return 2
    for ckpt in filter(None, (args.checkpoint, args.baseline)):
        overlap = sorted(set(args.seeds) & training_seeds(ckpt))
        if overlap:
            print(f"seeds {overlap} are training episodes of {ckpt}", file=sys.stderr)
            return 2
    wall = None
    if args.from_run is not None:
        results = [json.loads(line) for line in
                   (args.from_run / "episodes.jsonl").read_text().splitlines() if line]
        results = [r for r in results if r["ablation"] in args.ablations
                   and r["seed"] in set(args.seeds)]
        run = json.loads((args.from_run / "metrics.json").read_text())["run"]
        wall = run.get("wall_s")  # the earlier run's
        out = args.out or args.from_run
    else:
        results, wall = run_episodes(args)
        out = args.out or Path(f"/tmp/touch_targets_{int(time.time())}")
        seeds = args.seeds
        run = {"checkpoint": str(args.checkpoint.absolute()),
               "seeds": f"{seeds[0]}..{seeds[-1]} ({len(seeds)})",
               "ablations": args.ablations, "episode_s": args.seconds,
               "workers": args.workers, "backend": "processes", "wall_s": round(wall, 1)}
    metrics = sim_report.write_outputs(out, results, run)
    expert = None
    if args.expert_open_loop:
        expert = expert_open_loop(args, args.expert_bags or Path(out) / "expert_bags")
        (Path(out) / "expert_open_loop.json").write_text(json.dumps(expert, indent=2))
    baseline = None
    if args.baseline is not None:
        base_results, base_wall = run_episodes(args, args.baseline, ["vision_only"])
        baseline = baseline_comparison(results, base_results)
        (Path(out) / "baseline.json").write_text(json.dumps(
            {"checkpoint": str(args.baseline.absolute()), "wall_s": round(base_wall, 1),
             "comparison": baseline, "episodes": [
                 {k: r[k] for k in ("seed", "success", "peak_force_n")} for r in base_results]},
            indent=2))
    body = report(metrics, args, wall, expert, baseline)
    print(body)
    print(f"outputs: {out} (report.html, metrics.json)")
    if not args.no_write:
        heading = args.heading or f"Touch targets: {args.checkpoint.name} (closed loop, CPU)"
        write_section(heading, body)
        print(f"appended to {RESULTS} ({heading})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
