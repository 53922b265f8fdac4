"""restac-demo's touch demo: the cached sim-trained policy, closed loop on held-out seeds.

Runs the episodes through `sim.fanout.run_local` (the in-process path `restac-eval-sim`
takes: `sim.closed_loop.ClosedLoopRunner`) and prints what the tactile branch did, split
by the sim's contact ground truth at each policy tick: success rate per ablation (Wilson
95% interval), the VQ code histogram, the logvar and gate ranges in free motion vs
contact, and the issue's touch targets (`eval.touch_metrics`; a few seeds are a
demonstration, not a measurement: bench/ runs >= 50).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from restac_ros.eval import touch_metrics


def _range(values) -> str:
    v = np.asarray([x for x in values if x is not None], np.float64)
    if v.size == 0:
        return "n/a (no ticks)"
    return f"{v.min():.3f} .. {v.max():.3f} (mean {v.mean():.3f}, {v.size} ticks)"


def tactile_rows(episodes: list[dict]) -> list[tuple[str, str]]:
    """One ablation's tactile diagnostics (its valid ticks), free motion vs contact."""
    ticks = [t for e in episodes for t in e["ticks"] if t["invalid"] is None]
    free = [t for t in ticks if not t["in_contact"]]
    contact = [t for t in ticks if t["in_contact"]]
    rows = []
    for name, part in (("free", free), ("contact", contact)):
        hist = Counter(c for t in part for c in t["codes"])
        text = ", ".join(f"{c}:{n}" for c, n in sorted(hist.items())) or "no codes"
        rows.append((f"VQ codes ({name})", text))
    for name, part in (("free", free), ("contact", contact)):
        rows.append((f"logvar ({name})", _range(t["logvar"] for t in part)))
    for name, part in (("free", free), ("contact", contact)):
        rows.append((f"gate ({name})", _range(t["gate_branch"] for t in part)))
    return rows


def summary_rows(results: list[dict]) -> list[tuple[str, str]]:
    by: dict[str, list[dict]] = {}
    for r in sorted(results, key=lambda r: r["seed"]):
        by.setdefault(r["ablation"], []).append(r)
    rows = []
    for ablation, eps in by.items():
        k, n = sum(bool(e["success"]) for e in eps), len(eps)
        lo, hi = touch_metrics.wilson_interval(k, n)
        seeds = " ".join(f"{e['seed']}:{'ok' if e['success'] else 'fail'}" for e in eps)
        rows.append((f"success [{ablation}]", f"{k}/{n} (95% CI {lo:.2f}-{hi:.2f}); {seeds}"))
    for ablation in ("on", "zeroed"):
        if ablation in by:
            rows += [(f"{name} [{ablation}]", text) for name, text in tactile_rows(by[ablation])]
    for t in touch_metrics.targets(touch_metrics.touch_summary(results)):
        verdict = {True: "meets", False: "below", None: "n/a"}[t["pass"]]
        measured = "n/a" if t["measured"] is None else t["measured"]
        rows.append((f"target: {t['target']}", f"{measured} (want {t['wanted']}: {verdict})"))
    return rows


def print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")


def run_touch_demo(args: argparse.Namespace, jax_cache: Path) -> int:
    from restac_ros.eval.demo_touch import ensure_touch_demo
    from restac_ros.sim import fanout
    from restac_ros.sim.closed_loop import Ablation

    ablations = [a.strip() for a in args.ablations.split(",") if a.strip()]
    known = [a.value for a in Ablation]
    if not ablations or any(a not in known for a in ablations):
        raise SystemExit(f"restac-demo: --ablations takes a comma list of {known}")
    t0 = time.monotonic()
    vqvae = None
    if args.checkpoint is None:
        demo = ensure_touch_demo()
        checkpoint, vqvae = demo.policy, demo.vqvae
    else:
        checkpoint = args.checkpoint.absolute()
        if not (checkpoint / "restac_config.json").is_file():
            raise SystemExit(f"restac-demo: {checkpoint} is not a policy checkpoint")
    t_built = time.monotonic()
    spec = fanout.RunSpec(
        checkpoint=str(checkpoint), params_path=None if args.params is None else str(args.params),
        seconds=args.episode_seconds, compile_cache=str(Path(jax_cache).absolute()))
    tasks = fanout.make_tasks(args.seeds, ablations)
    print(f"closed loop: {len(args.seeds)} held-out seeds x {', '.join(ablations)} "
          f"({args.episode_seconds:g} s of sim time each) ...", flush=True)
    results = fanout.run_local(spec, tasks, args.workers)
    t_end = time.monotonic()
    rows = [("policy", str(checkpoint))]
    if vqvae is not None:
        rows.append(("VQ-VAE (frozen)", str(vqvae)))
    rows += summary_rows(results)
    rows += [("build (cached after the first run)", f"{t_built - t0:.1f} s"),
             ("closed loop", f"{t_end - t_built:.1f} s for {len(results)} episodes")]
    print_rows(rows)
    valid = sum(t["invalid"] is None for r in results for t in r["ticks"])
    if valid == 0:
        print("restac-demo: no episode had a valid observation", flush=True)
        return 1
    return 0
