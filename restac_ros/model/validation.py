"""Load-time checks of a policy checkpoint's files: nothing unproven reaches an action.

A checkpoint is refused, with the file and the parameter named, when a JSON file does
not parse (truncated `restac_config.json`, `norm_stats.json`, `policy_meta.json`, orbax
`_METADATA`), a weight is NaN/inf, a norm stat is NaN/inf, or the stats the model
normalises with have no spread (z-score: std <= 0; quantile: q99 - q01 <= 0): both divide
by it (+1e-6), turning every observation into NaN or 1e6-scaled noise.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

ORBAX_METADATA = "_METADATA"
# Less spread than this is none: normalising divides by spread + 1e-6, so a std of 1e-16
# (a constant column in float64) amplifies like 0 does.
MIN_SPREAD = 1e-8


class CheckpointError(ValueError):
    """A checkpoint file that must not be used; the message names the file and the problem."""


def _index(flat_index: int, shape: tuple[int, ...]) -> str:
    return ", ".join(str(int(i)) for i in np.unravel_index(flat_index, shape)) if shape else ""


def read_json(path: str | pathlib.Path, *, expect: type = dict) -> Any:
    """Parses a JSON file; any failure is a CheckpointError naming the file."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{path}: not UTF-8 text (bad byte at offset {err.start})") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read: {err.strerror or err}") from None
    if not text.strip():
        raise CheckpointError(f"{path}: empty file (truncated write?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        ends_early = err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated")
        hint = " (file truncated?)" if ends_early else ""
        raise CheckpointError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: "
                              f"{err.msg}{hint}") from None
    if not isinstance(data, expect):
        raise CheckpointError(f"{path}: expected a JSON {expect.__name__}, "
                              f"got {type(data).__name__}")
    return data


@contextlib.contextmanager
def naming_file(path: str | pathlib.Path) -> Iterator[None]:
    """Errors raised while interpreting `path`'s content become CheckpointErrors naming it."""
    try:
        yield
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError) as err:
        msg = str(err) if not isinstance(err, KeyError) else f"missing key {err}"
        raise CheckpointError(msg if str(path) in msg else f"{path}: {msg}") from None


def check_orbax_metadata(directory: str | pathlib.Path) -> None:
    """An orbax PyTree directory's `_METADATA` must exist and parse (orbax itself then
    fails with "'NoneType' object has no attribute 'tree'")."""
    path = pathlib.Path(directory) / ORBAX_METADATA
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not an orbax PyTree checkpoint, or a save "
                              "that did not finish)")
    data = read_json(path)
    if not isinstance(data.get("tree_metadata"), dict):
        raise CheckpointError(f"{path}: no 'tree_metadata' object (not an orbax PyTree "
                              "checkpoint's metadata)")


def _as_float(value) -> np.ndarray | None:
    """Float view of an array (bf16 and other ml_dtypes as float32); None for ints/bools."""
    arr = np.asarray(value)
    if arr.dtype.kind in "biu":
        return None
    return arr if arr.dtype.kind in "fc" else arr.astype(np.float32)


def check_finite_params(params: Mapping, source: str | pathlib.Path) -> None:
    """Every float leaf of a (flat or nested) param dict is finite; else a CheckpointError
    naming `source`, the param path and the first bad element."""
    flat = _flatten(params)
    for key, value in flat.items():
        arr = _as_float(value)
        # One float64 sum is far cheaper than an isfinite mask over billions of weights;
        # NaN and inf survive the sum, finite float32 values cannot overflow it.
        if arr is None or arr.size == 0 or np.isfinite(arr.sum(dtype=np.float64)):
            continue
        bad = ~np.isfinite(arr)
        first = int(np.flatnonzero(bad)[0])
        raise CheckpointError(
            f"{source}: param {key}[{_index(first, arr.shape)}] is {arr.flat[first]} "
            f"({int(bad.sum())} of {arr.size} values non-finite)")


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        name = "/".join(map(str, k)) if isinstance(k, tuple) else str(k)
        name = f"{prefix}/{name}" if prefix else name
        if isinstance(v, Mapping):
            out.update(_flatten(v, name))
        else:
            out[name] = v
    return out


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def check_norm_stats(stats: Mapping[str, Any], path: str | pathlib.Path, *,
                     use_quantiles: bool | None = None) -> None:
    """{name: NormStats}: shapes agree and every value is finite; with use_quantiles False
    (z-score, pi0) std > 0, with True (pi0.5) q01/q99 present and q99 - q01 > 0 (None: the
    normalisation is not known yet, e.g. at file load). Else a CheckpointError such as
    `.../norm_stats.json: actions.std[3] is 0.0 (must be > 0)`. The statistic a model does
    not normalise with may have no spread (a gripper that rarely moves has q01 == q99)."""
    if not stats:
        raise CheckpointError(f"{path}: holds no norm stats")
    for name, s in stats.items():
        fields = {f: getattr(s, f) for f in ("mean", "std", "q01", "q99")
                  if getattr(s, f) is not None}
        shape = np.shape(fields["mean"])
        if len(shape) not in (1, 2) or 0 in shape:
            raise CheckpointError(f"{path}: {name}.mean has shape {shape}, expected [D] or "
                                  "[H, D] with D > 0")
        for f, v in fields.items():
            arr = np.asarray(v)
            if arr.shape != shape:
                raise CheckpointError(f"{path}: {name}.{f} has shape {arr.shape}, "
                                      f"{name}.mean {shape}")
            if (i := _first(~np.isfinite(arr))) is not None:
                raise CheckpointError(f"{path}: {name}.{f}[{_index(i, shape)}] is {arr.flat[i]}")
        std = np.asarray(fields["std"])
        # All-zero dims are zero padding (the ResTacVLA fork pads the state to action_dim
        # before computing its stats); openpi's +1e-6 keeps them finite.
        padding = np.all([np.asarray(v) == 0 for v in fields.values()], axis=0)
        if use_quantiles is False and \
                (i := _first(~((std > MIN_SPREAD) | padding))) is not None:
            raise CheckpointError(f"{path}: {name}.std[{_index(i, shape)}] is {std.flat[i]:g} "
                                  f"(must be > {MIN_SPREAD:g})")
        if use_quantiles and ("q01" not in fields or "q99" not in fields):
            raise CheckpointError(f"{path}: {name} lacks q01/q99, which quantile "
                                  "normalisation (pi0.5) needs")
        if use_quantiles:
            spread = np.asarray(fields["q99"], np.float64) - np.asarray(fields["q01"], np.float64)
            if (i := _first(~((spread > MIN_SPREAD) | padding))) is not None:
                at = _index(i, shape)
                raise CheckpointError(f"{path}: {name}.q99[{at}] - {name}.q01[{at}] is "
                                      f"{spread.flat[i]:g} (quantile spread must be > "
                                      f"{MIN_SPREAD:g})")
