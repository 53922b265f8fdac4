"""Generates test/model/fixtures/openpi_parity/: reference actions from the PUBLISHED code.

Runs OUTSIDE the project, in a scratch environment holding the published sources and
their own pins (jax 0.5.3, flax 0.10.2, orbax-checkpoint 0.11.13, numpy<2, torch):

  python scripts/gen_model_parity_fixtures.py --openpi-src OPENPI/src --fork-src FORK/src \
      --out test/model/fixtures/openpi_parity

Sources used for the committed fixtures:
  Physical-Intelligence/openpi  15a9616a00943ada6c20a0f158e3adb39df2ccac  (Pi0: pi0, pi0.5)
  Awilekong/openpi (ResTacVLA)  b181a9b61c608a81d5395f6dfbae05de938afcce  (Pi0_ResTac,
                                                                           Pi0_ResTac_TokenInAE)

Each case is an openpi checkpoint step directory (`params/` written by orbax's
CheckpointManager as openpi's training does, `assets/<asset_id>/norm_stats.json` written
by openpi's normalize.save) plus `expected.npz` (observation, noise, q_event/logvar,
actions) and `reference.json` (model config, sources). The model code runs unchanged;
what this script changes around it, and why:
  - SigLIP size: openpi hard-codes "So400m/14" (428M params, 1.7 GB in f32); the fixture
    uses big_vision's smallest variant "mu/14" (same module, same patch grid 16x16, same
    param names, width 32, depth 1). Gemma uses openpi's own "dummy" variant.
  - The vocabulary stays 257152 rows; rows the prompts do not use are zeroed so the
    checkpoint compresses to a few hundred KB.
  - "openpi_pi05_lora": openpi's dummy Gemma given LoRA (rank 4, alpha = rank, as in
    openpi's gemma_2b_lora / gemma_300m_lora) on both experts.
  - Every param gets seeded random values (norm scales, adaRMS and biases included,
    which init to zero and would hide bugs).
  - The fork's Residual VQ-VAE (a torch module, tested on its own) is replaced by fixed
    (q_event, logvar): the model's tactile input. openpi's preprocess_observation drops
    `tactile_0` and `action_prev` (the published sample_actions then raises); the wrapper
    below puts them back after calling the original.
  - Run eagerly (no jit): the fork's NecessityGate fails under jit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import types

import numpy as np

OPENPI_COMMIT = "15a9616a00943ada6c20a0f158e3adb39df2ccac"
FORK_COMMIT = "b181a9b61c608a81d5395f6dfbae05de938afcce"
SIGLIP_VARIANT = "mu/14"
ASSET_ID = "lerobot/peg_hole_tac"  # openpi asset ids are repo ids, with a slash
B, H, A, L, STEPS = 2, 10, 8, 20, 10


def _import_reference(src: str):
    """Imports the published model code from `src`, without the torch Pi0 port."""
    for name in [m for m in sys.modules if m == "openpi" or m.startswith("openpi.")]:
        del sys.modules[name]
    sys.path.insert(0, src)
    stub = types.ModuleType("openpi.models_pytorch.pi0_pytorch")  # imports transformers
    sys.modules["openpi.models_pytorch.pi0_pytorch"] = stub
    import openpi.models.siglip as siglip

    orig = siglip.Module
    siglip.Module = lambda **kw: orig(**{**kw, "variant": SIGLIP_VARIANT})
    sys.path.pop(0)
    return siglip


def _observation(rng, model_mod, *, tactile: bool, pi05: bool):
    import jax.numpy as jnp

    keys = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
    # uint8 8x8 blocks (compress well), mapped to [-1, 1] as openpi's inputs are.
    def blocks():
        return rng.integers(0, 256, (B, 28, 28, 3), np.uint8).repeat(8, 1).repeat(8, 2)

    images = {k: blocks().astype(np.float32) / 127.5 - 1.0 for k in keys}
    masks = {k: np.ones(B, bool) for k in keys}
    masks["right_wrist_0_rgb"][1] = False  # a missing camera
    tokens = rng.integers(1, 4000, (B, L)).astype(np.int32)
    tmask = np.ones((B, L), bool)
    tmask[0, 12:] = False  # a padded prompt
    tmask[1, 17:] = False
    tokens[~tmask] = 0
    state = rng.uniform(-1, 1, (B, A)).astype(np.float32)
    arrays = dict(images=images, image_masks=masks, state=state, tokenized_prompt=tokens,
                  tokenized_prompt_mask=tmask)
    kw = {k: ({n: jnp.asarray(x) for n, x in v.items()} if isinstance(v, dict)
              else jnp.asarray(v)) for k, v in arrays.items()}
    if tactile:
        # The fixed VQ-VAE stand-in ignores the tactile image; the model needs the key.
        kw["images"]["tactile_0"] = jnp.zeros((B, 224, 224, 3), jnp.float32)
        kw["image_masks"]["tactile_0"] = jnp.ones(B, bool)
        kw["action_prev"] = jnp.asarray(rng.normal(0, 0.05, (B, 7)).astype(np.float32))
    return model_mod.Observation(**kw), arrays


def _fan_in(name: str, shape) -> int:
    """Input width of a kernel in openpi's layouts (scan-stacked ones lead with depth)."""
    if "attn_vec_einsum" in name or name.endswith("out/kernel"):
        return int(np.prod(shape[-3:-1]))  # [..., heads, head_dim, out]
    if "q_einsum" in name or "kv_einsum" in name or "gating_einsum" in name:
        return int(shape[-2])  # [..., in, head_dim | mlp]
    if "encoderblock" in name or "mlp/linear" in name:
        return int(shape[1])  # [depth, in, ...]
    if name.endswith(("query/kernel", "key/kernel", "value/kernel")):
        return int(shape[0])  # [in, heads, head_dim]
    if name.endswith("pos_embedding"):
        return int(shape[-1])
    return int(np.prod(shape[:-1]))  # Dense [in, out], conv [p, p, c, out]


