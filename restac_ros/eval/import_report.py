"""restac-import's human-readable summary of what it found and wrote."""

from __future__ import annotations

import json

import numpy as np

from restac_ros.core.restac_preset import RESTAC
from restac_ros.eval.checkpoint_report import CheckpointReport, stats_summary


def describe(report: CheckpointReport, cfg, pipeline: str, found: dict) -> list[str]:
    """Lines: checkpoint, backbone, actions, params, tactile, VQ-VAE, norm stats,
    tokenizer, pipeline, implications, the inference check and what was written."""
    lines = [
        f"checkpoint   {report.path} ({report.layout} layout, {report.kind} tree)",
        f"backbone     {cfg.backbone}: PaliGemma {cfg.paligemma_variant}, action expert "
        f"{cfg.action_expert_variant}, vision {cfg.vision_variant}, dtype {cfg.dtype}",
        f"actions      action_dim {cfg.action_dim}, horizon {cfg.action_horizon}, "
        f"max_token_len {cfg.max_token_len}"
        + (" (horizon and token length are not stored in an openpi tree)"
           if report.layout == "openpi" else ""),
        f"params       {report.tree.count:,} ({', '.join(report.tree.dtypes)}) in "
        f"{len(report.tree.shapes)} arrays"
        + (" incl. LoRA factors (merged into the base weights)" if report.has_lora else ""),
    ]
    if cfg.use_tactile:
        lines.append(f"tactile      fusion {cfg.fusion}, gate {cfg.gate}, use_gate "
                     f"{cfg.use_gate}, encoder {cfg.tactile_mode}, q_event {cfg.q_event_dim} "
                     f"-> {cfg.tactile_encoder_dim}, {cfg.num_fusion_heads} heads")
    else:
        lines.append("tactile      none (openpi's plain Pi0 backbone)")
    if report.vqvae_path is not None:
        lines.append(f"vqvae        {report.vqvae_path}: {report.vqvae_params:,} params")
        for key, value in sorted(report.vqvae_hparams.items()):
            lines.append(f"  {key:<19}{json.dumps(value, sort_keys=True)}")
    stats = ", ".join(f"{k} {s['shape']}{'' if s['quantiles'] else ' (no q01/q99)'}"
                      for k, s in stats_summary(report.norm_stats).items())
    lines.append(f"norm stats   {report.norm_stats_path} (asset_id {report.asset_id!r}): "
                 f"{stats}")
    lines.append(f"tokenizer    {found.get('tokenizer') or report.tokenizer or 'none'}")
    lines.append(f"pipeline     {pipeline}" + (" (the ResTacVLA fork's inputs, "
                                                 "config/restac_preset.yaml)"
                                                 if pipeline == RESTAC else ""))
    for note in report.notes:
        lines.append(f"implies      {note}")
    if "inference_check" in found:
        c = found["inference_check"]
        lines.append(f"inference    ok: {c['inference_ms']:.0f} ms, first action "
                     f"{np.round(c['first_action'], 4).tolist()}")
    if found["params_file"] == "(not written)":
        lines.append("params valid (nothing written: pass --out FILE)")
    else:
        lines.append(f"wrote        {found['params_file']} (validated; checkpoint_dir "
                     f"{found['checkpoint_dir']})")
    return lines
