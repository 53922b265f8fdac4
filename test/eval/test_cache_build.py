"""Cache builds: a killed build's temporary sibling is swept by the next build."""

from __future__ import annotations

import json

import pytest

from restac_ros.eval import cache_build
from restac_ros.eval.demo_touch import KEY_FILE, _build_stage


def _leftover(path, name="abc123"):
    d = path.parent / f"{cache_build.staging_prefix(path)}{name}"
    (d / "episodes").mkdir(parents=True)
    (d / "episodes" / "big.bin").write_bytes(b"x" * 1024)
    return d


def test_next_build_sweeps_what_a_killed_build_left(tmp_path):
    entry = tmp_path / "vqvae"
    stale = [_leftover(entry, "a"), _leftover(entry, "b")]
    other = _leftover(tmp_path / "policy")  # another entry's leftover is not this build's
    unrelated = tmp_path / ".vqvae_notes"
    unrelated.mkdir()
    logs = []
    _build_stage(entry, "k1", lambda d: (d / "w.bin").write_bytes(b"w") and {}, logs.append)
    assert json.loads((entry / KEY_FILE).read_text())["key"] == "k1"
    assert (entry / "w.bin").read_bytes() == b"w"
    assert not any(d.exists() for d in stale)
    assert other.exists() and unrelated.exists()
    assert sum("did not finish" in m for m in logs) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".vqvae_notes", other.name, "vqvae"])


def test_failed_build_leaves_nothing_and_keeps_the_old_entry(tmp_path):
    entry = tmp_path / "policy"
    entry.mkdir()
    (entry / "old").write_text("old")
    with pytest.raises(RuntimeError, match="boom"), \
            cache_build.staging_dir(entry, log=lambda m: None) as tmp:
        (tmp / "half").write_text("half")
        raise RuntimeError("boom")
    assert (entry / "old").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["policy"]


def test_replace_with_swaps_in_the_new_build(tmp_path):
    entry = tmp_path / "checkpoint"
    entry.mkdir()
    (entry / "old").write_text("old")
    with cache_build.staging_dir(entry, log=lambda m: None) as tmp:
        new = tmp / "checkpoint"
        new.mkdir()
        (new / "new").write_text("new")
        cache_build.replace_with(entry, new)
    assert [p.name for p in entry.iterdir()] == ["new"]
    assert cache_build.remove_stale_builds(entry, log=lambda m: None) == []