def _seed_params(model, rng, used_tokens):
    """Seeded random values for every param (keeps the shapes and dtypes)."""
    import flax.nnx as nnx
    import jax.numpy as jnp

    state = nnx.state(model, nnx.Param)
    flat = state.flat_state()
    for path, var in flat.items():
        name = "/".join(map(str, path))
        x = np.asarray(var.value)
        if name.endswith("input_embedding"):
            table = np.zeros_like(x)
            table[used_tokens] = rng.normal(0, 1, (len(used_tokens), x.shape[1]))
            new = table
        elif name.startswith("gate/") and x.ndim == 0:
            new = {"logvar_center": -9.5, "sensitivity": 5.0, "output_scale": 0.01}[path[-1]]
            new = np.float32(new + rng.normal(0, 0.2))
        elif "lora" in name:  # a fine-tune's small low-rank update
            new = rng.normal(0, 0.05, x.shape)
        elif name.endswith("default_tactile_embedding"):
            new = rng.normal(0, 0.5, x.shape)
        elif x.ndim >= 2 and not name.endswith("Dense_0/kernel"):
            new = rng.normal(0, 1, x.shape) / np.sqrt(_fan_in(name, x.shape))
        else:  # biases, norm scales, adaRMS modulation (zero at init)
            new = rng.normal(0, 0.1, x.shape)
        if x.ndim:  # multiples of 1/64: exact in f32, and they compress
            new = np.round(np.asarray(new) * 64) / 64
        var.value = jnp.asarray(np.asarray(new, x.dtype))
    nnx.update(model, nnx.State.from_flat_path(flat))


def _save_checkpoint(case_dir: pathlib.Path, model, norm_stats, normalize_mod):
    """openpi's training save: CheckpointManager item "params" = {"params": nnx.State}."""
    import flax.nnx as nnx
    import orbax.checkpoint as ocp

    params = nnx.state(model, nnx.Param)
    with tempfile.TemporaryDirectory() as tmp:
        mngr = ocp.CheckpointManager(
            pathlib.Path(tmp) / "run",
            item_handlers={"params": ocp.PyTreeCheckpointHandler()},
            options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                                 enable_async_checkpointing=False))
        mngr.save(1000, args=ocp.args.Composite(params=ocp.args.PyTreeSave({"params": params})))
        mngr.wait_until_finished()
        shutil.copytree(pathlib.Path(tmp) / "run" / "1000", case_dir)
    normalize_mod.save(case_dir / "assets" / ASSET_ID, norm_stats)


def _norm_stats(normalize_mod, rng):
    def stats(d):
        mean = rng.normal(0, 0.3, d)
        std = rng.uniform(0.1, 1.0, d)
        return normalize_mod.NormStats(mean=mean, std=std, q01=mean - 2 * std, q99=mean + 2 * std)

    return {"state": stats(A), "actions": stats(A)}


