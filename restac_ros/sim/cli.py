"""`python -m restac_ros.sim record OUT --seeds 0-9`: scripted-expert episodes as rosbag2.

Writes OUT/episode_<seed>/ per seed (the layout restac-train-policy and
restac-train-vqvae take: a directory of bags) and prints one line per episode.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .env import SimConfig
from .recorder import record_episode
from .tactile import TACTILE_SHAPES, TactileConfig


def parse_seeds(text: str) -> list[int]:
    """'3' | '0-9' | '1,4,7' -> seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise argparse.ArgumentTypeError(f"bad seed list {text!r} (e.g. 0-9 or 1,4,7)")
        seeds += range(int(lo), int(hi) + 1) if sep else [int(lo)]
    return seeds


def parse_shape(text: str) -> tuple[int, int]:
    rows, _, cols = text.partition("x")
    shape = (int(rows), int(cols)) if rows.isdigit() and cols.isdigit() else None
    if shape not in TACTILE_SHAPES:
        raise argparse.ArgumentTypeError(f"tactile shape must be one of {TACTILE_SHAPES}")
    return shape


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restac_ros.sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record scripted-expert episodes")
    rec.add_argument("out", type=Path, help="directory for episode_<seed>/ bags")
    rec.add_argument("--seeds", type=parse_seeds, default=[0], help="e.g. 0-9 or 1,4,7")
    rec.add_argument("--seconds", type=float, default=8.0, help="episode length (sim time)")
    rec.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    rec.add_argument("--tactile-shape", type=parse_shape, default=(128, 160),
                     help="tactile image rows x columns: 128x160 or 240x320")
    args = parser.parse_args(argv)
    config = SimConfig(tactile=TactileConfig(shape=args.tactile_shape))
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for seed in args.seeds:
        path = args.out / f"episode_{seed:03d}"
        if path.exists():
            print(f"{path}: exists, refusing to overwrite", file=sys.stderr)
            return 2
        s = record_episode(path, seed, seconds=args.seconds, storage=args.storage, config=config)
        failures += not s.success
        print(f"{path}: success={s.success} peak_force={s.peak_force_n:.2f}N "
              f"slip_ticks={s.slip_ticks} contact_intervals={len(s.contact_intervals)}")
    print(f"{len(args.seeds) - failures}/{len(args.seeds)} episodes succeeded")
    return 0
