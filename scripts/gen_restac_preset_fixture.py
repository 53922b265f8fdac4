"""Generate test/core/data/restac_fork_pipeline.npz: the ResTacVLA fork's model inputs for a
fixed raw observation, made by the fork's own transforms (run OUTSIDE the project).

Reference code: Awilekong/openpi (the ResTacVLA fork) at commit
b181a9b61c608a81d5395f6dfbae05de938afcce: `policies/restac_policy.py` (ResTacInputs,
ResTacNormalizeActionPrev), `transforms.py` (DeltaActions, Normalize, ResizeImages,
TokenizePrompt, PadStatesAndActions; identical to Physical-Intelligence/openpi's),
`openpi_client.image_tools` (PIL resize_with_pad), `models/model.py`
(Observation.from_dict), `models/tokenizer.py` (PaligemmaTokenizer.tokenize). The
transform ORDER is that of `training/config.py::LeRobotResTacDataConfig.create` +
`policies/policy_config.py::create_trained_policy` (inputs: data transforms, Normalize,
model transforms), written out here because importing `training/config.py` pulls in the
whole training stack.

Run in a scratch venv (numpy einops pillow pydantic numpydantic sentencepiece jax flax
jaxtyping beartype), from a mirror of the fork:

    PYTHONPATH=FORK/src:FORK/packages/openpi-client/src \\
      python scripts/gen_restac_preset_fixture.py --out test/core/data/restac_fork_pipeline.npz

Stubbed (unrelated to the transforms, never called on this path): torch, augmax,
safetensors, transformers, openpi.models_pytorch.pi0_pytorch, openpi.shared.download,
openpi.models.utils.fsq_tokenizer. The PaliGemma sentencepiece model is replaced by a
tiny one trained here (stored in the fixture), loaded into the fork's own tokenizer class.
"""

from __future__ import annotations

import argparse
import io
import json
import pathlib
import sys
import tempfile
import types

import numpy as np

FORK_COMMIT = "b181a9b61c608a81d5395f6dfbae05de938afcce"
CORPUS = ["pick up the cube", "insert the peg into the hole", "press the button gently",
          "grasp the red block", "wipe the table with the sponge"] * 8
PROMPT = "insert_the peg into the hole"  # "_" -> " " is part of the fork's cleaning
ACTION_DIM = 32
MAX_TOKEN_LEN = 200  # Pi0_ResTacConfig.max_token_len


def _stub_unrelated_modules() -> None:
    torch = types.ModuleType("torch")
    torch.uint8 = object()  # from_dict's torch branch never matches numpy arrays
    torch.Tensor = type("Tensor", (), {})
    for name, mod in {
        "torch": torch,
        "torch.nn": types.ModuleType("torch.nn"),
        "torch.nn.functional": types.ModuleType("torch.nn.functional"),
        "augmax": types.ModuleType("augmax"),
        "safetensors": types.ModuleType("safetensors"),
        "transformers": types.SimpleNamespace(AutoProcessor=None),
        "openpi.models_pytorch": types.ModuleType("openpi.models_pytorch"),
        "openpi.models_pytorch.pi0_pytorch": types.ModuleType("pi0_pytorch"),
        "openpi.shared.download": types.ModuleType("download"),
        "openpi.models.utils": types.ModuleType("openpi.models.utils"),
        "openpi.models.utils.fsq_tokenizer": types.ModuleType("fsq_tokenizer"),
    }.items():
        sys.modules[name] = mod


def _tiny_spm() -> bytes:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=buf, vocab_size=40, model_type="unigram",
        character_coverage=1.0, normalization_rule_name="identity", bos_id=1, eos_id=2,
        unk_id=3, pad_id=0, minloglevel=2)
    return buf.getvalue()


def _smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Fine sinusoidal patterns (periods of a few pixels, so resampling matters); they
    compress in the npz where noise would not."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [127 + 120 * np.sin(x / rng.uniform(0.6, 4) + y / rng.uniform(0.6, 4) + k)
             for k in range(3)]
    img = np.stack(chans, -1)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _raw_observation(rng: np.random.Generator) -> dict:
    # 7-D EE state [x, y, z, rx, ry, rz, gripper]; previous state one dataset step earlier.
    state = np.array([0.42, -0.11, 0.31, 3.05, -0.07, 1.52, 0.035], np.float32)
    step = np.array([0.004, -0.002, 0.003, 0.01, -0.006, 0.008, 0.0], np.float32)
    state_prev = (state - step).astype(np.float32)
    return {
        # Camera frames at a RealSense-like 3:4 aspect (letterboxed to 224x224 by the fork).
        "main_realsense_rgb": _smooth_image(rng, 180, 240),
        "side_realsense_rgb": _smooth_image(rng, 180, 240),
        "handeye_realsense_rgb": _smooth_image(rng, 180, 240),
        "gelsight_left_rgb": _smooth_image(rng, 128, 160),
        "state": state,
        "state_prev": state_prev,
    }


