"""openpi and ResTacVLA (fork) checkpoint directories, read as they are.

An openpi training step directory (or a released checkpoint) holds
  params/                          orbax PyTree {"params": tree} (keys may end in "value")
  assets/<asset_id>/norm_stats.json   asset_id = the data config's, often "org/name"
and no restac_config.json. The model config is given by the caller or read off the
param tree (`inspect_params`): the tree fixes the backbone, the Gemma/SigLIP variants,
action_dim, the tactile branch (fork Pi0_ResTac, fork TokenInAE or ours) and its
widths; it does not fix action_horizon or max_token_len (openpi's defaults 50 and
48 / 200 unless given) nor the fork's `use_gate` (default True).

Public API (used by `restac-import`):
  inspect_params(params) -> ParamsLayout     what the tree is (kind, variants, widths)
  merge_lora(params) -> params               folds openpi LoRA weights into the base
  config_from_params(params, **overrides)    -> Pi0ResTacConfig
  find_norm_stats(directory, asset_id=None)  -> (path, asset_id)
  checkpoint_notes(config, params=None)      what a fork checkpoint implies (list of str)
  load_openpi_policy(directory, config=None, ...) -> RestacPolicy
"""

from __future__ import annotations

import dataclasses
import pathlib

import flax.traverse_util as traverse_util
import numpy as np

from restac_ros.model import checkpoint as _ckpt
from restac_ros.model import gemma as _gemma
from restac_ros.model import norm_stats as _ns
from restac_ros.model import siglip as _siglip
from restac_ros.model.config import Pi0ResTacConfig


@dataclasses.dataclass(frozen=True)
class ParamsLayout:
    kind: str  # "openpi" | "fork_restac" | "fork_token_in_ae" | "restac_ros"
    backbone: str  # "pi0" | "pi05"
    paligemma_variant: str
    action_expert_variant: str
    vision_variant: str
    action_dim: int
    vocab_size: int
    num_params: int
    config_fields: dict  # Pi0ResTacConfig fields the tree fixes
    lora: bool = False  # LoRA params present (`merge_lora` folds them in at load)

    def config(self, **overrides) -> Pi0ResTacConfig:
        return Pi0ResTacConfig(**{**self.config_fields, **overrides})

    def summary(self) -> list[str]:
        """Human-readable lines (what `restac-import` prints)."""
        f = self.config_fields
        lines = [f"checkpoint kind: {self.kind}" + (" (LoRA fine-tune)" if self.lora else ""),
                 f"backbone: {self.backbone}; Gemma {self.paligemma_variant} + action expert "
                 f"{self.action_expert_variant}; SigLIP {self.vision_variant}",
                 f"action_dim: {self.action_dim}; vocab: {self.vocab_size}; "
                 f"params: {self.num_params:,}"]
        if f.get("use_tactile", True):
            widths = {k: f[k] for k in ("q_event_dim", "tactile_encoder_dim", "fusion_dim",
                                        "num_fusion_heads") if k in f}
            lines.append(f"tactile: encoder {f['tactile_encoder_mode']}, fusion "
                         f"{f['fusion']}, gate {f['gate']}, {widths}")
        return lines


def _shape(flat, key, where):
    if key not in flat:
        raise _ckpt.CheckpointMismatchError(f"{where}: no param {key!r}")
    return tuple(np.shape(flat[key]))


def _match(variants: dict, cfg, what: str, where):
    for name, v in variants.items():
        if v == cfg:
            return name
    raise _ckpt.CheckpointMismatchError(f"{where}: {what} {cfg} matches no known variant "
                                        f"({sorted(variants)})")


def _gemma_variant(flat, i: int, where) -> str:
    s = "" if i == 0 else f"_{i}"
    d, n, w, h = _shape(flat, f"PaliGemma/llm/layers/attn/q_einsum{s}/w", where)
    k = _shape(flat, f"PaliGemma/llm/layers/attn/kv_einsum{s}/w", where)[2]
    m = _shape(flat, f"PaliGemma/llm/layers/mlp{s}/linear", where)[1]
    return _match(_gemma.VARIANTS, _gemma.GemmaConfig(w, d, m, n, k, h), f"Gemma expert {i}",
                  where)


