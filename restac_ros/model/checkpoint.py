"""Params I/O with orbax in openpi's layout: `params/` is a PyTree checkpoint holding
`{"params": <nested dict of arrays>}` keyed by the model's attribute paths
(`PaliGemma/llm/...`, `action_in_proj/kernel`, ...).

Only `nnx.Param`s are saved; the frozen VQ-VAE comes from its own `.ckpt`.
"""

from __future__ import annotations

import pathlib
import re

import flax.nnx as nnx
import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from restac_ros.model import validation as _validation

# Params a base (backbone) checkpoint may lack; they keep their fresh init.
FRESH_PARAMS_REGEX = r".*lora.*|.*tactile.*|.*gate.*|.*fusion.*|.*cross_attn.*|.*time_mlp.*"


class CheckpointMismatchError(ValueError):
    """A checkpoint's params do not fit the model; the message names every offender."""


def model_params(model: nnx.Module) -> dict:
    """The model's trainable params as a nested pure dict of arrays."""
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def save_params(path: str | pathlib.Path, params: dict) -> None:
    """Writes `params` (nested dict of arrays) to the orbax directory `path` (must not exist)."""
    path = pathlib.Path(path).absolute()
    params = jax.tree.map(np.asarray, params)
    with ocp.PyTreeCheckpointer() as ckptr:
        ckptr.save(path, args=ocp.args.PyTreeSave({"params": params}))


def restore_params(path: str | pathlib.Path) -> dict:
    """Reads an orbax `params/` directory into a nested dict of numpy arrays (bit-exact)."""
    path = pathlib.Path(path).absolute()
    if not path.is_dir():
        raise FileNotFoundError(f"no params checkpoint directory at {path}")
    _validation.check_orbax_metadata(path)
    with ocp.PyTreeCheckpointer() as ckptr:
        meta = ckptr.metadata(path)
        tree = meta.item_metadata.tree if hasattr(meta, "item_metadata") else meta
        item = {"params": tree["params"]}
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
        params = ckptr.restore(path, args=ocp.args.PyTreeRestore(
            item=item, restore_args=restore_args))["params"]
    flat = traverse_util.flatten_dict(params)
    # Params saved from a whole nnx.State end in ".../value": strip that (as openpi does).
    if flat and all(k[-1] == "value" for k in flat):
        flat = {k[:-1]: v for k, v in flat.items()}
    _validation.check_finite_params(flat, path)
    return traverse_util.unflatten_dict(flat)


def save_model_params(path, model: nnx.Module) -> None:
    save_params(path, model_params(model))


def merge_params(model: nnx.Module, loaded: dict, *, fresh_regex: str | None = None) -> None:
    """Puts `loaded` into `model` in place.

    Every model param must be in `loaded` with the same shape, except (when
    `fresh_regex` is given) those whose "/"-joined path matches it, which keep
    their current values. Unexpected or mis-shaped params are always errors.
    Loaded values are cast to the model's param dtypes.
    """
    want = traverse_util.flatten_dict(model_params(model), sep="/")
    have = traverse_util.flatten_dict(loaded, sep="/")
    fresh = re.compile(fresh_regex) if fresh_regex else None
    missing = [k for k in want if k not in have and not (fresh and fresh.fullmatch(k))]
    unexpected = [k for k in have if k not in want]
    shapes = [f"{k}: checkpoint {tuple(np.shape(have[k]))} vs model {tuple(want[k].shape)}"
              for k in want if k in have and tuple(np.shape(have[k])) != tuple(want[k].shape)]
    problems = []
    if missing:
        problems.append("missing params: " + ", ".join(sorted(missing)))
    if unexpected:
        problems.append("unexpected params: " + ", ".join(sorted(unexpected)))
    if shapes:
        problems.append("mis-shaped params: " + "; ".join(sorted(shapes)))
    if problems:
        raise CheckpointMismatchError("checkpoint does not fit the model: " + " | ".join(problems))
    # Device arrays: numpy leaves would be copied to the device on every jitted call.
    merged = {k: (jnp.asarray(np.asarray(have[k]), dtype=v.dtype) if k in have else v)
              for k, v in want.items()}
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(state, traverse_util.unflatten_dict(merged, sep="/"))
    nnx.update(model, state)


def load_model_params(path, model: nnx.Module) -> None:
    """Restores a checkpoint written by `save_model_params` (every param must match)."""
    merge_params(model, restore_params(path))


def load_base_params(path, model: nnx.Module) -> None:
    """Loads an openpi base `params/` dir; tactile/fusion/gate/lora/time_mlp params may be
    absent and then keep their fresh init."""
    merge_params(model, restore_params(path), fresh_regex=FRESH_PARAMS_REGEX)
