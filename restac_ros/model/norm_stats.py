"""openpi `norm_stats.json` I/O and (un)normalisation, in numpy.

File format: {"norm_stats": {"state": {"mean": [...], "std": [...], "q01": [...],
"q99": [...]}, "actions": {...}}}. Stats may cover fewer dims than the padded
arrays (robot dims vs action_dim): only the leading dims are transformed and the
zero padding is left alone.

Per-horizon-step action stats (an extension of the openpi format): "actions"
may hold [H][D] nested lists (one row per chunk step) instead of [D]; they
broadcast over action chunks [..., H, D]. Delta actions grow with the step
(step 1 moves ~5x less than step 10), so one pooled std would leave the first
steps' targets tiny in normalised units.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from restac_ros.model import validation as _validation

FILE_NAME = "norm_stats.json"


@dataclasses.dataclass(frozen=True)
class NormStats:
    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray | None = None
    q99: np.ndarray | None = None

    def to_json(self) -> dict:
        out = {"mean": self.mean.tolist(), "std": self.std.tolist()}
        if self.q01 is not None:
            out["q01"] = self.q01.tolist()
        if self.q99 is not None:
            out["q99"] = self.q99.tolist()
        return out

    @classmethod
    def from_json(cls, d: dict) -> NormStats:
        arr = lambda k: None if d.get(k) is None else np.asarray(d[k], np.float32)
        if arr("mean") is None or arr("std") is None:
            raise ValueError("norm stats need 'mean' and 'std'")
        return cls(arr("mean"), arr("std"), arr("q01"), arr("q99"))


def compute_norm_stats(x: np.ndarray, *, per_step: bool = False) -> NormStats:
    """x [N, D] (or chunks [N, H, D]) -> stats over the samples (mean/std and 1%/99%
    quantiles): [D] pooled over every leading axis, or [H, D] with per_step."""
    x = np.asarray(x, np.float64)
    if per_step:
        if x.ndim != 3:
            raise ValueError(f"per-step stats need chunks [N, H, D], got shape {x.shape}")
    else:
        x = x.reshape(-1, x.shape[-1])
    f = lambda v: np.asarray(v, np.float32)
    return NormStats(f(x.mean(0)), f(x.std(0)), f(np.quantile(x, 0.01, axis=0)),
                     f(np.quantile(x, 0.99, axis=0)))


def _path(path: str | pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(path)
    return path / FILE_NAME if path.is_dir() or path.suffix != ".json" else path


def load_norm_stats(path: str | pathlib.Path) -> dict[str, NormStats]:
    """`path`: a norm_stats.json file or the asset directory holding it."""
    path = _path(path)
    if not path.is_file():
        raise FileNotFoundError(f"norm stats file not found: {path}")
    data = _validation.read_json(path)
    if "norm_stats" not in data:
        raise ValueError(f"{path}: not an openpi norm stats file (no 'norm_stats' key)")
    with _validation.naming_file(path):
        stats = {k: NormStats.from_json(v) for k, v in data["norm_stats"].items()}
    _validation.check_norm_stats(stats, path)
    return stats


def save_norm_stats(path: str | pathlib.Path, stats: dict[str, NormStats]) -> pathlib.Path:
    path = _path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"norm_stats": {k: v.to_json() for k, v in stats.items()}}
    path.write_text(json.dumps(data, indent=2))
    return path


def _lead(x: np.ndarray, stats: NormStats, use_quantiles: bool):
    n = min(x.shape[-1], stats.mean.shape[-1])
    if stats.mean.ndim == 2 and (x.ndim < 2 or x.shape[-2] != stats.mean.shape[0]):
        raise ValueError(f"per-step norm stats are for {stats.mean.shape[0]}-step chunks, "
                         f"got data of shape {x.shape}")
    if use_quantiles and (stats.q01 is None or stats.q99 is None):
        raise ValueError("quantile normalisation (pi0.5) needs q01/q99 in the norm stats")
    return n


def normalize(x, stats: NormStats, *, use_quantiles: bool) -> np.ndarray:
    """z-score (pi0): (x-mean)/(std+1e-6); quantile (pi0.5): (x-q01)/(q99-q01+1e-6)*2-1."""
    x = np.array(x, np.float32, copy=True)
    n = _lead(x, stats, use_quantiles)
    v = x[..., :n]
    if use_quantiles:
        lo, hi = stats.q01[..., :n], stats.q99[..., :n]
        x[..., :n] = (v - lo) / (hi - lo + 1e-6) * 2.0 - 1.0
    else:
        x[..., :n] = (v - stats.mean[..., :n]) / (stats.std[..., :n] + 1e-6)
    return x


def unnormalize(x, stats: NormStats, *, use_quantiles: bool) -> np.ndarray:
    """Inverse of `normalize` on the leading stats dims."""
    x = np.array(x, np.float32, copy=True)
    n = _lead(x, stats, use_quantiles)
    v = x[..., :n]
    if use_quantiles:
        lo, hi = stats.q01[..., :n], stats.q99[..., :n]
        x[..., :n] = (v + 1.0) / 2.0 * (hi - lo + 1e-6) + lo
    else:
        x[..., :n] = v * (stats.std[..., :n] + 1e-6) + stats.mean[..., :n]
    return x
