"""Shared fixtures of the evaluation tests: sample bags and the trained demo checkpoint.

The demo checkpoint is the real cached one (.cache/demo_policy, trained once by
ensure_demo_checkpoint and retrained only when its config or code changes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from restac_ros.sample_bag.writer import write_sample_bag

REPO = Path(__file__).resolve().parents[2]
HELD_OUT_SEEDS = (101, 102)  # the demo trains on seeds 1-8


@pytest.fixture(scope="session")
def demo_checkpoint() -> Path:
    from restac_ros.eval.demo_checkpoint import enable_compile_cache, ensure_demo_checkpoint

    enable_compile_cache(REPO / ".cache" / "jax")
    return ensure_demo_checkpoint(REPO / ".cache" / "demo_policy", progress=False)


@pytest.fixture(scope="session")
def held_out_bags(tmp_path_factory) -> list[Path]:
    """Two unseen 12 s episodes (MCAP), each with contact intervals."""
    root = tmp_path_factory.mktemp("held_out")
    return [write_sample_bag(root / f"episode_{s}", storage="mcap", seconds=12.0, seed=s).path
            for s in HELD_OUT_SEEDS]


@pytest.fixture(scope="session")
def sqlite_bag(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sqlite")
    return write_sample_bag(root / "short_sqlite", storage="sqlite3", seconds=3.0, seed=7).path


@pytest.fixture(scope="session")
def eval_out(held_out_bags, demo_checkpoint, tmp_path_factory) -> Path:
    """restac-eval over both held-out episodes (DIR/<bag>/ each, pooled DIR/metrics.json)."""
    from restac_ros.eval.cli import main

    out = tmp_path_factory.mktemp("eval") / "report"
    rc = main([*map(str, held_out_bags), "--out", str(out), "--checkpoint",
               str(demo_checkpoint), "-q"])
    assert rc == 0
    return out