def _siglip_variant(flat, where) -> str:
    p = "PaliGemma/img/"
    patch, _, _, w = _shape(flat, p + "embedding/kernel", where)
    d, _, m = _shape(flat, p + "Transformer/encoderblock/MlpBlock_0/Dense_0/kernel", where)
    nh = _shape(flat, p + "Transformer/encoderblock/MultiHeadDotProductAttention_0/query/kernel",
                where)[2]
    return _match(_siglip.VARIANTS, _siglip.SiglipConfig(w, d, m, nh, patch), "SigLIP", where)


def _tactile_fields(flat, where) -> tuple[str, dict]:
    """-> (kind, config fields) of the tactile branch."""
    has = lambda prefix: any(k.startswith(prefix) for k in flat)
    if not has("gate/") and not has("tactile_"):
        return "openpi", dict(use_tactile=False)
    f = {}
    if "gate/proj/kernel" in flat:
        f["gate"] = "fork_learnable"
    elif "gate/linear/kernel" in flat:
        f["gate"] = "learnable"
    elif "gate/content_proj/kernel" in flat:
        f["gate"] = "factorized"
    elif "gate/logvar_center" in flat:
        f["gate"] = "fork_necessity" if _shape(flat, "gate/logvar_center", where) == () \
            else "necessity"
    else:
        raise _ckpt.CheckpointMismatchError(f"{where}: tactile params but no known gate")
    fork = f["gate"].startswith("fork_")
    if "tactile_token_proj/kernel" in flat:
        q, _ = _shape(flat, "tactile_token_proj/kernel", where)
        return "fork_token_in_ae", dict(f, fusion="fork_token_in_ae", q_event_dim=q,
                                        tactile_encoder_mode="vqvae")
    if "tactile_encoder/project_vq/kernel" in flat:
        q, e = _shape(flat, "tactile_encoder/project_vq/kernel", where)
        f |= dict(tactile_encoder_mode="vqvae", q_event_dim=q, tactile_encoder_dim=e)
    else:
        e = _shape(flat, "tactile_encoder/feature_proj/kernel", where)[1]
        f |= dict(tactile_encoder_mode="placeholder", tactile_encoder_dim=e)
    if "fusion_action_queries" in flat:
        h, fd = _shape(flat, "fusion_action_queries", where)
        t = _shape(flat, "tactile_to_vlm_proj/kernel", where)[1] // fd
        f |= dict(fusion="two_stage", fusion_dim=fd, action_horizon=h, num_tactile_tokens=t)
        f["num_fusion_heads"] = _shape(flat, "fusion_cross_attn_1/query/kernel", where)[1]
        return "restac_ros", f
    _, heads, hd = _shape(flat, "fusion_self_attn/query/kernel", where)
    f["num_fusion_heads"] = heads
    if fork:
        return "fork_restac", dict(f, fusion="fork_prefix_self_attn")
    return "restac_ros", dict(f, fusion="prefix_self_attn", fusion_dim=heads * hd)


def inspect_params(params: dict, *, where="params") -> ParamsLayout:
    """Reads the model layout off a restored param tree (nested dict of arrays)."""
    flat = traverse_util.flatten_dict(params, sep="/")
    lora = any("lora" in k for k in flat)
    pg, ae = _gemma_variant(flat, 0, where), _gemma_variant(flat, 1, where)
    vision = _siglip_variant(flat, where)
    a = _shape(flat, "action_in_proj/kernel", where)[0]
    vocab = _shape(flat, "PaliGemma/llm/embedder/input_embedding", where)[0]
    backbone = "pi05" if "time_mlp_in/kernel" in flat else "pi0"
    kind, tactile = _tactile_fields(flat, where)
    fields = dict(backbone=backbone, paligemma_variant=pg, action_expert_variant=ae,
                  vision_variant=vision, action_dim=a, vocab_size=vocab, **tactile)
    if kind.startswith("fork_"):
        fields |= dict(use_sparse_loss=False)  # the fork's default
    n = int(sum(np.size(v) for v in flat.values()))
    return ParamsLayout(kind, backbone, pg, ae, vision, a, vocab, n, fields, lora)


