"""restac-serve: a policy checkpoint behind openpi's websocket protocol.

    restac-serve [--params config/policy.yaml] [--checkpoint CKPT] [--port 8000]
                 [--host 127.0.0.1] [--max-batch 8] [--max-wait-ms 5]

The observation spec (joint order, camera slots, tactile, default prompt, action
space) comes from the same policy params restac-eval and policy_node read; the API key,
if any, from an environment variable (never the command line: `ps` shows that).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from pathlib import Path

from restac_ros.eval import params as eval_params
from restac_ros.serve.protocol import WireLimits

API_KEY_ENV = "RESTAC_SERVE_API_KEY"
EXIT_USAGE = 2


def build_engine(p: dict, checkpoint: Path, *, max_batch: int, device: str | None = None):
    """PolicyEngine for a params dict (eval.params.load_params) and a checkpoint."""
    import jax

    from restac_ros.core.observation_spec import delta_action_mask_from_meta
    from restac_ros.model.policy import RestacPolicy
    from restac_ros.serve.engine import PolicyEngine

    ckpt = Path(checkpoint).expanduser().absolute()
    if not (ckpt / "restac_config.json").is_file():
        raise eval_params.ParamsError(f"{ckpt} is not a policy checkpoint (no "
                                      "restac_config.json): pass --checkpoint")
    with jax.default_device(jax.devices(device or p.get("device", "cpu"))[0]):
        policy = RestacPolicy.from_checkpoint(ckpt, num_steps=int(p["num_steps"]))
    if policy.tokenizer is None or policy.norm_stats is None:
        raise eval_params.ParamsError(f"{ckpt} lacks its tokenizer or norm stats")
    mask = delta_action_mask_from_meta(policy.meta or {}, eval_params.action_space(p, 1).dim)
    builder = eval_params.builder_for(p, policy.config, policy.norm_stats, policy.tokenizer,
                                      delta_action_mask=mask)
    c = policy.config
    tactile = "vqvae" if c.residual_vqvae_checkpoint else "placeholder"
    describe = (f"{ckpt.name}: {c.backbone} {c.paligemma_variant}/{c.action_expert_variant}/"
                f"{c.vision_variant}, H={c.action_horizon}, action_dim={c.action_dim}, "
                f"tactile={tactile}")
    return PolicyEngine(policy, builder, max_batch=max_batch, tactile_mode=tactile,
                        describe=describe)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="restac-serve", description=__doc__.split("\n")[0])
    ap.add_argument("--params", type=Path, default=None,
                    help="policy params YAML (default: the package's config/policy.yaml)")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="policy checkpoint (default: the params' checkpoint_dir)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    ap.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    ap.add_argument("--api-key-env", default=API_KEY_ENV,
                    help=f"environment variable holding the API key (default {API_KEY_ENV}; "
                         "unset or empty: no key required)")
    ap.add_argument("--device", default=None, help="JAX platform (default: the params' device)")
    ap.add_argument("--seed", type=int, default=None,
                    help="base of per-client noise seeds for requests without 'seed'")
    ap.add_argument("--max-batch", type=int, default=8, help="requests per model call")
    ap.add_argument("--max-wait-ms", type=float, default=5.0,
                    help="longest a request waits for others to join its batch")
    ap.add_argument("--max-queue", type=int, default=64, help="requests waiting at most")
    ap.add_argument("--max-clients", type=int, default=32, help="connections at most")
    ap.add_argument("--max-frame-mb", type=float, default=8.0, help="largest request frame")
    ap.add_argument("--idle-timeout-s", type=float, default=3600.0,
                    help="close a client that sends nothing for this long")
    ap.add_argument("--open-timeout-s", type=float, default=10.0,
                    help="close a connection whose handshake takes longer")
    return ap


def run(args: argparse.Namespace) -> int:
    from restac_ros.serve.batcher import Batcher
    from restac_ros.serve.requests import parse_request
    from restac_ros.serve.server import PolicyServer, ServerOptions

    p = eval_params.load_params(args.params)
    engine = build_engine(p, args.checkpoint or Path(p["checkpoint_dir"]),
                          max_batch=args.max_batch, device=args.device)
    warm_s = engine.warmup()
    batcher = Batcher(engine.run, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                      max_queue=args.max_queue)
    frame = int(args.max_frame_mb * 1024 * 1024)
    limits = dataclasses.replace(WireLimits(), max_frame_bytes=frame,
                                 max_array_bytes=min(frame, WireLimits().max_array_bytes))
    options = ServerOptions(
        host=args.host, port=args.port, api_key=os.environ.get(args.api_key_env) or None,
        max_clients=args.max_clients, open_timeout_s=args.open_timeout_s,
        idle_timeout_s=args.idle_timeout_s,
        seed=int(args.seed if args.seed is not None else p["seed"]), limits=limits)
    spec = engine.builder.spec
    server = PolicyServer(batcher.submit, lambda obj: parse_request(obj, spec),
                          engine.metadata(), options)

    def started(address: tuple[str, int]) -> None:
        key = "API key required" if options.api_key else "no API key"
        print(f"restac-serve: {engine.describe}; warm-up {warm_s:.1f} s; {key}; "
              f"listening on ws://{address[0]}:{address[1]}", flush=True)

    try:
        asyncio.run(server.serve(started))
    except KeyboardInterrupt:
        pass
    finally:
        batcher.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    for name in ("max_batch", "max_queue", "max_clients"):
        if getattr(args, name) < 1:
            print(f"restac-serve: error: --{name.replace('_', '-')} must be >= 1",
                  file=sys.stderr)
            return EXIT_USAGE
    try:
        return run(args)
    except (eval_params.ParamsError, ValueError, OSError) as err:
        print(f"restac-serve: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