def _norm_stats(normalize) -> dict:
    """openpi NormStats as the fork's compute_norm_stats would write them: state after
    ResTacInputs (padded to action_dim: zeros beyond dim 7), actions after DeltaActions (7-D)."""
    pad = lambda v: np.concatenate([np.asarray(v, np.float64), np.zeros(ACTION_DIM - 7)])
    state = normalize.NormStats(
        mean=pad([0.45, -0.1, 0.3, 2.9, 0.0, 1.5, 0.04]),
        std=pad([0.05, 0.08, 0.04, 0.3, 0.1, 0.4, 0.01]),
        q01=pad([0.33, -0.3, 0.2, -3.1, -0.3, 0.5, 0.0]),
        q99=pad([0.55, 0.1, 0.4, 3.1, 0.3, 2.4, 0.08]),
    )
    actions = normalize.NormStats(
        mean=np.array([0.001, -0.001, 0.0, 0.002, 0.0, -0.001, 0.04]),
        std=np.array([0.01, 0.012, 0.009, 0.03, 0.02, 0.025, 0.01]),
        q01=np.array([-0.03, -0.035, -0.025, -0.08, -0.06, -0.07, 0.0]),
        q99=np.array([0.032, 0.03, 0.027, 0.09, 0.05, 0.065, 0.08]),
    )
    return {"state": state, "actions": actions}


def run_fork_pipeline(raw: dict, norm_stats: dict, spm_bytes: bytes, pi05: bool) -> dict:
    import sentencepiece
    from openpi import transforms as _t
    from openpi.models import model as _model
    from openpi.models import tokenizer as _tok
    from openpi.policies import restac_policy

    model_type = _model.ModelType.PI05 if pi05 else _model.ModelType.PI0
    use_quantiles = model_type != _model.ModelType.PI0  # LeRobotResTacDataConfig
    tokenizer = _tok.PaligemmaTokenizer.__new__(_tok.PaligemmaTokenizer)
    tokenizer._max_len = MAX_TOKEN_LEN
    tokenizer._tokenizer = sentencepiece.SentencePieceProcessor(model_proto=spm_bytes)
    # ModelTransformFactory: getattr(Pi0_ResTacConfig, "discrete_state_input", False) is
    # False (the fork's config has no such field), so no state in the prompt.
    delta_mask = _t.make_bool_mask(6, -1)
    data_inputs = [restac_policy.ResTacInputs(action_dim=ACTION_DIM, model_type=model_type),
                   _t.DeltaActions(delta_mask)]
    model_inputs = [
        restac_policy.ResTacNormalizeActionPrev(norm_stats=norm_stats,
                                                use_quantiles=use_quantiles),
        _t.InjectDefaultPrompt(None),
        _t.ResizeImages(224, 224),
        _t.TokenizePrompt(tokenizer, discrete_state_input=False),
        _t.PadStatesAndActions(ACTION_DIM),
    ]
    # What a client sends after the data config's RepackTransform (serve-time keys).
    data = {
        "image": raw["main_realsense_rgb"],
        "wrist_image": raw["side_realsense_rgb"],
        "handeye_image": raw["handeye_realsense_rgb"],
        "tactile_image": raw["gelsight_left_rgb"],
        "state": raw["state"],
        "action_prev": restac_policy._compute_action_prev(raw["state"], raw["state_prev"]),
        "prompt": PROMPT,
    }
    for fn in data_inputs:
        data = fn(data)
    tactile_before_resize = np.asarray(data["image"]["tactile_0"]).copy()
    data = _t.Normalize(norm_stats, use_quantiles=use_quantiles)(data)
    for fn in model_inputs:
        data = fn(data)
    batched = {k: (v if isinstance(v, dict) else np.asarray(v)[None])
               for k, v in data.items()}
    batched["image"] = {k: np.asarray(v)[None] for k, v in data["image"].items()}
    batched["image_mask"] = {k: np.asarray(v)[None] for k, v in data["image_mask"].items()}
    obs = _model.Observation.from_dict(batched)
    tactile_model_range = tactile_before_resize.astype(np.float32) / 255.0 * 2.0 - 1.0
    # Output side (Policy.infer -> output transforms): a fixed normalised chunk, the
    # observation's normalised state, then ResTacUnnormalizeActionPrev, Unnormalize,
    # AbsoluteActions, ResTacOutputs (Group.push puts AbsoluteActions first).
    chunk = np.clip(np.random.default_rng(7).normal(0, 0.5, (50, ACTION_DIM)), -1, 1)
    result = {"state": np.asarray(data["state"]), "actions": chunk.astype(np.float32)}
    for fn in [restac_policy.ResTacUnnormalizeActionPrev(norm_stats=norm_stats,
                                                         use_quantiles=use_quantiles),
               _t.Unnormalize(norm_stats, use_quantiles=use_quantiles),
               _t.AbsoluteActions(delta_mask), restac_policy.ResTacOutputs()]:
        result = fn(result)
    out = {
        "state": np.asarray(obs.state[0]),
        "action_prev": np.asarray(obs.action_prev[0]),
        "tokenized_prompt": np.asarray(obs.tokenized_prompt[0]),
        "tokenized_prompt_mask": np.asarray(obs.tokenized_prompt_mask[0]),
        # The fork's Observation letterboxes tactile_0 to 224x224 too (ResizeImages resizes
        # every image), which its VQ-VAE (16x20 latent) cannot take: we keep both.
        "tactile_0_224": np.asarray(obs.images["tactile_0"][0]),
        "tactile_128x160": tactile_model_range,
        "chunk_norm": chunk.astype(np.float32),
        "chunk_robot": np.asarray(result["action"]),
    }
    for key in ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"):
        out[key] = np.asarray(obs.images[key][0])
        out[key + "_mask"] = np.asarray(obs.image_masks[key][0])
    return out


