"""`restac-eval BAG... --out DIR`: offline rosbag replay evaluation of a policy (no DDS).

For each bag (rosbag2 sqlite3 or MCAP): observations assembled in bag time by
the core (same path as policy_node), the policy run at the configured rate,
each chunk compared with the recorded teacher commands and with a
hold-last-command baseline. Writes metrics.json, steps.csv, PNG plots, a
self-contained report.html, summary.png and predictions/ (MCAP: ActionChunk,
TactileDiagnostics, MarkerArray). With several bags each gets DIR/<bag name>/
and DIR/metrics.json holds every bag's metrics plus the pooled errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from restac_ros.core.bag_dataset import TEACHER_TOPIC, BagError

from . import metrics, params
from .records import stack
from .runner import EvalOptions, evaluate_bag, write_outputs

EXIT_OK, EXIT_USAGE, EXIT_BAG, EXIT_CHECKPOINT = 0, 2, 3, 4
EXIT_BAG_DAMAGED, EXIT_NO_OBSERVATION, EXIT_INTERRUPTED = 5, 6, 130
EXIT_CODES = f"""exit codes (with several, the highest applies; each error is one line on stderr
naming the file and the problem):
  {EXIT_OK}    every bag evaluated
  {EXIT_USAGE}    usage: a bad argument, --checkpoint is no policy checkpoint, --out unwritable
  {EXIT_BAG}    a bag or the params file is unusable (not found, unreadable, a missing topic,
       a wrong message type); nothing is written for that bag, the other bags are evaluated
  {EXIT_CHECKPOINT}    the checkpoint is refused (a truncated or unreadable file, NaN/inf weights or
       norm stats, no std or quantile spread (<= 1e-8), params that do not fit); nothing written
  {EXIT_BAG_DAMAGED}    a bag is damaged (no metadata.yaml, truncated storage, messages that do not
       deserialize): its readable part was evaluated and written
  {EXIT_NO_OBSERVATION}    a bag has no valid observation (e.g. all joint states NaN): an empty
       report is written (metrics.json with steps 0 and the reasons)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): the results so far are written, an empty report if no
       policy call had finished"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="restac-eval", description=__doc__.split("\n\n")[0],
                                 epilog=EXIT_CODES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bags", nargs="+", type=Path, help="rosbag2 directories (or storage files)")
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--params", type=Path, default=None,
                    help="policy params YAML (default: the package's config/policy.yaml)")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="policy checkpoint (default: the params' checkpoint_dir)")
    ap.add_argument("--seed", type=int, default=None, help="noise seed (default: params' seed)")
    ap.add_argument("--rate", type=float, default=None,
                    help="policy rate in Hz of bag time (default: params' rate_hz)")
    ap.add_argument("--teacher-topic", default=TEACHER_TOPIC,
                    help="recorded commanded actions (sensor_msgs/JointState)")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="stop after this many policy calls per bag")
    ap.add_argument("--batch", type=int, default=EvalOptions.batch_size,
                    help="ticks per policy call (1: one call per tick, the live latency)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return ap


def _error(msg: str) -> None:
    print(f"restac-eval: error: {' '.join(str(msg).split())}", file=sys.stderr)


def _load_policy(ckpt: Path, num_steps: int):
    """The policy, or None after one error line (any load failure refuses the checkpoint)."""
    from restac_ros.model.policy import RestacPolicy

    try:
        policy = RestacPolicy.from_checkpoint(ckpt, num_steps=num_steps)
    except Exception as err:  # orbax/tensorstore raise many types; each is reported, not hidden
        msg = str(err) or type(err).__name__
        _error(f"checkpoint refused: {msg if str(ckpt) in msg else f'{ckpt}: {msg}'}")
        return None
    if policy.tokenizer is None or policy.norm_stats is None:
        _error(f"checkpoint refused: {ckpt} lacks its tokenizer or norm stats")
        return None
    return policy


def _pooled(results, names, dt) -> dict:
    """Errors over every bag's steps together (contact/jump metrics stay per bag)."""
    arrays = stack([r for res in results for r in res.records])
    m = metrics.compute_metrics(arrays, dt, names, None)
    keep = ("steps", "horizon", "horizon_steps", "policy", "hold_baseline", "policy_vs_hold",
            "inference")
    return {k: m[k] for k in keep}


def run(args: argparse.Namespace) -> int:
    p = params.load_params(args.params)
    ckpt = Path(args.checkpoint or p["checkpoint_dir"]).expanduser()
    if not (ckpt / "restac_config.json").is_file():
        print(f"restac-eval: error: {ckpt} is not a policy checkpoint (no restac_config.json); "
              "pass --checkpoint, train one with restac-train-policy, or run `make demo` "
              "for the demo checkpoint", file=sys.stderr)
        return EXIT_USAGE
    rate = float(args.rate if args.rate is not None else p["rate_hz"])
    if not rate > 0:
        print("restac-eval: error: --rate must be > 0", file=sys.stderr)
        return EXIT_USAGE
    if args.batch < 1:
        print("restac-eval: error: --batch must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    opts = EvalOptions(rate_hz=rate, seed=int(args.seed if args.seed is not None else p["seed"]),
                       teacher_topic=args.teacher_topic, progress=not args.quiet,
                       max_steps=args.max_steps, batch_size=args.batch)
    policy = _load_policy(ckpt, int(p["num_steps"]))
    if policy is None:
        return EXIT_CHECKPOINT
    multi = len(args.bags) > 1
    results, per_bag, codes = [], {}, [EXIT_OK]
    for bag in args.bags:
        try:
            res = evaluate_bag(bag, policy, p, opts)
        except BagError as err:
            _error(err)
            codes.append(EXIT_BAG)
            continue
        out = args.out / bag.name if multi else args.out
        m = write_outputs(out, res, policy, p, opts, ckpt)
        per_bag[bag.name] = m
        codes.append(_report(bag, out, res, m))
        if res.records:
            results.append(res)
        if res.interrupted:
            break
    if multi and results:
        names = next(iter(per_bag.values()))["action_names"]
        pooled = _pooled(results, names, float(p["action_dt_s"]))
        (args.out / "metrics.json").write_text(
            json.dumps({"pooled": pooled, "bags": per_bag}, indent=2, allow_nan=False))
        for s, c in pooled["policy_vs_hold"].items():
            print(f"pooled step {s}: policy MAE {c['policy_mae']:.5f} vs hold "
                  f"{c['hold_mae']:.5f} -> {'beats' if c['policy_beats_hold'] else 'loses'}")
    return max(codes)


def _report(bag: Path, out: Path, res, m: dict) -> int:
    """Prints the bag's summary and its one error line, if any; returns its exit code."""
    _print_summary(bag, out, m)
    if res.interrupted:
        print(f"restac-eval: interrupted; results of {len(res.records)} policy calls written to "
              f"{out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if res.damage:
        _error(f"{bag}: damaged bag, its readable part evaluated ({out}): "
               + "; ".join(d.replace(f"{bag}: ", "", 1) for d in res.damage))
        return EXIT_BAG_DAMAGED
    if not res.records:
        _error(f"{bag}: {res.no_observation}; empty report written to {out}")
        return EXIT_NO_OBSERVATION
    return EXIT_OK


def _print_summary(bag: Path, out: Path, m: dict) -> None:
    run_ = m["run"]
    speed = f"{run_['realtime_factor']:.1f}x real time" if run_["realtime_factor"] else "n/a"
    print(f"{bag}: {m['steps']} chunks, {speed}, report {out / 'report.html'}")
    for s, c in m["policy_vs_hold"].items():
        print(f"  step {s}: policy MAE {c['policy_mae']:.5f} vs hold {c['hold_mae']:.5f} -> "
              f"{'beats' if c['policy_beats_hold'] else 'does not beat'} hold-last-command")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (BagError, params.ParamsError) as err:
        _error(err)
        return EXIT_BAG
    except OSError as err:  # writing the outputs
        _error(f"{err.filename or args.out}: cannot write: {err.strerror or err}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("restac-eval: interrupted before any result", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
