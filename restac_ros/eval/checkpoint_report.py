"""What a policy checkpoint directory holds, read without loading its weights (restac-import).

Two layouts (docs/ARCHITECTURE.md, CONTRACT.md section 1):
  restac_ros: restac_config.json, params/, assets/<asset_id>/norm_stats.json,
              assets/tokenizer.model, policy_meta.json (restac-train-policy writes it)
  openpi:     params/ and assets/<asset_id>/norm_stats.json only (openpi's training and the
              ResTacVLA fork write it; asset ids are repo ids and may hold a "/")
The param tree is read from orbax's metadata (names, shapes, dtypes: no arrays) and
classified by `model.openpi_checkpoint.inspect_params` on zero-stride stand-ins, so a
multi-GB checkpoint is described in a second; the strict load is restac-import's next step.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Mapping

import numpy as np

from restac_ros.model import norm_stats as _ns

CONFIG_FILE = "restac_config.json"
META_FILE = "policy_meta.json"
TOKENIZER_FILE = "tokenizer.model"

class CheckpointLayoutError(ValueError):
    """The directory is not a checkpoint we can read; the message names the file."""


@dataclasses.dataclass(frozen=True)
class ParamTree:
    shapes: Mapping[str, tuple[int, ...]]  # "a/b/kernel" -> shape (leading "params/" dropped)
    dtypes: tuple[str, ...]

    @property
    def count(self) -> int:
        return int(sum(int(np.prod(s, dtype=np.int64)) for s in self.shapes.values()))

    def has(self, prefix: str) -> bool:
        return any(k == prefix or k.startswith(prefix + "/") for k in self.shapes)

    def shape(self, name: str) -> tuple[int, ...] | None:
        return self.shapes.get(name)


def read_param_tree(params_dir: pathlib.Path) -> ParamTree:
    """Names/shapes/dtypes of an orbax `params/` directory from its metadata."""
    import jax
    import orbax.checkpoint as ocp

    path = params_dir.absolute()
    if not path.is_dir():
        raise CheckpointLayoutError(f"{path}: params directory not found")
    try:
        with ocp.PyTreeCheckpointer() as ckptr:
            meta = ckptr.metadata(path)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointLayoutError(f"{path}: not an orbax checkpoint ({err})") from None
    tree = meta.item_metadata.tree if hasattr(meta, "item_metadata") else meta
    if not isinstance(tree, Mapping) or "params" not in tree:
        raise CheckpointLayoutError(f"{path}: orbax tree has no 'params' entry (openpi layout: "
                                    "{'params': {...}})")
    shapes, dtypes = {}, set()
    for keys, leaf in jax.tree_util.tree_leaves_with_path(tree["params"]):
        name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in keys)
        if name.endswith("/value"):  # saved from a whole nnx.State (openpi strips it too)
            name = name[: -len("/value")]
        shape = getattr(leaf, "shape", None)
        if shape is None:
            raise CheckpointLayoutError(f"{path}: param {name} has no array metadata")
        shapes[name] = tuple(int(s) for s in shape)
        dtypes.add(str(getattr(leaf, "dtype", "?")))
    if not shapes:
        raise CheckpointLayoutError(f"{path}: holds no params")
    return ParamTree(shapes, tuple(sorted(dtypes)))


def stand_in_params(tree: ParamTree) -> dict:
    """A nested dict of zero-stride arrays with the tree's shapes: enough for
    `model.openpi_checkpoint.inspect_params` (it reads shapes only), no memory."""
    import flax.traverse_util as traverse_util

    return traverse_util.unflatten_dict(
        {k: np.broadcast_to(np.float32(0), s) for k, s in tree.shapes.items()}, sep="/")


def stats_summary(stats: Mapping[str, _ns.NormStats]) -> dict:
    out = {}
    for key, s in stats.items():
        shape = list(np.shape(s.mean))
        out[key] = {"shape": shape, "quantiles": s.q01 is not None and s.q99 is not None}
    return out


@dataclasses.dataclass
class CheckpointReport:
    path: pathlib.Path
    layout: str  # "restac_ros" | "openpi"
    tree: ParamTree
    kind: str  # model.openpi_checkpoint.ParamsLayout.kind: openpi | fork_* | restac_ros
    tree_fields: dict  # Pi0ResTacConfig fields the param tree fixes
    asset_id: str
    norm_stats_path: pathlib.Path
    norm_stats: Mapping[str, _ns.NormStats]
    config: dict | None = None  # restac_config.json
    meta: dict = dataclasses.field(default_factory=dict)
    tokenizer: pathlib.Path | None = None
    vqvae_path: pathlib.Path | None = None
    vqvae_hparams: dict | None = None
    vqvae_params: int | None = None
    notes: list[str] = dataclasses.field(default_factory=list)  # checkpoint_notes

    @property
    def has_lora(self) -> bool:
        return any("lora" in k for k in self.tree.shapes)

    @property
    def fork_tree(self) -> bool:
        """Written by the ResTacVLA fork's classes (or configured as they are)."""
        fusion = str((self.config or {}).get("fusion", self.tree_fields.get("fusion", "")))
        return self.kind.startswith("fork_") or fusion.startswith("fork_")

    def to_json(self) -> dict:
        return {
            "path": str(self.path), "layout": self.layout, "kind": self.kind,
            "tree_fields": self.tree_fields, "fork_tree": self.fork_tree,
            "param_count": self.tree.count, "param_dtypes": list(self.tree.dtypes),
            "lora": self.has_lora,
            "asset_id": self.asset_id, "norm_stats_file": str(self.norm_stats_path),
            "norm_stats": stats_summary(self.norm_stats),
            "config": self.config, "tokenizer": str(self.tokenizer) if self.tokenizer else None,
            "vqvae": None if self.vqvae_path is None else {
                "path": str(self.vqvae_path), "hyper_parameters": self.vqvae_hparams,
                "param_count": self.vqvae_params},
            "implied_faults": list(self.notes),
        }


