"""Pi0_ResTac sample_actions latency: compile time, median/p90 per call, peak memory.

    python bench/model_latency.py --variant tiny --backbone pi0 --device cpu --num-steps 10

Variants: tiny (dummy Gemma experts + tiny SigLIP, CPU-sized), full (gemma_2b +
gemma_300m + So400m/14, openpi's pi0 size; needs a GPU). Params are random:
latency does not depend on their values.
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
    args = ap.parse_args(argv)
    os.environ["JAX_PLATFORMS"] = "cuda" if args.device == "gpu" else "cpu"

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


if __name__ == "__main__":
    sys.exit(main())
