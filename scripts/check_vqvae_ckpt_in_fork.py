"""Load a VQ-VAE ``.ckpt`` into the published fork's ``ResidualVQVAEWrapper`` and compare.

Checks that a file restac_ros wrote (e.g. by ``restac-train-vqvae``) is usable by the
published code: every state_dict key reaches a module of the fork's wrapper (which
itself loads with strict=False, so this is checked here), and the fork's forward
agrees with restac_ros's torch reference and JAX port on seeded random inputs.
Run outside the project with the fork importable, as for make_vqvae_fork_fixture.py:

  PYTHONPATH=$DEPS:$FORK/src:$UNIT:<repo> python scripts/check_vqvae_ckpt_in_fork.py model.ckpt

Prints one JSON object; exit status 1 when a key was not loaded, the codes differ or a
relative L2 error exceeds 1e-4.  Never imported by tests.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import jax
    import jax.numpy as jnp
    import openpi.models.pi0_restac as fork

    from restac_ros.tactile.jax_port import load_jax_vqvae, vqvae_forward
    from restac_ros.tactile.wrapper import ResidualVQVAEWrapper

    raw = torch.load(args.ckpt, weights_only=True)
    w = fork.ResidualVQVAEWrapper(args.ckpt, frozen=True)
    report: dict = {"ckpt": args.ckpt, "fork_problems": []}
    consumed = set()
    for name in ("prophet_encoder", "obs_encoder", "quant_conv", "event_encoder", "residual_vq"):
        for k, v in getattr(w, name).state_dict().items():
            key = f"{name}.{k}"
            consumed.add(key)
            if key not in raw["state_dict"]:
                report["fork_problems"].append(f"fork module key {key} not in the file")
            elif not torch.equal(v.cpu(), raw["state_dict"][key]):
                report["fork_problems"].append(f"{key} not loaded by the fork wrapper")
    report["fork_problems"] += [f"file key {k} ignored by the fork wrapper"
                                for k in sorted(set(raw["state_dict"]) - consumed)]

    g = np.random.default_rng(args.seed)
    b = args.batch
    tactile = g.uniform(0, 1, (b, 128, 160, 3)).astype(np.float32)  # HWC [0, 1]
    views = g.uniform(-1, 1, (b, 3, 3, 224, 224)).astype(np.float32)  # CHW [-1, 1]
    action = (0.05 * g.standard_normal((b, 7))).astype(np.float32)
    q_f, lv_f = (np.asarray(x) for x in w.forward(tactile, views, action))
    with torch.no_grad():
        t = torch.from_numpy(tactile).permute(0, 3, 1, 2) * 2.0 - 1.0
        v = ((torch.from_numpy(views) + 1.0) / 2.0
             - torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)) \
            / torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
        mu, _ = w.prophet_encoder(v, torch.from_numpy(action))
        h = w.event_encoder(w.quant_conv(w.obs_encoder(t)), mu)
        codes_f = w.residual_vq(h.view(b, -1, 1, 1))[2][2].reshape(-1).numpy()

    ours = ResidualVQVAEWrapper(args.ckpt, tactile_layout="HWC", tactile_range="[0,1]",
                                visual_layout="CHW", visual_range="[-1,1]", device="cpu")
    o = ours(tactile, views, action)
    params, hp = load_jax_vqvae(args.ckpt)
    oj = jax.jit(vqvae_forward, static_argnums=1)(
        params, hp, jnp.asarray(tactile * 2 - 1), jnp.asarray(views.transpose(0, 1, 3, 4, 2)),
        jnp.asarray(action))

    def rel(a, ref):
        return float(np.linalg.norm(np.asarray(a) - ref) / max(np.linalg.norm(ref), 1e-30))

    report.update({
        "codes_fork": codes_f.tolist(),
        "codes_torch": o.codes[:, 0].tolist(), "codes_jax": np.asarray(oj.codes)[:, 0].tolist(),
        "rel_l2_torch": {"q_event": rel(o.q_event, q_f), "logvar": rel(o.logvar, lv_f)},
        "rel_l2_jax": {"q_event": rel(oj.q_event, q_f), "logvar": rel(oj.logvar, lv_f)},
    })
    ok = (not report["fork_problems"]
          and report["codes_fork"] == report["codes_torch"] == report["codes_jax"]
          and max(*report["rel_l2_torch"].values(), *report["rel_l2_jax"].values()) <= 1e-4)
    report["ok"] = ok
    print(json.dumps(report, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
