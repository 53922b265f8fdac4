"""VQ-VAE forward latency per observation (batch 1): PyTorch reference vs the JAX port.

    python bench/vqvae_latency.py [--configs published,trainer] [--repeats 10] [--no-write]

Configurations: ``published`` (ch 128, two residual blocks per level, 224x224
Prophet views) and ``trainer`` (the ``restac-train-vqvae`` defaults: ch 32,
one block, 224x224 Prophet views as published), random weights (timing does not depend on
weight values).
Compile/warm-up calls are excluded.  Prints a table and, unless --no-write,
replaces the section under HEADING in bench/RESULTS.md (other sections kept).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results_md import RESULTS, write_section  # noqa: E402  (bench/ is on sys.path)

from restac_ros.tactile.config import default_hparams  # noqa: E402
from restac_ros.tactile.jax_port import load_jax_vqvae_from_state, vqvae_forward  # noqa: E402
from restac_ros.tactile.model import ResidualVQVAE  # noqa: E402
from restac_ros.tactile.wrapper import full_fp32  # noqa: E402

HEADING = "VQ-VAE latency (CPU, 2-core x86_64 dev machine)"


def _time(fn, repeats: int) -> tuple[float, float]:
    fn()
    fn()
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms), min(ms)


CONFIGS = {"published": (128, 2, None), "trainer": (32, 1, None)}  # ch, blocks, prophet_input_size


def run(name: str, args) -> list[tuple[str, str, str, float, float]]:
    torch.manual_seed(0)
    ch, nrb, image_size = CONFIGS[name]
    hp = default_hparams(ch=ch, num_res_blocks=nrb, n_e=512, prophet_input_size=image_size)
    model = ResidualVQVAE(hp).eval()
    rng = np.random.default_rng(0)
    t = rng.uniform(-1, 1, (1, 128, 160, 3)).astype(np.float32)
    v = rng.uniform(-1, 1, (1, 3, 224, 224, 3)).astype(np.float32)
    a = (0.01 * rng.standard_normal((1, 7))).astype(np.float32)
    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        m = model.to(dev)
        tt = torch.from_numpy(t).permute(0, 3, 1, 2).contiguous().to(dev)
        vt = torch.from_numpy(v).permute(0, 1, 4, 2, 3).contiguous().to(dev)
        at = torch.from_numpy(a).to(dev)

        def fwd(m=m, tt=tt, vt=vt, at=at, dev=dev):
            with torch.no_grad(), full_fp32():
                out = m(tt, vt, at)
                if dev == "cuda":
                    torch.cuda.synchronize()
            return out

        med, best = _time(fwd, args.repeats)
        rows.append((name, f"torch {torch.__version__.split('+')[0]}", dev, med, best))
    params, hp2 = load_jax_vqvae_from_state(model.cpu().state_dict(), hp)
    jfwd = jax.jit(vqvae_forward, static_argnums=1)
    jt, jv, ja = (jax.device_put(jnp.asarray(x)) for x in (t, v, a))
    t0 = time.perf_counter()
    jax.block_until_ready(jfwd(params, hp2, jt, jv, ja))
    compile_s = time.perf_counter() - t0
    med, best = _time(lambda: jax.block_until_ready(jfwd(params, hp2, jt, jv, ja)), args.repeats)
    rows.append((name, f"jax {jax.__version__} (jit, compile {compile_s:.1f} s)",
                 jax.default_backend(), med, best))
    return rows


def table(rows, args) -> str:
    names = dict.fromkeys(r[0] for r in rows)
    cfg = "; ".join(f"{k}: ch {c}, {n} res block(s)/level, Prophet views {i or 224}x{i or 224}"
                    for k, (c, n, i) in CONFIGS.items() if k in names)
    lines = [f"`python bench/vqvae_latency.py --repeats {args.repeats}`. Batch 1, fp32, "
             f"median and min of {args.repeats} calls after warm-up (compile excluded); torch "
             f"threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, {platform.machine()}, "
             f"load average during the run {os.getloadavg()[0]:.1f} (shared machine: "
             f"expect noise). Configs: {cfg}.", "",
             "| config | implementation | device | median ms | min ms |", "|---|---|---|---|---|"]
    lines += [f"| {c} | {name} | {dev} | {med:.1f} | {best:.1f} |"
              for c, name, dev, med, best in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="published,trainer",
                    help=f"comma-separated, from {sorted(CONFIGS)}")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--heading", default=HEADING)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [row for name in args.configs.split(",") for row in run(name.strip(), args)]
    body = table(rows, args)
    print(body)
    if not args.no_write:
        write_section(args.heading, body)
        print(f"updated {RESULTS} ({args.heading})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
