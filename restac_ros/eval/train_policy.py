"""`restac-train-policy BAG... --out CKPT`: small-scale Pi0_ResTac training from bags (CPU).

Pipeline: norm stats from the bags (openpi format) -> sentencepiece tokenizer on
the bags' prompts (or --tokenizer) -> observations + teacher chunks from the
core's BagDataset (the live node's path) -> flow-matching training with optax
-> checkpoint directory (docs/ARCHITECTURE.md layout, model.policy.save_policy_checkpoint).

Training state (params, optimizer, step) is saved every --save-every steps to
`CKPT.train/`; `--resume` continues from there (same data and config required).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from restac_ros.core.bag_dataset import TEACHER_TOPIC, BagError
from restac_ros.core.observation_spec import DELTA_ACTION_MODES, delta_action_mask

from . import bag_io, params, train_data

VARIANTS = {
    # dummy Gemma experts (width 64, depth 4) + a 32-wide SigLIP with 32x32 patches.
    "small": dict(paligemma_variant="dummy", action_expert_variant="dummy",
                  vision_variant="micro"),
    # Same experts with the 64-wide, 16x16-patch "tiny" SigLIP (~4x slower on CPU).
    "tiny": dict(paligemma_variant="dummy", action_expert_variant="dummy",
                 vision_variant="tiny"),
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 1200
    batch_size: int = 8
    lr: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    ema_decay: float = 0.99
    seed: int = 0
    rate_hz: float = 10.0  # observation rate when reading the bags
    save_every: int = 200
    variant: str = "small"
    horizon: int = 15
    max_token_len: int = 16
    fusion_dim: int = 64
    num_fusion_heads: int = 4
    gate: str = "necessity"
    vqvae_checkpoint: str | None = None
    # Dims predicted relative to the current state (core.observation_spec.delta_action_mask):
    # joints (openpi: gripper absolute) | all | none.
    delta_actions: str = "joints"
    # Action stats per chunk step ([H, D], model/norm_stats.py): the first steps of a delta
    # chunk are ~5x smaller than the last; pooled stats leave them imprecise.
    per_step_action_stats: bool = True
    # Fraction of training examples shown without touch (tactile_mask False: no tactile
    # correction, as with the gate closed), so the backbone alone stays a working
    # vision-only policy and the gated residual learns what touch adds.
    tactile_dropout: float = 0.0
    # Centre the gate's logvar_center (necessity / factorized gates) on the training data's
    # mean VQ-VAE logvar (vqvae mode): the published init (-9.5) assumes the published
    # VQ-VAE's logvar scale; on a small VQ-VAE whose logvar sits at -4..-1 the gate starts
    # saturated (constant, no gradient to its centre).
    center_gate_on_data: bool = False
    # False: the plain backbone without a tactile branch (no encoder, gate or fusion
    # params), trained on the same bags: the vision-only baseline a tactile policy is
    # compared with (its 'zeroed' ablation is the same network trained with touch).
    use_tactile: bool = True

    def model_config(self, vocab_size: int, action_dim: int):
        from restac_ros.model.config import Pi0ResTacConfig

        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; known: {sorted(VARIANTS)}")
        return Pi0ResTacConfig(
            backbone="pi0", **VARIANTS[self.variant], action_dim=action_dim,
            action_horizon=self.horizon, max_token_len=self.max_token_len,
            vocab_size=vocab_size, fusion_dim=self.fusion_dim,
            num_fusion_heads=self.num_fusion_heads, gate=self.gate, use_tactile=self.use_tactile,
            residual_vqvae_checkpoint=self.vqvae_checkpoint)

    def digest(self) -> str:
        data = dataclasses.asdict(self)
        data.pop("steps")  # resuming may extend the run
        data.pop("save_every")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class _Trainer:
    """Functional (jit-friendly) training state around an nnx model."""

    def __init__(self, model, tc: TrainConfig):
        import flax.nnx as nnx
        import jax
        import jax.numpy as jnp
        import optax

        self.graphdef, params, self.rest = nnx.split(model, nnx.Param, ...)
        # Strong dtypes up front, so the jitted step does not compile twice (weak -> strong).
        params = jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype), params)
        self.params = params
        sched = optax.warmup_cosine_decay_schedule(
            0.0, tc.lr, max(1, min(tc.warmup_steps, tc.steps - 1)), max(tc.steps, 2), tc.lr * 0.05)
        self.tx = optax.chain(optax.clip_by_global_norm(tc.grad_clip),
                              optax.adamw(sched, weight_decay=tc.weight_decay))
        self.opt_state = jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype),
                                      self.tx.init(params))
        # Exponential moving average of the weights (as openpi); the checkpoint stores it.
        self.ema = jax.tree.map(jnp.array, params)
        graphdef, rest, tx, decay = self.graphdef, self.rest, self.tx, tc.ema_decay

        def loss_fn(p, rng, obs, actions, event):
            m = nnx.merge(graphdef, p, rest)
            return jnp.mean(m.compute_loss(rng, obs, actions, tactile_event=event))

        def step(p, opt_state, ema, step_i, rng, obs, actions, event):
            loss, grads = jax.value_and_grad(loss_fn)(p, rng, obs, actions, event)
            updates, opt_state = tx.update(grads, opt_state, p)
            p = optax.apply_updates(p, updates)
            d = jnp.minimum(decay, (1.0 + step_i) / (10.0 + step_i))
            ema = jax.tree.map(lambda e, x: d * e + (1.0 - d) * x, ema, p)
            return p, opt_state, ema, loss

        self._step = jax.jit(step, donate_argnums=(0, 1, 2))

    def step(self, step_i: int, rng, obs, actions, event=None) -> float:
        """event: the frozen VQ-VAE's precomputed (q_event, logvar, codes) for obs, or None
        (placeholder tactile encoder, trained in the step)."""
        import jax.numpy as jnp

        self.params, self.opt_state, self.ema, loss = self._step(
            self.params, self.opt_state, self.ema, jnp.float32(step_i), rng, obs, actions,
            event)
        return float(loss)

    def model(self):
        """The model with the EMA weights."""
        import flax.nnx as nnx

        return nnx.merge(self.graphdef, self.ema, self.rest)

    # -- training-state files ------------------------------------------------
    def _tree(self):
        return (self.params, self.opt_state, self.ema)

    def leaves(self):
        import jax

        return [np.asarray(x) for x in jax.tree.leaves(self._tree())]

    def load_leaves(self, leaves: list[np.ndarray]) -> None:
        import jax

        treedef = jax.tree.structure(self._tree())
        old = jax.tree.leaves(self._tree())
        if len(leaves) != len(old):
            raise ValueError(f"training state has {len(leaves)} arrays, model needs {len(old)}")
        for i, (a, b) in enumerate(zip(leaves, old, strict=True)):
            if tuple(a.shape) != tuple(np.shape(b)):
                raise ValueError(f"training state array {i}: shape {a.shape} vs {np.shape(b)}")
        self.params, self.opt_state, self.ema = jax.tree.unflatten(
            treedef, [jax.numpy.asarray(x, dtype=np.asarray(b).dtype)
                      for x, b in zip(leaves, old, strict=True)])


def _center_gate(model, data: train_data.TrainArrays) -> None:
    import jax.numpy as jnp

    if data.tactile_events is None or not hasattr(model.gate, "logvar_center"):
        raise ValueError("center_gate_on_data needs the VQ-VAE tactile mode and a necessity "
                         "or factorized gate")
    centre = model.gate.logvar_center
    centre.set_value(jnp.full_like(centre.get_value(), float(np.mean(
        data.tactile_events.logvar))))


def work_dir(out: Path) -> Path:
    return out.parent / f"{out.name}.train"


def _save_state(wd: Path, trainer: _Trainer, step: int, meta: dict) -> None:
    tmp = wd / "state.tmp.npz"
    np.savez(tmp, *trainer.leaves())
    tmp.replace(wd / "state.npz")
    (wd / "state.json").write_text(json.dumps({**meta, "step": step}, indent=2))


def _prepare(bags: list[Path], wd: Path, tc: TrainConfig, p: dict, tokenizer: Path | None,
             teacher_topic: str):
    from restac_ros.model import norm_stats as norm
    from restac_ros.model.tokenizer import PromptTokenizer
    from restac_ros.model.validation import check_norm_stats

    tok_path = wd / "tokenizer.model"
    stats_path = wd / "norm_stats.json"
    if not tok_path.is_file():
        if tokenizer is not None:
            shutil.copy2(tokenizer, tok_path)
        else:
            prompts = [bag_io.prompt(b) or "" for b in bags]
            if p["default_prompt"]:
                prompts.append(p["default_prompt"])
            train_data.train_tokenizer(prompts, tok_path)
    if not stats_path.is_file():
        stats = train_data.compute_stats(bags, p["joint_states_topic"], p["joint_names"],
                                         teacher_topic)
        norm.save_norm_stats(stats_path, stats)
    stats = norm.load_norm_stats(stats_path)
    vocab = PromptTokenizer(tok_path, tc.max_token_len).vocab_size
    cfg = tc.model_config(vocab, len(p["joint_names"]))
    # Refused now rather than when the trained checkpoint is loaded (zero std: constant data).
    check_norm_stats(stats, stats_path, use_quantiles=cfg.pi05)
    tok = PromptTokenizer(tok_path, cfg.max_token_len)
    return cfg, stats, tok, tok_path


def train(bags: Sequence[str | Path], out: str | Path, tc: TrainConfig = TrainConfig(),
          params_path: str | Path | None = None, tokenizer: str | Path | None = None,
          resume: bool = False, progress: bool = True, teacher_topic: str = TEACHER_TOPIC,
          log=print, stop_after: int | None = None) -> Path | None:
    """Train and write the checkpoint directory `out`; returns its path.

    stop_after: end this session after that step (of the tc.steps schedule), saving the
    training state only (no checkpoint, returns None); continue later with resume=True.
    """
    import jax
    from tqdm import tqdm

    from restac_ros.model.policy import save_policy_checkpoint

    bags = [Path(b) for b in bags]
    out = Path(out)
    if not 0.0 <= tc.tactile_dropout < 1.0:
        raise ValueError(f"tactile_dropout must be in [0, 1), got {tc.tactile_dropout}")
    if not tc.use_tactile and (tc.vqvae_checkpoint or tc.tactile_dropout or
                               tc.center_gate_on_data):
        raise ValueError("use_tactile False (no tactile branch) takes no vqvae_checkpoint, "
                         "tactile_dropout or center_gate_on_data")
    if out.exists() and any(out.iterdir()) and not resume:
        raise FileExistsError(f"checkpoint directory {out} exists and is not empty "
                              "(use --resume to continue its training)")
    p = params.load_params(params_path)
    wd = work_dir(out)
    data_id = hashlib.sha256("\n".join(str(b.resolve()) for b in bags).encode()).hexdigest()[:16]
    meta = {"config_digest": tc.digest(), "data": data_id}
    state_file = wd / "state.json"
    if resume:
        if not state_file.is_file():
            raise FileNotFoundError(f"--resume: no training state in {wd}")
        saved = json.loads(state_file.read_text())
        if saved.get("config_digest") != meta["config_digest"] or saved.get("data") != data_id:
            raise ValueError(f"--resume: {wd} was trained with another config or other bags")
    elif wd.exists():
        shutil.rmtree(wd)
    wd.mkdir(parents=True, exist_ok=True)

    cfg, stats, tok, tok_path = _prepare(bags, wd, tc, p, tokenizer and Path(tokenizer),
                                         teacher_topic)
    names = tuple(params.action_space(p, cfg.action_horizon).names)
    mask = delta_action_mask(p["action_space"], names, tc.delta_actions)
    builder = params.builder_for(p, cfg, stats, tok, mask)
    t0 = time.perf_counter()
    data = train_data.extract(bags, builder, tc.rate_hz, progress, teacher_topic)
    if any(mask) or tc.per_step_action_stats:  # "actions" stats over the model's chunks
        stats = {**stats, "actions": train_data.relative_action_stats(
            data, builder, per_step=tc.per_step_action_stats)}
        builder = params.builder_for(p, cfg, stats, tok, mask)
        data.set_targets(builder)
    log(f"{data.n} training examples from {len(bags)} bag(s) in {time.perf_counter() - t0:.1f} s")

    model = cfg.create(jax.random.key(tc.seed))
    if cfg.use_tactile and cfg.tactile_mode == "vqvae":
        # The VQ-VAE is frozen: its outputs are computed once per example, not in every step.
        t1 = time.perf_counter()
        data.tactile_events = train_data.precompute_tactile_events(
            data, model.tactile_encoder, progress=progress)
        log(f"VQ-VAE outputs of {data.n} examples precomputed in "
            f"{time.perf_counter() - t1:.1f} s")
    if tc.center_gate_on_data:
        _center_gate(model, data)
    trainer = _Trainer(model, tc)
    start = 0
    if resume:
        with np.load(wd / "state.npz") as z:
            trainer.load_leaves([z[f"arr_{i}"] for i in range(len(z.files))])
        start = int(json.loads(state_file.read_text())["step"])
        log(f"resumed from step {start} ({wd})")
    losses = []
    end = tc.steps if stop_after is None else min(tc.steps, max(stop_after, start))
    bar = tqdm(range(start, end), initial=start, total=tc.steps, desc="training",
               unit="step", disable=not progress)
    base = jax.random.key(tc.seed + 1)
    done = start
    try:
        for step in bar:
            idx = np.random.default_rng([tc.seed, step]).integers(0, data.n, tc.batch_size)
            obs, actions, event = data.batch(idx)
            if tc.tactile_dropout > 0:
                drop = np.random.default_rng([tc.seed, step, 1]).random(len(idx))
                obs = dataclasses.replace(
                    obs, tactile_mask=obs.tactile_mask & (drop >= tc.tactile_dropout))
            loss = trainer.step(step, jax.random.fold_in(base, step), obs, actions, event)
            if not np.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss} at step {step}")
            losses.append(loss)
            done = step + 1
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            if done % tc.save_every == 0 and done < tc.steps:
                _save_state(wd, trainer, done, meta)
    except KeyboardInterrupt:
        _save_state(wd, trainer, done, meta)
        raise
    _save_state(wd, trainer, max(done, start), meta)
    if done < tc.steps:
        log(f"stopped at step {done} of {tc.steps}; continue with --resume (state in {wd})")
        return None

    policy_meta = {
        "action_space": p["action_space"], "action_names": list(p["joint_names"]),
        "joint_names": list(p["joint_names"]), "dt_s": float(p["action_dt_s"]),
        "camera_slots": list(p["camera_slots"]), "asset_id": "restac_sample",
        "delta_action_mask": list(mask),
        "training": {**dataclasses.asdict(tc), "examples": data.n,
                     "bags": [b.name for b in bags],
                     "final_loss": float(np.mean(losses[-20:])) if losses else None},
    }
    if out.exists():  # --resume of a finished run: replace its checkpoint
        shutil.rmtree(out)
    save_policy_checkpoint(out, trainer.model(), cfg, stats, tok_path, policy_meta)
    log(f"wrote {out} (step {max(tc.steps, start)}, "
        f"loss {policy_meta['training']['final_loss']})")
    return out


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    ap = argparse.ArgumentParser(prog="restac-train-policy", description=__doc__.split("\n\n")[0])
    ap.add_argument("bags", nargs="+", type=Path, help="rosbag2 directories (sqlite3 or MCAP)")
    ap.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    ap.add_argument("--params", type=Path, default=None,
                    help="policy params YAML (default: the package's config/policy.yaml)")
    ap.add_argument("--steps", type=int, default=d.steps)
    ap.add_argument("--batch", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--rate", type=float, default=d.rate_hz,
                    help="observation rate (Hz, bag time) for training examples")
    ap.add_argument("--horizon", type=int, default=d.horizon)
    ap.add_argument("--save-every", type=int, default=d.save_every)
    ap.add_argument("--variant", choices=sorted(VARIANTS), default=d.variant)
    ap.add_argument("--delta-actions", choices=DELTA_ACTION_MODES, default=d.delta_actions,
                    help="dims predicted relative to the state: joints (gripper absolute), "
                         "all, none")
    ap.add_argument("--gate", choices=("factorized", "necessity", "learnable"), default=d.gate)
    ap.add_argument("--tactile-dropout", type=float, default=d.tactile_dropout,
                    help="fraction of examples trained without touch (tactile_mask False)")
    ap.add_argument("--no-tactile", action="store_true",
                    help="train the plain backbone without a tactile branch (vision-only "
                         "baseline)")
    ap.add_argument("--vqvae", type=Path, default=None,
                    help="frozen Residual VQ-VAE .ckpt (default: trainable placeholder encoder)")
    ap.add_argument("--tokenizer", type=Path, default=None,
                    help="sentencepiece model to reuse (default: train one on the prompts)")
    ap.add_argument("--teacher-topic", default=TEACHER_TOPIC)
    ap.add_argument("--resume", action="store_true", help="continue from OUT.train/")
    ap.add_argument("--stop-after", type=int, default=None,
                    help="end this session after step N (state saved; continue with --resume)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tc = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, seed=args.seed,
                     rate_hz=args.rate, horizon=args.horizon, save_every=args.save_every,
                     variant=args.variant, gate=args.gate, delta_actions=args.delta_actions,
                     tactile_dropout=args.tactile_dropout, use_tactile=not args.no_tactile,
                     vqvae_checkpoint=str(args.vqvae.resolve()) if args.vqvae else None)
    try:
        train(args.bags, args.out, tc, args.params, args.tokenizer, args.resume,
              progress=not args.quiet, teacher_topic=args.teacher_topic,
              stop_after=args.stop_after)
    except (BagError, params.ParamsError, FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"restac-train-policy: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"restac-train-policy: interrupted; resume with --resume "
              f"(state in {work_dir(args.out)})", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
