"""`restac-make-sample-bag OUT [--storage mcap|sqlite3] [--seconds N] [--seed S]`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .writer import EPOCH_NS, write_sample_bag


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="restac-make-sample-bag",
        description="Write a deterministic synthetic ResTac episode as a rosbag2 directory: "
        "3 cameras (224x224 rgb8, 15 Hz), a GelSight-like tactile image (240x320 rgb8, 30 Hz), "
        "joint states (100 Hz), the teacher's joint command (15 Hz), ground-truth contact "
        "(30 Hz) and the prompt. Same seed, same bytes.",
    )
    ap.add_argument("out", type=Path, help="bag directory to create (must not exist)")
    ap.add_argument(
        "--storage",
        choices=("mcap", "sqlite3"),
        default="mcap",
        help="rosbag2 storage plugin (default: mcap)",
    )
    ap.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="episode length in seconds (default: 20; two pick-and-place cycles)",
    )
    ap.add_argument("--seed", type=int, default=0, help="episode seed (default: 0)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.out.exists():
        print(
            f"restac-make-sample-bag: {args.out} exists already, not overwriting", file=sys.stderr
        )
        return 2
    if not 0.001 <= args.seconds <= 3600:
        print("restac-make-sample-bag: --seconds must be in [0.001, 3600]", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    s = write_sample_bag(args.out, storage=args.storage, seconds=args.seconds, seed=args.seed)
    if not args.quiet:
        size = sum(f.stat().st_size for f in s.path.iterdir() if f.is_file())
        print(
            f"wrote {s.path} ({s.storage}, {s.duration_ns / 1e9:g} s, seed {s.seed}, "
            f"{sum(s.counts.values())} messages, {size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        print(f"prompt: {s.prompt}")
        spans = [
            f"[{(a - EPOCH_NS) / 1e9:.3f}, {(b - EPOCH_NS) / 1e9:.3f}]"
            for a, b in s.contact_intervals
        ]
        print("contact intervals (s from start): " + (", ".join(spans) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