def merge_lora(params: dict, *, attn_scale: float = 1.0, where="params") -> dict:
    """Folds openpi LoRA params into their base weights: w + scale * lora_a @ lora_b over
    the last two axes (`q_einsum/lora_a` with `q_einsum/w`, `mlp/linear_lora_a` with
    `mlp/linear`, ...). openpi's gemma_2b_lora / gemma_300m_lora have alpha = rank, so
    attention's scale alpha/rank is 1 (the tree does not store it); its FFN LoRA has no
    scale. The sum is the same function as openpi's x@w + (x@a)@b up to f32 rounding."""
    flat = traverse_util.flatten_dict(params, sep="/")
    out = {k: v for k, v in flat.items() if "lora_" not in k.rsplit("/", 1)[-1]}
    for key in sorted(k for k in flat if k.endswith("lora_a")):
        base_key = key[: -len("/lora_a")] + "/w" if key.endswith("/lora_a") else \
            key[: -len("_lora_a")]
        b_key = key[: -len("lora_a")] + "lora_b"
        if base_key not in flat or b_key not in flat:
            raise _ckpt.CheckpointMismatchError(f"{where}: {key} without {base_key} / {b_key}")
        w = np.asarray(flat[base_key])
        b = np.asarray(flat[b_key], np.float32)
        if "attn_vec_einsum" in key:
            # openpi's LoRA equations for "BTNH,NHD->BTD" sum the heads in both factors
            # ("BTNH,NHL->BTL" then "BTL,NLD->BTD"): lora_b's heads add up.
            b = b.sum(axis=-3, keepdims=True)
        delta = np.matmul(np.asarray(flat[key], np.float32), b)
        if delta.shape != w.shape:
            raise _ckpt.CheckpointMismatchError(
                f"{where}: {key} @ lora_b is {delta.shape}, {base_key} is {w.shape}")
        scale = attn_scale if "/attn/" in key else 1.0
        out[base_key] = (w.astype(np.float32) + scale * delta).astype(w.dtype)
    extra = sorted(k for k in out if "lora" in k)
    if extra:
        raise _ckpt.CheckpointMismatchError(f"{where}: LoRA params not understood: {extra}")
    return traverse_util.unflatten_dict(out, sep="/")


def config_from_params(params: dict, **overrides) -> Pi0ResTacConfig:
    """The config a param tree implies; `overrides` add what the tree does not fix
    (action_horizon, max_token_len, residual_vqvae_checkpoint, use_gate, dtype)."""
    return inspect_params(params).config(**overrides)


def find_norm_stats(directory, asset_id: str | None = None) -> tuple[pathlib.Path, str]:
    """-> (norm_stats.json path, asset id) under DIR/assets/. Without `asset_id` the
    directory must hold exactly one."""
    assets = pathlib.Path(directory).absolute() / "assets"
    if asset_id is not None:
        path = assets / asset_id / _ns.FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (asset id {asset_id!r}); present: "
                                    f"{_asset_ids(assets) or 'none'}")
        return path, asset_id
    found = _asset_ids(assets)
    if len(found) == 1:
        return assets / found[0] / _ns.FILE_NAME, found[0]
    if not found:
        raise FileNotFoundError(
            f"no {_ns.FILE_NAME} under {assets}: give the norm stats file. (The fork's "
            "configs use an absolute dataset path as repo_id and hence as asset id; openpi "
            "then writes the stats to that absolute path, outside the checkpoint.)")
    raise FileNotFoundError(f"several norm stats under {assets}: {found}; pick an asset id")


def _asset_ids(assets: pathlib.Path) -> list[str]:
    if not assets.is_dir():
        return []
    return sorted(str(p.parent.relative_to(assets)) for p in assets.rglob(_ns.FILE_NAME))


_FORK_GATE_INIT = {"logvar_center": -9.5, "sensitivity": 5.0, "output_scale": 0.01}