def run_case(name, out, *, src, commit, build, tactile, pi05, seed):
    import jax
    import jax.numpy as jnp

    _import_reference(src)
    import openpi.models.model as model_mod
    import openpi.shared.normalize as normalize_mod

    rng = np.random.default_rng(seed)
    obs, arrays = _observation(rng, model_mod, tactile=tactile, pi05=pi05)
    q_event = rng.normal(0, 1, (B, 64)).astype(np.float32)
    logvar = np.array([[-9.3], [-9.9]], np.float32)
    noise = rng.normal(0, 1, (B, H, A)).astype(np.float32)
    model, config = build(q_event, logvar)
    _seed_params(model, rng, np.unique(arrays["tokenized_prompt"]))
    if tactile:
        orig = model_mod.preprocess_observation

        def keep_tactile(rng_, o, **kw):
            out_ = orig(rng_, o, **kw)
            return dataclasses.replace(
                out_, images={**out_.images, "tactile_0": o.images["tactile_0"]},
                image_masks={**out_.image_masks, "tactile_0": o.image_masks["tactile_0"]},
                action_prev=o.action_prev)

        model_mod.preprocess_observation = keep_tactile
    actions = model.sample_actions(jax.random.key(0), obs, num_steps=STEPS,
                                   noise=jnp.asarray(noise))
    actions = np.asarray(actions, np.float32)
    case_dir = out / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    _save_checkpoint(case_dir, model, _norm_stats(normalize_mod, rng), normalize_mod)
    flat = {f"images/{k}": ((v + 1.0) * 127.5).round().astype(np.uint8)
            for k, v in arrays["images"].items()}
    flat |= {f"image_masks/{k}": v for k, v in arrays["image_masks"].items()}
    flat |= {k: arrays[k] for k in ("state", "tokenized_prompt", "tokenized_prompt_mask")}
    if tactile:
        flat |= {"action_prev": np.asarray(obs.action_prev), "q_event": q_event,
                 "logvar": logvar}
    np.savez_compressed(case_dir / "expected.npz", noise=noise, actions=actions,
                        num_steps=STEPS, **flat)
    cfg = {k: v for k, v in dataclasses.asdict(config).items()
           if isinstance(v, (int, float, str, bool, type(None)))}
    ref = {"class": type(model).__name__, "config": cfg, "source_commit": commit,
           "siglip_variant": SIGLIP_VARIANT, "asset_id": ASSET_ID, "jax": jax.__version__}
    (case_dir / "reference.json").write_text(json.dumps(ref, indent=2, sort_keys=True))
    print(f"{name}: actions {actions.shape} |a|max {np.abs(actions).max():.3f}")


def _openpi_builder(pi05, lora=False):
    def build(q_event, logvar):
        import jax
        import openpi.models.gemma as gemma
        from openpi.models import lora as lora_mod
        from openpi.models import pi0_config

        variant = "dummy"
        if lora:  # openpi's dummy Gemma with LoRA as its *_lora variants have it (alpha = rank)
            orig = gemma.get_config
            lc = lora_mod.LoRAConfig(rank=4, alpha=4.0)
            gemma.get_config = lambda v: (dataclasses.replace(
                orig("dummy"), lora_configs={"attn": lc, "ffn": lc}) if v == "dummy_lora"
                else orig(v))
            variant = "dummy_lora"
        cfg = pi0_config.Pi0Config(pi05=pi05, paligemma_variant=variant,
                                   action_expert_variant=variant, dtype="float32",
                                   action_dim=A, action_horizon=H, max_token_len=L)
        return cfg.create(jax.random.key(1)), cfg
    return build


def _fork_builder(kind, gate_type="necessity"):
    def build(q_event, logvar):
        import jax
        import jax.numpy as jnp
        import openpi.models.pi0_restac as pr

        class FixedVQVAE:  # the frozen torch VQ-VAE's outputs, fixed
            def forward(self, tactile_image, visual_3views, action_prev):
                return jnp.asarray(q_event), jnp.asarray(logvar)

        pr.get_vqvae_wrapper = lambda path, frozen=True: FixedVQVAE()
        common = dict(paligemma_variant="dummy", action_expert_variant="dummy",
                      dtype="float32", action_dim=A, action_horizon=H, max_token_len=L,
                      gate_type=gate_type, residual_vqvae_checkpoint="fixed-q-event")
        if kind == "restac":
            cfg = pr.Pi0_ResTacConfig(fusion_dim=48, num_cross_attn_heads=4, **common)
        else:
            cfg = pr.Pi0_ResTac_TokenInAEConfig(**common)
        return cfg.create(jax.random.key(2)), cfg
    return build


CASES = {  # name: (source, builder, tactile input, pi0.5, seed)
    "openpi_pi0": ("openpi", _openpi_builder(False), False, False, 10),
    "openpi_pi05": ("openpi", _openpi_builder(True), False, True, 11),
    "openpi_pi05_lora": ("openpi", _openpi_builder(True, lora=True), False, True, 15),
    "fork_restac": ("fork", _fork_builder("restac"), True, True, 12),
    "fork_restac_learnable": ("fork", _fork_builder("restac", "learnable"), True, True, 13),
    "fork_token_in_ae": ("fork", _fork_builder("token_in_ae"), True, True, 14),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--openpi-src", required=True)
    ap.add_argument("--fork-src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--case", choices=sorted(CASES), help="one case (default: each, one "
                    "process per case: the two source trees are both named `openpi`)")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.case is None:
        for name in CASES:
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--case", name],
                           check=True)
        return
    which, build, tactile, pi05, seed = CASES[args.case]
    src = {"openpi": args.openpi_src, "fork": args.fork_src}[which]
    commit = {"openpi": f"Physical-Intelligence/openpi@{OPENPI_COMMIT}",
              "fork": f"Awilekong/openpi@{FORK_COMMIT}"}[which]
    run_case(args.case, out, src=src, commit=commit, build=build, tactile=tactile, pi05=pi05,
             seed=seed)


if __name__ == "__main__":
    main()