def _as_uint8_lossless(img: np.ndarray) -> np.ndarray:
    """Model-range float32 images are x/255*2-1 of uint8 x: store x (checked exact)."""
    u8 = np.clip(np.round((img.astype(np.float64) + 1.0) / 2.0 * 255.0), 0, 255).astype(np.uint8)
    if not np.array_equal(u8.astype(np.float32) / 255.0 * 2.0 - 1.0, img):
        raise AssertionError("image is not a uint8 image in model range")
    return u8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, required=True)
    args = ap.parse_args()
    _stub_unrelated_modules()
    from openpi.shared import normalize

    rng = np.random.default_rng(20260308)
    raw = _raw_observation(rng)
    stats = _norm_stats(normalize)
    with tempfile.TemporaryDirectory() as tmp:
        normalize.save(tmp, stats)  # the fork's own JSON writer
        stats_json = (pathlib.Path(tmp) / "norm_stats.json").read_text()
        stats = normalize.load(tmp)
    spm_bytes = _tiny_spm()
    arrays = {f"raw/{k}": v for k, v in raw.items()}
    images = None
    for tag, pi05 in (("pi05", True), ("pi0", False)):
        out = run_fork_pipeline(raw, stats, spm_bytes, pi05)
        # Images do not depend on the backbone: stored once, as their exact uint8 source.
        imgs = {k: _as_uint8_lossless(v) for k, v in out.items() if v.ndim == 3}
        if images is not None and any(not np.array_equal(imgs[k], images[k]) for k in imgs):
            raise AssertionError("images differ between backbones")
        images = imgs
        arrays.update({f"{tag}/{k}": v for k, v in out.items() if v.ndim != 3})
    arrays.update({f"images/{k}_u8": v for k, v in images.items()})
    arrays["norm_stats_json"] = np.frombuffer(stats_json.encode(), np.uint8)
    arrays["tokenizer_model"] = np.frombuffer(spm_bytes, np.uint8)
    arrays["meta_json"] = np.frombuffer(json.dumps({
        "fork_commit": FORK_COMMIT, "prompt": PROMPT, "action_dim": ACTION_DIM,
        "max_token_len": MAX_TOKEN_LEN, "numpy": np.__version__,
    }).encode(), np.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