def checkpoint_notes(config: Pi0ResTacConfig, params: dict | None = None) -> list[str]:
    """What a checkpoint of this config (and tree) implies, for the user to read."""
    notes = []
    flat = traverse_util.flatten_dict(params, sep="/") if params is not None else {}
    if any("lora" in k for k in flat):
        notes.append("LoRA fine-tune: the lora_a/lora_b weights are merged into the base "
                     "weights at load (openpi's alpha = rank: attention scale 1).")
    if not config.use_tactile:
        return notes + ["openpi backbone without a tactile branch: runs as openpi's Pi0 "
                        f"({'pi0.5' if config.pi05 else 'pi0'})."]
    if not config.fusion.startswith("fork_"):
        return notes
    notes += [
        "Trained with the published ResTacVLA fork: openpi's preprocess_observation keeps "
        "only base_0_rgb/left_wrist_0_rgb/right_wrist_0_rgb and drops 'tactile_0' and "
        "'action_prev', so the fork's compute_loss fed the tactile branch zeros (features "
        "0, gate 0): unless the training code was patched, the fine-tune learned the "
        "backbone alone and the tactile params (project_vq, tactile_to_vlm_proj, "
        "fusion_self_attn / tactile_token_proj, gate) never received a gradient.",
        "The published sample_actions raises \"requires tactile image ('tactile_0')\" for "
        "the same reason; restac_ros runs the fork's forward pass as written instead.",
        "The fork's NecessityGate fails under jit ('... is not a valid JAX type': it passes "
        "nnx.Param objects to jitted jax.nn functions); restac_ros computes the same "
        "formula (softplus(output_scale) + 1e-6) under jit.",
    ]
    if config.fusion == "fork_prefix_self_attn":
        notes.append("fusion_self_attn attends over the padded prompt tokens too (no mask), "
                     "as the fork does: actions depend on the padding length.")
    if config.fusion == "fork_token_in_ae":
        notes.append("The fork marks the surprise token ar=False, so in its compute_loss the "
                     "prefix attends to it (not at inference); restac_ros uses the inference "
                     "masks in both.")
    if params is not None and config.gate == "fork_necessity":
        gate = params.get("gate", {})
        vals = {k: float(np.asarray(gate[k])) for k in _FORK_GATE_INIT if k in gate}
        if vals and all(abs(vals[k] - v) < 1e-4 for k, v in _FORK_GATE_INIT.items()
                        if k in vals):
            notes.append(
                "The gate params are still at their initial values "
                f"{_FORK_GATE_INIT}: consistent with an untrained tactile branch. Its gate "
                "is then ~0.35 at logvar = -9.5 (softplus(0.01) * 0.5), not ~0: running the "
                "tactile branch adds an untrained correction to the actions.")
    return notes


def load_openpi_policy(directory, config: Pi0ResTacConfig | None = None, *,
                       asset_id: str | None = None, norm_stats_path=None,
                       tokenizer_path=None, dtype: str | None = None, num_steps: int = 10,
                       external_q_event: bool = False, **config_overrides):
    """RestacPolicy from an openpi / ResTacVLA checkpoint directory (see module doc).
    `config`: the model config (default: `config_from_params(tree, **config_overrides)`).
    A fork checkpoint needs `residual_vqvae_checkpoint` (the VQ-VAE .ckpt it was trained
    with) unless `external_q_event` (the caller feeds q_event/logvar to the model)."""
    from restac_ros.model.policy import TOKENIZER_FILE, RestacPolicy, build_model
    from restac_ros.model.tokenizer import PromptTokenizer

    d = pathlib.Path(directory).absolute()
    params = _ckpt.restore_params(d / "params")
    if inspect_params(params, where=d / "params").lora:
        params = merge_lora(params, where=d / "params")
    if config is None:
        config = inspect_params(params, where=d / "params").config(**config_overrides)
    elif config_overrides:
        config = dataclasses.replace(config, **config_overrides)
    if dtype is not None:
        config = dataclasses.replace(config, dtype=dtype)
    if (config.use_tactile and config.tactile_mode == "vqvae"
            and not config.residual_vqvae_checkpoint and not external_q_event):
        raise ValueError(f"{d}: this checkpoint's tactile branch runs on a Residual VQ-VAE's "
                         "q_event: give residual_vqvae_checkpoint (the .ckpt it was trained "
                         "with)")
    if norm_stats_path is None:
        norm_stats_path, asset_id = find_norm_stats(d, asset_id)
    stats = _ns.load_norm_stats(norm_stats_path)
    tok = pathlib.Path(tokenizer_path) if tokenizer_path else d / "assets" / TOKENIZER_FILE
    tokenizer = PromptTokenizer(tok, config.max_token_len) if tok.is_file() else None
    model = build_model(config, params, source=d / "params")
    meta = {"asset_id": asset_id, "source": "openpi"}
    return RestacPolicy(model, norm_stats=stats, tokenizer=tokenizer, meta=meta,
                        num_steps=num_steps)
