"""`restac-import CKPT_DIR [--vqvae FILE.ckpt] [--out my.yaml]`: check a user's
openpi / ResTacVLA / restac_ros checkpoint and write the params file that policy_node,
restac-bringup and restac-eval run it with.

Checks, in order: the directory layout and param tree (orbax metadata: which model, its
variants and widths), the norm stats (finite, shapes, quantiles), the Residual VQ-VAE
.ckpt (strict published layout and hyper-parameters, its q_event width against the
policy's), the strict load of every weight into the model (the loader policy_node uses),
then the written params (every policy_node parameter, the observation spec and pipeline
against the norm stats). `--check-inference` runs one synthetic observation through the
configured preprocessing and the policy.

Output: `--out my.yaml` is config/policy.yaml (or --params) with the checkpoint and, for
trees the ResTacVLA fork wrote, the `restac` preset (config/restac_preset.yaml) applied;
restac_ros checkpoints bring their action space, joints, dt and camera slots. An openpi
directory (no restac_config.json), or a VQ-VAE other than the checkpoint's own, also
gets `my.checkpoint/` next to it: restac_config.json (the model config: what the tree
fixes plus --action-horizon / --max-token-len / the VQ-VAE), policy_meta.json, and
symlinks to the checkpoint's params/, its norm stats and the tokenizer. Nothing is
written into CKPT_DIR, and nothing is written at all unless it validates.

Exit codes: 0 ok; 2 usage (including a missing --vqvae / --tokenizer the checkpoint
needs); 3 the checkpoint or VQ-VAE file is unusable; 4 the params (base file, preset,
output) are unusable; 5 the inference check failed. Errors are one line naming the file
and the parameter.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import sys

import numpy as np
import yaml

from restac_ros.core.observation import JointSample, RawSample
from restac_ros.core.observation_spec import DEFAULT_CAMERA_STREAMS, delta_action_mask_from_meta
from restac_ros.core.restac_preset import DEFAULT, PIPELINES, RESTAC, resolve_delta_mask
from restac_ros.eval import params as _params
from restac_ros.eval.checkpoint_report import (
    CONFIG_FILE,
    META_FILE,
    TOKENIZER_FILE,
    CheckpointReport,
    attach_vqvae,
    inspect_checkpoint,
)
from restac_ros.eval.import_report import describe
from restac_ros.paths import config_path

EXIT_OK, EXIT_USAGE, EXIT_CHECKPOINT, EXIT_CONFIG, EXIT_INFERENCE = 0, 2, 3, 4, 5
PRESET_FILE = "restac_preset.yaml"
OPENPI_HORIZON = 50  # openpi's (and the fork's) default action_horizon


class UsageError(ValueError):
    """An input the checkpoint needs was not given."""


class ConfigError(ValueError):
    """The params to write (or the files they come from) cannot work with the checkpoint."""


class InferenceCheckError(RuntimeError):
    pass


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="restac-import", description=__doc__.split("\n\n")[0],
                                 epilog="exit codes: 0 ok, 2 usage, 3 checkpoint/VQ-VAE file, "
                                        "4 params file, 5 inference check")
    ap.add_argument("checkpoint", type=pathlib.Path,
                    help="checkpoint directory (params/, assets/<asset_id>/norm_stats.json)")
    ap.add_argument("--vqvae", type=pathlib.Path, default=None,
                    help="Residual VQ-VAE .ckpt (default: the one inside a restac_ros "
                         "checkpoint; required for ResTacVLA fork trees)")
    ap.add_argument("--tokenizer", type=pathlib.Path, default=None,
                    help="sentencepiece model (openpi checkpoints carry none: PaliGemma's "
                         "paligemma_tokenizer.model)")
    ap.add_argument("--out", type=pathlib.Path, default=None,
                    help="params file to write (default: only check and report)")
    ap.add_argument("--params", type=pathlib.Path, default=None,
                    help="base params file (default: the package's config/policy.yaml)")
    ap.add_argument("--preset", choices=("auto", *PIPELINES), default="auto",
                    help="input pipeline; restac = the ResTacVLA fork's (auto: restac for "
                         "trees the fork wrote, else default)")
    ap.add_argument("--asset-id", default=None,
                    help="assets/<asset_id> holding norm_stats.json (default: the only one)")
    ap.add_argument("--action-horizon", type=int, default=None,
                    help=f"openpi checkpoints: chunk length (not in the tree; default "
                         f"{OPENPI_HORIZON})")
    ap.add_argument("--max-token-len", type=int, default=None,
                    help="openpi checkpoints: prompt tokens (default 48 pi0, 200 pi0.5)")
    ap.add_argument("--check-inference", action="store_true",
                    help="also run one synthetic observation through preprocessing + policy")
    ap.add_argument("--force", action="store_true",
                    help="overwrite --out (and a checkpoint view restac-import wrote)")
    ap.add_argument("--json", action="store_true", help="print the findings as JSON")
    return ap


# -- the model config ------------------------------------------------------------
def own_vqvae(report: CheckpointReport) -> pathlib.Path | None:
    own = (report.config or {}).get("residual_vqvae_checkpoint")
    if not own:
        return None
    path = pathlib.Path(own)
    return path if path.is_absolute() else report.path / path


def model_config(report: CheckpointReport, vqvae: pathlib.Path | None, args):
    """restac_config.json, or what the openpi tree fixes plus the flags."""
    from restac_ros.model.config import Pi0ResTacConfig
    from restac_ros.model.policy import load_policy_config

    if report.layout == "restac_ros":
        for flag, field in (("action_horizon", "action_horizon"),
                            ("max_token_len", "max_token_len")):
            given = getattr(args, flag)
            if given is not None and given != report.config.get(field):
                raise UsageError(f"--{flag.replace('_', '-')} {given}: "
                                 f"{report.path / CONFIG_FILE} says {field} "
                                 f"{report.config.get(field)}")
        cfg = load_policy_config(report.path)
        if vqvae is not None:
            cfg = dataclasses.replace(cfg, residual_vqvae_checkpoint=str(vqvae))
    else:
        fields = dict(report.tree_fields, action_horizon=args.action_horizon or OPENPI_HORIZON,
                      max_token_len=args.max_token_len,
                      residual_vqvae_checkpoint=str(vqvae) if vqvae else None)
        try:
            cfg = Pi0ResTacConfig(**fields)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{report.path / 'params'}: {err}") from None
    if cfg.use_tactile and cfg.tactile_mode == "vqvae":
        if vqvae is None:
            raise UsageError(f"{report.path / 'params'}: this tactile branch runs on the "
                             "Residual VQ-VAE's q_event (tactile_encoder/project_vq): pass "
                             "--vqvae FILE.ckpt")
        e_dim = report.vqvae_hparams["residual_vq_config"]["e_dim"]
        if e_dim != cfg.q_event_dim:
            raise ConfigError(f"{vqvae}: residual_vq_config.e_dim is {e_dim}, the policy's "
                              f"project_vq takes q_event_dim {cfg.q_event_dim}")
    return cfg


def choose_pipeline(report: CheckpointReport, preset: str) -> str:
    if preset != "auto":
        return preset
    return RESTAC if report.fork_tree else DEFAULT


# -- params --------------------------------------------------------------------
def _read_yaml(path: pathlib.Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: unreadable params file ({err})") from None
    try:
        data["policy_node"]["ros__parameters"]
    except (KeyError, TypeError):
        raise ConfigError(f"{path}: no policy_node.ros__parameters section") from None
    return data


def compose_params(report: CheckpointReport, base: pathlib.Path, pipeline: str) -> dict:
    """Base params + preset + what the checkpoint fixes (restac_ros: its policy_meta.json)."""
    data = _read_yaml(base)
    node = data["policy_node"]["ros__parameters"]
    if pipeline == RESTAC:
        for section, values in _read_yaml(config_path(PRESET_FILE)).items():
            data.setdefault(section, {}).setdefault("ros__parameters", {}).update(
                values["ros__parameters"])
    node["pipeline"] = pipeline
    meta = report.meta
    for key, src in (("action_space", "action_space"), ("joint_names", "joint_names"),
                     ("action_dt_s", "dt_s")):
        if src in meta:
            node[key] = float(meta[src]) if key == "action_dt_s" else meta[src]
    if slots := meta.get("camera_slots"):
        mapping = dict(zip(node["camera_slots"], node["camera_topics"], strict=False))
        node["camera_slots"] = list(slots)
        node["camera_topics"] = [mapping.get(s, DEFAULT_CAMERA_STREAMS.get(s, ""))
                                 for s in slots]
    ex = (data.get("chunk_executor") or {}).get("ros__parameters")
    if ex is not None and "joint_names" in ex:  # the executor takes the policy's chunks
        ex["joint_names"] = list(_params.action_space(node, 1).names)
    node["checkpoint_dir"] = str(report.path)
    node["vqvae_checkpoint"] = ""  # the VQ-VAE is named by the (view's) restac_config.json
    return data


def view_meta(report: CheckpointReport, node: dict, pipeline: str) -> dict:
    """policy_meta.json of a checkpoint view: the original's, or the params' own."""
    if report.meta:
        return dict(report.meta, imported_from=str(report.path))
    names = _params.action_space(node, 1).names
    return {"asset_id": report.asset_id, "source": "openpi", "kind": report.kind,
            "imported_from": str(report.path), "action_space": node["action_space"],
            "action_names": list(names), "joint_names": list(node["joint_names"]),
            "dt_s": float(node["action_dt_s"]), "camera_slots": list(node["camera_slots"]),
            # restac: the fork's mask; openpi's own Pi0: absolute actions unless the user's
            # data config used delta actions (edit the view's policy_meta.json then).
            "delta_action_mask": list(resolve_delta_mask(pipeline, len(names),
                                                         (False,) * len(names)))}


def _written_by_us(view: pathlib.Path) -> bool:
    try:
        return "imported_from" in json.loads((view / META_FILE).read_text())
    except (OSError, ValueError, TypeError):
        return False


def check_view_target(view: pathlib.Path, force: bool) -> None:
    """A view may replace only a view restac-import wrote, and only with --force."""
    if view.exists() or view.is_symlink():
        mine = _written_by_us(view)
        if not (force and mine):
            raise ConfigError(f"{view}: exists" + (" (pass --force to overwrite)" if mine else
                                                   " and was not written by restac-import"))


def write_view(view: pathlib.Path, report: CheckpointReport, cfg, meta: dict,
               tokenizer: pathlib.Path) -> pathlib.Path:
    """A restac_ros checkpoint directory of symlinks to `report.path`'s files (LoRA trees:
    the merged params/ written out), holding no path to itself, so it can be moved into
    place once everything validated."""
    if view.exists() and _written_by_us(view):  # a leftover of an interrupted run
        shutil.rmtree(view)
    stats_link = view / "assets" / report.asset_id / report.norm_stats_path.name
    stats_link.parent.mkdir(parents=True)
    stats_link.symlink_to(report.norm_stats_path)
    (view / "assets" / TOKENIZER_FILE).symlink_to(tokenizer.absolute())
    if report.has_lora:
        # policy_node loads restac_ros-layout params strictly: LoRA factors are folded into
        # their base weights here (the openpi loader does the same in memory).
        from restac_ros.model.checkpoint import restore_params, save_params
        from restac_ros.model.openpi_checkpoint import merge_lora

        where = report.path / "params"
        save_params(view / "params", merge_lora(restore_params(where), where=where))
    else:
        (view / "params").symlink_to(report.path / "params", target_is_directory=True)
    (view / CONFIG_FILE).write_text(cfg.to_json())
    (view / META_FILE).write_text(json.dumps(dict(meta, asset_id=report.asset_id), indent=2))
    return view


def validate_executor(data: dict, p: dict, where: str) -> None:
    """chunk_executor's section (if any) must take the policy's chunks: same action names,
    limits with one value per action dim."""
    ex = (data.get("chunk_executor") or {}).get("ros__parameters")
    if not ex:
        return
    space = _params.action_space(p, 1)
    names = ex.get("joint_names")
    if names is not None and list(names) != list(space.names):
        raise ConfigError(f"{where}: chunk_executor.joint_names {list(names)} differ from the "
                          f"policy's action names {list(space.names)}")
    for name in ("position_min", "position_max", "max_velocity"):
        values = ex.get(name) or []
        if values and len(values) != space.dim:
            raise ConfigError(f"{where}: chunk_executor.{name} has {len(values)} values, the "
                              f"{space.preset} actions {space.dim}: set your robot's limits")
    if space.is_end_effector and ex.get("command_type") == "joint_state":
        raise ConfigError(f"{where}: chunk_executor.command_type joint_state cannot carry "
                          f"{space.preset} actions (pose_stamped)")


def validate_params(p: dict, report: CheckpointReport, policy):
    """The observation builder restac-eval and policy_node build from these params."""
    if report.tree_fields.get("use_tactile", True) and len(p["camera_slots"]) != 3:
        raise ConfigError(f"{p['_path']}: camera_slots {p['camera_slots']}: the tactile "
                          "branch's Prophet takes all three views")
    dim = _params.action_space(p, 1).dim
    try:
        mask = delta_action_mask_from_meta(policy.meta or {}, dim)
        return _params.builder_for(p, policy.config, policy.norm_stats, policy.tokenizer,
                                   delta_action_mask=mask)
    except ValueError as err:
        raise ConfigError(f"{p['_path']}: {err} (norm stats {report.norm_stats_path})") from None


def write_params(data: dict, out: pathlib.Path, report: CheckpointReport, policy,
                 force: bool):
    """Writes `out` only once its content validates; returns (params, builder)."""
    if out.exists() and not force:
        raise ConfigError(f"{out}: exists (pass --force to overwrite)")
    tmp = out.with_name(out.name + ".tmp")
    header = (f"# Written by restac-import for {report.path}\n"
              f"# pipeline: {data['policy_node']['ros__parameters']['pipeline']}; "
              "run: restac-bringup --params THIS_FILE | restac-eval BAG --params THIS_FILE\n")
    tmp.write_text(header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    try:
        try:
            p = _params.load_params(tmp)
        except _params.ParamsError as err:
            raise ConfigError(str(err).replace(str(tmp), str(out))) from None
        p["_path"] = str(out)
        builder = validate_params(p, report, policy)
        validate_executor(data, p, str(out))
    except ConfigError:
        tmp.unlink()
        raise
    os.replace(tmp, out)
    return p, builder


# -- inference check -----------------------------------------------------------
def check_inference(builder, policy) -> dict:
    """One synthetic observation (mid-grey images, the state at its mean, no motion)
    through builder.build -> policy.infer -> postprocess_actions: finite robot actions."""
    spec = builder.spec
    mean = np.asarray(policy.norm_stats["state"].mean, np.float64).reshape(-1)
    state = np.zeros(spec.state_dim)
    n = min(spec.state_dim, mean.shape[0])
    state[:n] = mean[:n]
    joints = JointSample(spec.joint_names, state)
    images = {slot: np.full((224, 224, 3), 128, np.uint8) for slot in spec.camera_streams}
    tactile = np.full((128, 160, 3), 128, np.uint8) if spec.tactile_stream else None
    obs = builder.build(RawSample(1, images, joints, joints, "restac-import check", tactile))
    result = policy.infer(obs, 0)
    actions = builder.postprocess_actions(np.asarray(result.actions_norm[0]))
    if not np.all(np.isfinite(actions)):
        raise InferenceCheckError("policy produced non-finite actions on the synthetic "
                                  "observation")
    return {"inference_ms": float(result.inference_ms), "first_action": actions[0].tolist()}


# -- run -------------------------------------------------------------------------
def _load(report: CheckpointReport, cfg, tokenizer: pathlib.Path | None):
    from restac_ros.model.openpi_checkpoint import load_openpi_policy
    from restac_ros.model.policy import RestacPolicy

    if report.layout == "openpi":
        return load_openpi_policy(report.path, config=cfg, asset_id=report.asset_id,
                                  tokenizer_path=tokenizer)
    return RestacPolicy.from_checkpoint(report.path, config=cfg, asset_id=report.asset_id)


def _notes(policy) -> list[str]:
    import flax.nnx as nnx

    from restac_ros.model.openpi_checkpoint import checkpoint_notes

    state = nnx.to_pure_dict(policy.state)
    return checkpoint_notes(policy.config, {"gate": state.get("gate", {})})


def _prepare(args):
    """-> (report, vqvae, cfg, tokenizer, needs_view)."""
    report = inspect_checkpoint(args.checkpoint, args.asset_id)
    vqvae = args.vqvae.expanduser().absolute() if args.vqvae else own_vqvae(report)
    if vqvae is not None:
        attach_vqvae(report, vqvae)
    cfg = model_config(report, vqvae, args)
    tokenizer = args.tokenizer.expanduser().absolute() if args.tokenizer else report.tokenizer
    if tokenizer is not None and not tokenizer.is_file():
        raise UsageError(f"{tokenizer}: tokenizer file not found")
    if tokenizer is None and (args.out or args.check_inference):
        raise UsageError(f"{report.path / 'assets' / TOKENIZER_FILE}: not found (openpi "
                         "checkpoints carry none): pass --tokenizer paligemma_tokenizer.model")
    needs_view = report.layout == "openpi" or vqvae != own_vqvae(report) or (
        tokenizer != report.tokenizer) or report.has_lora
    return report, vqvae, cfg, tokenizer, needs_view


def run(args: argparse.Namespace) -> int:
    from restac_ros.model.policy import RestacPolicy
    from restac_ros.tactile.checkpoint import CheckpointError as VQVAEError

    view = None  # a checkpoint view this run wrote: removed again if anything fails
    try:
        if args.out is not None and args.out.exists() and not args.force:
            raise ConfigError(f"{args.out}: exists (pass --force to overwrite)")
        report, vqvae, cfg, tokenizer, needs_view = _prepare(args)
        pipeline = choose_pipeline(report, args.preset)
        data = compose_params(report, args.params or config_path("policy.yaml"), pipeline)
        node = data["policy_node"]["ros__parameters"]
        if args.out is not None and needs_view:
            target = args.out.with_name(args.out.stem + ".checkpoint").absolute()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            check_view_target(target, args.force)
            meta = view_meta(report, dict(node, _path=str(args.out)), pipeline)
            view = write_view(target.with_name(target.name + ".tmp"), report, cfg, meta,
                              tokenizer)
            node["checkpoint_dir"] = str(target)
            policy = RestacPolicy.from_checkpoint(view)  # exactly what policy_node loads
        else:
            policy = _load(report, cfg, tokenizer if needs_view else None)
        report.notes = _notes(policy)
        if args.out is not None:
            p, builder = write_params(data, args.out, report, policy, args.force)
            if view is not None:  # everything validated: move the view into place
                if target.exists():
                    shutil.rmtree(target)
                os.replace(view, target)
                view = None
        else:
            p = _params.load_params(args.params) | node | {"_path": "(not written)"}
            builder = validate_params(p, report, policy)
            validate_executor(data, p, p["_path"])
    except UsageError as err:
        return _fail(err, EXIT_USAGE, view)
    except (ConfigError, _params.ParamsError) as err:
        return _fail(err, EXIT_CONFIG, view)
    except (OSError, ValueError, KeyError, VQVAEError) as err:
        return _fail(err, EXIT_CHECKPOINT, view)
    found = report.to_json() | {"pipeline": pipeline, "params_file": p["_path"],
                                "checkpoint_dir": p["checkpoint_dir"],
                                "model_config": json.loads(policy.config.to_json()),
                                "tokenizer": str(tokenizer) if tokenizer else None}
    if args.check_inference:
        try:
            found["inference_check"] = check_inference(builder, policy)
        except (InferenceCheckError, ValueError) as err:
            return _fail(err, EXIT_INFERENCE)
    if args.json:
        print(json.dumps(found, indent=2, default=str))
    else:
        print("\n".join(describe(report, policy.config, pipeline, found)))
    return EXIT_OK


def _fail(err: BaseException, code: int, view: pathlib.Path | None = None) -> int:
    if view is not None:
        shutil.rmtree(view)
    text = " ".join(str(err).split())  # one line
    print(f"restac-import: error: {text}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