def _read_json(path: pathlib.Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointLayoutError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(data, dict):
        raise CheckpointLayoutError(f"{path}: top level must be an object")
    return data


def inspect_checkpoint(ckpt: pathlib.Path, asset_id: str | None = None) -> CheckpointReport:
    """Layout, param tree (what model it is), norm stats (validated), tokenizer of CKPT."""
    from restac_ros.model.openpi_checkpoint import find_norm_stats, inspect_params

    ckpt = ckpt.expanduser().absolute()
    if not ckpt.is_dir():
        raise CheckpointLayoutError(f"{ckpt}: checkpoint directory not found")
    if not (ckpt / "params").is_dir():
        raise CheckpointLayoutError(f"{ckpt / 'params'}: not found; a checkpoint directory "
                                    "holds params/ (orbax) and assets/<asset_id>/norm_stats.json")
    layout = "restac_ros" if (ckpt / CONFIG_FILE).is_file() else "openpi"
    config = _read_json(ckpt / CONFIG_FILE) if layout == "restac_ros" else None
    meta = _read_json(ckpt / META_FILE) if (ckpt / META_FILE).is_file() else {}
    tree = read_param_tree(ckpt / "params")
    found = inspect_params(stand_in_params(tree), where=ckpt / "params")
    stats_path, asset_id = find_norm_stats(ckpt, asset_id or meta.get("asset_id"))
    stats = _ns.load_norm_stats(stats_path)  # validated: finite, shapes agree, spread > 0
    for key in ("state", "actions"):
        if key not in stats:
            raise CheckpointLayoutError(f"{stats_path}: norm stats lack {key!r} "
                                        f"(have {sorted(stats)})")
    tok = ckpt / "assets" / TOKENIZER_FILE
    return CheckpointReport(ckpt, layout, tree, found.kind, dict(found.config_fields),
                            asset_id, stats_path, stats, config, meta,
                            tok if tok.is_file() else None)


def attach_vqvae(report: CheckpointReport, path: pathlib.Path) -> None:
    """Reads and validates the VQ-VAE .ckpt (strict layout, hparams) into the report."""
    from restac_ros.tactile.checkpoint import read_checkpoint

    state, hp, _ = read_checkpoint(path)
    report.vqvae_path = path.absolute()
    report.vqvae_hparams = hp.to_dict()
    report.vqvae_params = int(sum(int(np.prod(v.shape)) for v in state.values()))
