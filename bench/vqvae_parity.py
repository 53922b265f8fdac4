"""Published-size parity: restac_ros's torch reference and JAX port against the fork's outputs.

    python bench/vqvae_parity.py DIR [--write-results]

DIR is what ``scripts/make_vqvae_fork_fixture.py published --out DIR`` wrote (run
outside the project against mirrors of the published code, see that script):
``vqvae.ckpt`` (the fork's classes at the published size: ch 128, ch_mult [1,1,2,4],
2 res blocks, attention at 16, ResNet18, mid 256, n_e 512, e_dim 64, seeded random
weights), ``io.npz`` (inputs, the fork's q_event, mu, logvar, z_real, h_event, codes)
and ``meta.json`` (fork commit, versions).  Prints a table of relative L2 errors
(||ours - fork|| / ||fork||) and whether the codes are identical; ``--write-results``
replaces this section of bench/RESULTS.md.  Exit status 1 if any error exceeds 1e-4 or
a code differs.  The small offline version of this check is test/tactile/test_fork_parity.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results_md import write_section  # noqa: E402  (bench/ is on sys.path)

from restac_ros.tactile.jax_port import load_jax_vqvae, vqvae_forward  # noqa: E402
from restac_ros.tactile.wrapper import ResidualVQVAEWrapper  # noqa: E402

HEADING = "VQ-VAE parity with the published fork (published size, CPU)"
KEYS = ("q_event", "mu", "logvar", "z_real", "h_event")
TOL = 1e-4


def fork_inputs(io):
    """The generator's conversion: tactile u8/255 HWC [0,1]; views CHW u8/127.5 - 1."""
    tactile = io["tactile_u8"].astype(np.float32) / np.float32(255.0)
    views = (io["views_u8"].transpose(0, 1, 4, 2, 3).astype(np.float32) / np.float32(127.5)
             - np.float32(1.0))
    return tactile, np.ascontiguousarray(views), io["action_prev"]


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def run(d: Path) -> tuple[list, dict]:
    meta = json.loads((d / "meta.json").read_text())
    with np.load(d / "io.npz") as z:
        io = {k: z[k] for k in z.files}
    tactile, views, action = fork_inputs(io)
    rows = []
    t0 = time.perf_counter()
    w = ResidualVQVAEWrapper(d / "vqvae.ckpt", tactile_layout="HWC", tactile_range="[0,1]",
                             visual_layout="CHW", visual_range="[-1,1]", device="cpu")
    o = w(tactile, views, action)
    torch_out = {"q_event": o.q_event, "mu": o.mu, "logvar": o.logvar, "z_real": o.z_real,
                 "h_event": o.h_event}
    rows.append(("torch reference", {k: rel_l2(torch_out[k].numpy(), io[f"ref_{k}"])
                                     for k in KEYS},
                 bool(np.array_equal(o.codes[:, 0].numpy(), io["ref_codes"])),
                 time.perf_counter() - t0))
    t0 = time.perf_counter()
    params, hp = load_jax_vqvae(d / "vqvae.ckpt")
    j = jax.jit(vqvae_forward, static_argnums=1)(
        params, hp, jnp.asarray(tactile * np.float32(2.0) - np.float32(1.0)),
        jnp.asarray(views.transpose(0, 1, 3, 4, 2)), jnp.asarray(action))
    jax_out = {"q_event": j.q_event, "mu": np.asarray(j.mu).transpose(0, 3, 1, 2),
               "logvar": j.logvar, "z_real": np.asarray(j.z_real).transpose(0, 3, 1, 2),
               "h_event": j.h_event}
    rows.append((f"JAX port (jax {jax.__version__}, jit)",
                 {k: rel_l2(jax_out[k], io[f"ref_{k}"]) for k in KEYS},
                 bool(np.array_equal(np.asarray(j.codes)[:, 0], io["ref_codes"])),
                 time.perf_counter() - t0))
    return rows, meta


def table(rows, meta, d: Path) -> str:
    hp = meta["hyper_parameters"]
    lines = [
        f"`python bench/vqvae_parity.py DIR` on the output of `scripts/make_vqvae_fork_fixture.py "
        f"published`: the fork's own classes ({meta['fork']['repo']} "
        f"{meta['fork']['commit'][:12]}, "
        f"UniT {meta['unit']['commit'][:12]}) run unchanged on seeded random weights "
        f"(ch {hp['ddconfig']['ch']}, ch_mult {hp['ddconfig']['ch_mult']}, "
        f"{hp['ddconfig']['num_res_blocks']} res blocks, attention at "
        f"{hp['ddconfig']['attn_resolutions']}, ResNet18, mid {hp['prophet_config']['mid_dim']}, "
        f"n_e {hp['residual_vq_config']['n_e']}, e_dim {hp['residual_vq_config']['e_dim']}), "
        f"B = {meta['batch']}, torch {meta['torch']} on {meta['device']}. Relative L2 error "
        f"||ours - fork|| / ||fork|| (limit {TOL:g}); codes {meta['codes']}. "
        f"{platform.machine()}, {os.cpu_count()} CPUs.",
        "",
        "| implementation | " + " | ".join(KEYS) + " | codes identical | wall s |",
        "|---|" + "---|" * (len(KEYS) + 2),
    ]
    for name, errs, same, secs in rows:
        lines.append(f"| {name} | " + " | ".join(f"{errs[k]:.1e}" for k in KEYS)
                     + f" | {'yes' if same else 'NO'} | {secs:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    torch.backends.cudnn.allow_tf32 = False
    rows, meta = run(args.dir)
    text = table(rows, meta, args.dir)
    print(text)
    if args.write_results:
        write_section(HEADING, text)
    ok = all(same and max(errs.values()) <= TOL for _, errs, same, _ in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
