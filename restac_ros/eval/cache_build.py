"""Build a cache entry in a temporary sibling and move it into place.

A build killed mid-way (SIGKILL, power, CI timeout) leaves its temporary sibling behind:
the training episodes alone are >1 GB, so each such leftover would pin disk for good.
Callers hold the cache's lock, so no other build is running: every sibling with this
entry's staging prefix is a leftover and is removed before the next build starts.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def staging_prefix(path: Path) -> str:
    return f".{path.name}.partial-"


def remove_stale_builds(path: Path, log=print) -> list[Path]:
    """Delete what killed builds of ``path`` left (call with the cache lock held)."""
    stale = sorted(p for p in path.parent.glob(staging_prefix(path) + "*") if p.is_dir())
    for p in stale:
        log(f"removing {p} (left by a build that did not finish)")
        shutil.rmtree(p)
    return stale


@contextmanager
def staging_dir(path: Path, log=print) -> Iterator[Path]:
    """A fresh temporary sibling of ``path`` (removed on exit), after sweeping leftovers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(path, log)
    with tempfile.TemporaryDirectory(prefix=staging_prefix(path), dir=path.parent) as tmp:
        yield Path(tmp)


def replace_with(path: Path, new: Path) -> None:
    """Move the finished build ``new`` to ``path``, replacing the old entry."""
    if path.exists():
        shutil.rmtree(path)
    shutil.move(str(new), path)
