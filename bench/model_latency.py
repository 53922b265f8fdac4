"""Pi0_ResTac sample_actions latency: compile time, median/p90 per call, peak memory.

    python bench/model_latency.py --variant tiny --backbone pi0 --device cpu --num-steps 10

Variants: tiny (dummy Gemma experts + tiny SigLIP, CPU-sized), full (gemma_2b +
gemma_300m + So400m/14, openpi's pi0 size; needs a GPU). Params are random:
latency does not depend on their values.

    python bench/model_latency.py --tactile-share [--vqvae-checkpoint CKPT] [--iters 200]

--tactile-share: one full policy step (`RestacPolicy.infer`, the jit-compiled sampler) of
the demo-sized policy (`restac-train-policy --variant small`: dummy Gemma experts + micro
SigLIP, action_dim 8, horizon 10) with tactile mode vqvae (the Residual VQ-VAE's JAX port
inside the sampler) against the same step with the placeholder encoder, p50/p99; the
difference is the VQ-VAE's share per observation (target <= 40 ms on this CPU). The
VQ-VAE: CKPT (a restac-train-vqvae / fork checkpoint), else a published-layout one of
the small size, random weights (--vqvae-ch, --vqvae-n-e, --vqvae-blocks,
--vqvae-prophet-size). The bare VQ-VAE forward (jit) is timed as a third row.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys

VARIANTS = {
    "tiny": dict(paligemma_variant="dummy", action_expert_variant="dummy", vision_variant="tiny"),
    "full": dict(paligemma_variant="gemma_2b", action_expert_variant="gemma_300m",
                 vision_variant="So400m/14"),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="tiny")
    ap.add_argument("--backbone", choices=["pi0", "pi05"], default="pi0")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--num-steps", type=int, default=10)
    ap.add_argument("--fusion", choices=["two_stage", "prefix_self_attn"],
                    default="prefix_self_attn")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                    help="default: float32 on cpu, bfloat16 on gpu")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--tactile-share", action="store_true",
                    help="vqvae vs placeholder tactile mode on the demo-sized policy")
    ap.add_argument("--vqvae-checkpoint", default=None)
    ap.add_argument("--vqvae-ch", type=int, default=32)
    ap.add_argument("--vqvae-n-e", type=int, default=16)
    ap.add_argument("--vqvae-blocks", type=int, default=1)
    ap.add_argument("--vqvae-prophet-size", type=int, default=32)
    args = ap.parse_args(argv)
    os.environ["JAX_PLATFORMS"] = "cuda" if args.device == "gpu" else "cpu"
    if args.tactile_share:
        return tactile_share(args)

    import jax

    from restac_ros.model.config import Pi0ResTacConfig
    from restac_ros.model.policy import RestacPolicy

    dtype = args.dtype or ("bfloat16" if args.device == "gpu" else "float32")
    cfg = Pi0ResTacConfig(backbone=args.backbone, dtype=dtype, fusion=args.fusion,
                          **VARIANTS[args.variant])
    model = cfg.create(jax.random.key(0))
    if dtype == "bfloat16":  # bf16 weights, as RestacPolicy.from_checkpoint(dtype=...) does
        import flax.nnx as nnx
        import jax.numpy as jnp

        pg = nnx.state(model.PaliGemma, nnx.Param)
        nnx.update(model.PaliGemma, jax.tree.map(lambda x: x.astype(jnp.bfloat16), pg))
    policy = RestacPolicy(model, num_steps=args.num_steps)
    obs = cfg.fake_obs(args.batch)
    compile_s = policy.warmup(obs)
    times = sorted(policy.infer(obs, seed=i).inference_ms for i in range(args.iters))
    median = times[len(times) // 2]
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    dev = jax.devices()[0]
    stats = dev.memory_stats() if args.device == "gpu" else None
    if stats and "peak_bytes_in_use" in stats:
        peak = f"{stats['peak_bytes_in_use'] / 2**20:.0f} MiB (device peak)"
    else:  # CPU: the process's peak resident set (params, activations, compiler)
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process RSS)"
    rows = [
        ("variant", f"{args.variant} ({cfg.paligemma_variant}+{cfg.action_expert_variant}, "
                    f"{cfg.vision_variant})"),
        ("backbone / fusion", f"{args.backbone} / {args.fusion}"),
        ("device", f"{dev.device_kind} ({platform.machine()}, {os.cpu_count()} cpus)"),
        ("dtype / batch / steps", f"{dtype} / {args.batch} / {args.num_steps}"),
        ("compile (s)", f"{compile_s:.1f}"),
        (f"sample median (ms, {args.iters} calls)", f"{median:.1f}"),
        ("sample p90 (ms)", f"{p90:.1f}"),
        ("peak memory", peak),
    ]
    print("| metric | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    return 0


def _percentile(ms: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 200 calls is the 198th)."""
    ms = sorted(ms)
    return ms[min(len(ms) - 1, max(0, int(-(-q * len(ms) // 100)) - 1))]


def _small_vqvae(args):
    """(params, hparams) of the JAX port: the checkpoint, or random published-layout weights."""
    from restac_ros.tactile.jax_port import load_jax_vqvae, load_jax_vqvae_from_state

    if args.vqvae_checkpoint:
        params, hp = load_jax_vqvae(args.vqvae_checkpoint)
        size = hp.ext.prophet_input_size or 224
        return (params, hp), (f"checkpoint {args.vqvae_checkpoint}: ch {hp.dd.ch}, "
                              f"{hp.dd.num_res_blocks} res block(s)/level, n_e {hp.rvq.n_e}, "
                              f"Prophet views resized to {size}x{size}")
    import torch

    from restac_ros.tactile.config import default_hparams
    from restac_ros.tactile.model import ResidualVQVAE

    torch.manual_seed(0)
    hp = default_hparams(ch=args.vqvae_ch, n_e=args.vqvae_n_e, num_res_blocks=args.vqvae_blocks,
                         prophet_input_size=args.vqvae_prophet_size)
    state = ResidualVQVAE(hp).eval().state_dict()
    return (load_jax_vqvae_from_state(state, hp),
            f"published layout, random weights: ch {args.vqvae_ch}, {args.vqvae_blocks} res "
            f"block(s)/level, n_e {args.vqvae_n_e}, Prophet views resized to "
            f"{args.vqvae_prophet_size}x{args.vqvae_prophet_size}")


def tactile_share(args) -> int:
    """One policy step with the VQ-VAE JAX port inside the sampler vs the placeholder."""
    import time

    import flax.nnx as nnx
    import jax
    import numpy as np

    from restac_ros.model.config import Pi0ResTacConfig
    from restac_ros.model.pi0_restac import Pi0ResTac
    from restac_ros.model.policy import RestacPolicy
    from restac_ros.tactile.jax_port import vqvae_forward

    (params, hp), vq_desc = _small_vqvae(args)
    base = dict(backbone="pi0", paligemma_variant="dummy", action_expert_variant="dummy",
                vision_variant="micro", action_dim=8, action_horizon=10, max_token_len=16,
                vocab_size=16, fusion_dim=64, num_fusion_heads=4, gate="necessity")
    rng = np.random.default_rng(0)
    rows = []
    for mode in ("placeholder", "vqvae"):
        cfg = Pi0ResTacConfig(**base, tactile_encoder_mode=mode)
        model = Pi0ResTac(cfg, nnx.Rngs(0), vqvae=(params, hp) if mode == "vqvae" else None)
        policy = RestacPolicy(model, num_steps=args.num_steps)
        obs = cfg.fake_obs(1)
        for k in obs.images:  # camera-like values in [-1, 1] (time does not depend on them)
            obs.images[k][...] = rng.uniform(-1, 1, obs.images[k].shape)
        obs.tactile_image[...] = rng.uniform(-1, 1, obs.tactile_image.shape)
        compile_s = policy.warmup(obs)
        res = policy.infer(obs, 1)
        codes = np.asarray(res.diagnostics.codes).reshape(-1).tolist()
        ms = [policy.infer(obs, seed=i).inference_ms for i in range(args.iters)]
        rows.append((f"policy step, tactile {mode}", compile_s, ms, codes))
    jfwd = jax.jit(vqvae_forward, static_argnums=1)
    img = np.stack([obs.images[k] for k in sorted(obs.images)], axis=1)
    inputs = (obs.tactile_image, img, obs.action_prev[:, :7])
    t0 = time.perf_counter()
    jax.block_until_ready(jfwd(params, hp, *inputs))
    compile_s = time.perf_counter() - t0
    ms = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        jax.block_until_ready(jfwd(params, hp, *inputs))
        ms.append((time.perf_counter() - t0) * 1e3)
    rows.append(("VQ-VAE JAX port alone (jit)", compile_s, ms, None))
    p50 = {name: _percentile(m, 50) for name, _, m, _ in rows}
    share = p50["policy step, tactile vqvae"] - p50["policy step, tactile placeholder"]
    dev = jax.devices()[0]
    print(f"demo-sized policy (dummy/dummy/micro, action_dim 8, H 10, {args.num_steps} flow "
          f"steps), batch 1, float32; VQ-VAE: {vq_desc}; {args.iters} calls after warm-up; "
          f"{dev.device_kind} ({platform.machine()}, {os.cpu_count()} cpus), load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| step | compile s | p50 ms | p99 ms | mean ms | min ms | codes (batch 1) |\n"
          "|---|---|---|---|---|---|---|")
    for name, c, m, codes in rows:
        print(f"| {name} | {c:.1f} | {_percentile(m, 50):.1f} | {_percentile(m, 99):.1f} | "
              f"{sum(m) / len(m):.1f} | {min(m):.1f} | {'n/a' if codes is None else codes} |")
    verdict = "PASS" if share <= 40.0 else "FAIL"
    print(f"\nVQ-VAE share of one policy step (p50 vqvae - p50 placeholder): {share:.1f} ms "
          f"(target <= 40 ms: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
