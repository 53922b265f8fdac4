"""The touch demo's artifacts, trained once on restac_sim recordings and cached.

`ensure_touch_demo()` builds (or reuses) three stages under `.cache/demo_touch/`, each
retrained only when its own key changes (a hash of its config and of the sources that can
change its output, plus the key of the stage it reads):

  episodes/  scripted-expert episodes of restac_sim (`sim.recorder.record_episode`, seeded,
             deterministic), the training set; failed expert episodes are left out
  vqvae/     a small published-layout Residual VQ-VAE (`restac-train-vqvae`'s
             `train_vqvae`: tactile + the three camera views + action_prev) on those frames
  policy/    a small Pi0_ResTac trained by `restac-train-policy` with that VQ-VAE frozen
             (its outputs precomputed once per training frame:
             `train_data.precompute_tactile_events`)

`python -m restac_ros.eval.demo_touch` builds them (`make demo-touch-policy`); `restac-demo`
runs them closed loop. Sized for a first run of a few minutes on a 2-core CPU.
`--vision-baseline` also builds `vision_only/`: the same policy config without a tactile
branch, trained on the same episodes (bench/touch_targets.py `--baseline`); not part of
the demo.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import inspect
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import train_policy
from .cache_build import replace_with, staging_dir

DEFAULT_CACHE_DIR = ".cache/demo_touch"
KEY_FILE = "demo_cache.json"
_PKG = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class VQVAETrainSpec:
    """restac-train-vqvae's knobs for the demo (published layout, CPU-sized widths)."""

    ch: int = 32
    num_res_blocks: int = 1
    codebook_size: int = 16
    prophet_image_size: int = 32  # restac_ros extension: views resized before the ResNet
    steps: int = 120
    event_steps: int = 400
    batch_size: int = 4
    lr: float = 1e-3
    rate_hz: float = 2.5  # frames per second of episode time
    seed: int = 0
    # One torch thread: on a shared 2-core machine two threads stall on each other
    # (8 s a step instead of 0.5 s next to a busy JAX process, measured here).
    threads: int = 1


@dataclasses.dataclass(frozen=True)
class TouchDemoConfig:
    # Training worlds; evaluation uses other seeds (restac-eval-sim's default 100-149).
    train_seeds: tuple[int, ...] = tuple(range(1000, 1030))
    episode_seconds: float = 8.0
    successful_only: bool = True  # leave failed expert episodes out of the training set
    vqvae: VQVAETrainSpec = VQVAETrainSpec()
    # Every example with touch (tactile_dropout 0). With 30 % of the examples shown
    # without it, the policy lifted only the light boxes (held-out seeds 100-109: 1/10,
    # tactile on); without dropout it squeezes the heavy ones harder too (100-119: 12/20).
    policy: train_policy.TrainConfig = train_policy.TrainConfig(
        steps=1500, batch_size=8, rate_hz=5.0, horizon=10, delta_actions="all",
        per_step_action_stats=True, gate="necessity", center_gate_on_data=True,
        tactile_dropout=0.0, seed=0, save_every=10_000)


DEMO_TOUCH = TouchDemoConfig()
# Sources whose change can change a stage's output (cumulative: a stage depends on the
# stages before it). Reports, plots, the executor and the nodes cannot.
_STAGE_SOURCES = {
    "episodes": ("sim/*.py", "sample_bag/writer.py"),
    "vqvae": ("tactile/*.py", "core/*.py"),
    "policy": ("model/*.py", "eval/train_policy.py", "eval/train_data.py", "eval/params.py",
               "eval/bag_io.py"),
}
# ... and the functions of this module that build each stage (so that editing the demo's
# config or another stage's code rebuilds only the stages concerned).
_STAGE_CODE = {"episodes": ("_record_one", "record_episodes"),
               "vqvae": ("train_vqvae_stage",), "policy": ("train_policy_stage",)}
_NOT_SOURCES = ("core/executor.py", "sim/closed_loop.py", "sim/fanout.py", "sim/cli.py",
                "sim/episode_bag.py", "sim/__main__.py")


@dataclasses.dataclass(frozen=True)
class TouchDemo:
    """Paths of the built artifacts."""

    episodes: list[Path]
    vqvae: Path  # .ckpt, published layout
    policy: Path  # policy checkpoint directory (holds its own copy of the VQ-VAE)


def _hash_sources(h, patterns) -> None:
    files = {f for pattern in patterns for f in _PKG.glob(pattern)}
    for f in sorted(files - {_PKG / n for n in _NOT_SOURCES}):
        h.update(str(f.relative_to(_PKG)).encode())
        h.update(f.read_bytes())


def stage_keys(cfg: TouchDemoConfig = DEMO_TOUCH) -> dict[str, str]:
    """One key per stage: its config, its sources and the previous stage's key."""
    from restac_ros.eval.params import default_params_path

    parts = {
        "episodes": {"seeds": list(cfg.train_seeds), "seconds": cfg.episode_seconds,
                     "successful_only": cfg.successful_only},
        "vqvae": dataclasses.asdict(cfg.vqvae),
        "policy": {k: v for k, v in dataclasses.asdict(cfg.policy).items()
                   if k != "vqvae_checkpoint"},
    }
    keys, prev = {}, ""
    for stage, conf in parts.items():
        h = hashlib.sha256(prev.encode())
        h.update(json.dumps(conf, sort_keys=True).encode())
        _hash_sources(h, _STAGE_SOURCES[stage])
        for name in _STAGE_CODE[stage]:
            h.update(inspect.getsource(globals()[name]).encode())
        if stage == "policy":
            h.update(default_params_path().read_bytes())
            xml = _PKG.parent / "package.xml"
            if xml.is_file():
                h.update(xml.read_bytes())
        keys[stage] = prev = h.hexdigest()[:16]
    return keys


def _is_current(path: Path, key: str) -> bool:
    f = path / KEY_FILE
    try:
        return f.is_file() and json.loads(f.read_text()).get("key") == key
    except ValueError:
        return False


def _build_stage(path: Path, key: str, build: Callable[[Path], dict], log) -> None:
    """Build into a temporary sibling, then move into place with its key file."""
    if _is_current(path, key):
        return
    t0 = time.perf_counter()
    with staging_dir(path, log) as tmp:
        new = tmp / path.name
        new.mkdir()
        info = build(new)
        (new / KEY_FILE).write_text(json.dumps(
            {"key": key, "build_seconds": round(time.perf_counter() - t0, 1), **info}, indent=2))
        replace_with(path, new)
    log(f"{path.name}: built in {time.perf_counter() - t0:.0f} s")


def _record_one(path: str, seed: int, seconds: float) -> bool:
    from restac_ros.sim.recorder import record_episode

    return record_episode(Path(path), seed, seconds=seconds).success


def record_episodes(out: Path, seeds, seconds: float, successful_only: bool = True,
                    workers: int = 2, log=print) -> dict:
    """Scripted-expert episodes, one bag per seed, recorded in `workers` spawned processes
    (MuJoCo's EGL context stays out of this process: importing torchvision's triton after
    it segfaults here); failed expert episodes are deleted (successful_only)."""
    import multiprocessing

    seeds = [int(s) for s in seeds]
    paths = [out / f"episode_{s:04d}" for s in seeds]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(max(1, min(workers, len(seeds)))) as pool:
        ok = pool.starmap(_record_one, [(str(p), s, seconds) for p, s in zip(
            paths, seeds, strict=True)], chunksize=1)
    failed = [s for s, good in zip(seeds, ok, strict=True) if not good]
    kept = [p.name for p, good in zip(paths, ok, strict=True) if good or not successful_only]
    for p in paths:
        if p.name not in kept:
            shutil.rmtree(p)
    log(f"episodes: the expert succeeded on {len(seeds) - len(failed)} of {len(seeds)} seeds "
        f"(failed: {failed}); {len(kept)} kept for training")
    if len(kept) < 1:
        raise RuntimeError(f"no usable expert episode in {out} (seeds {seeds})")
    return {"episodes": kept, "failed_seeds": failed}


def train_vqvae_stage(out: Path, bags: list[Path], spec: VQVAETrainSpec,
                      progress: bool = True, log=print) -> dict:
    """restac-train-vqvae on the episodes' frames -> out/vqvae.ckpt."""
    import torch

    from restac_ros.tactile.bag_frames import concat_frames, read_bag_frames
    from restac_ros.tactile.config import default_hparams
    from restac_ros.tactile.train import save_trained, train_vqvae

    hp = default_hparams(ch=spec.ch, n_e=spec.codebook_size, num_res_blocks=spec.num_res_blocks,
                         prophet_input_size=spec.prophet_image_size)
    frames = concat_frames([read_bag_frames(b, rate_hz=spec.rate_hz) for b in bags])
    log(f"vqvae: {len(frames)} frames from {len(bags)} episodes")
    threads = torch.get_num_threads()
    torch.set_num_threads(spec.threads)
    try:
        trainer = train_vqvae(frames, hp, steps=spec.steps, event_steps=spec.event_steps,
                              batch_size=spec.batch_size, lr=spec.lr, device="cpu",
                              seed=spec.seed, progress=progress)
    finally:
        torch.set_num_threads(threads)
    save_trained(trainer, str(out / "vqvae.ckpt"))
    return {"frames": len(frames)}


def train_policy_stage(out: Path, bags: list[Path], vqvae: Path | None,
                       tc: train_policy.TrainConfig, progress: bool = True, log=print) -> dict:
    """restac-train-policy with the frozen VQ-VAE (None: tc as given) -> out/checkpoint."""
    if vqvae is not None:
        tc = dataclasses.replace(tc, vqvae_checkpoint=str(vqvae))
    train_policy.train(bags, out / "checkpoint", tc, progress=progress, log=log)
    shutil.rmtree(train_policy.work_dir(out / "checkpoint"), ignore_errors=True)
    return {}


def vision_baseline_config(cfg: TouchDemoConfig = DEMO_TOUCH) -> train_policy.TrainConfig:
    """The demo policy's training config without the tactile branch."""
    return dataclasses.replace(cfg.policy, use_tactile=False, vqvae_checkpoint=None,
                               tactile_dropout=0.0, center_gate_on_data=False)


def vision_baseline_key(cfg: TouchDemoConfig = DEMO_TOUCH) -> str:
    """The baseline's key: the episodes' key, its config and the policy sources."""
    h = hashlib.sha256(stage_keys(cfg)["episodes"].encode())
    h.update(json.dumps(dataclasses.asdict(vision_baseline_config(cfg)),
                        sort_keys=True).encode())
    _hash_sources(h, _STAGE_SOURCES["policy"])
    h.update(inspect.getsource(train_policy_stage).encode())
    return h.hexdigest()[:16]


def ensure_vision_baseline(cache_dir: str | Path = DEFAULT_CACHE_DIR,
                           cfg: TouchDemoConfig = DEMO_TOUCH, *, progress: bool = True,
                           log=print) -> Path:
    """The vision-only baseline checkpoint (built once per key, after the demo's episodes)."""
    demo = ensure_touch_demo(cache_dir, cfg, progress=progress, log=log)
    root = Path(cache_dir).expanduser().absolute()
    out = root / "vision_only"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _build_stage(out, vision_baseline_key(cfg), lambda d: train_policy_stage(
            d, demo.episodes, None, vision_baseline_config(cfg), progress, log), log)
    return out / "checkpoint"


def ensure_touch_demo(cache_dir: str | Path = DEFAULT_CACHE_DIR, cfg: TouchDemoConfig = DEMO_TOUCH,
                      *, progress: bool = True, log=print) -> TouchDemo:
    """The cached artifacts; builds every stage whose key changed (one builder at a time)."""
    root = Path(cache_dir).expanduser().absolute()
    root.mkdir(parents=True, exist_ok=True)
    keys = stage_keys(cfg)
    ep_dir, vq_dir, pol_dir = root / "episodes", root / "vqvae", root / "policy"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent callers wait, then reuse
        t0 = time.perf_counter()
        stale = [s for s, d in zip(keys, (ep_dir, vq_dir, pol_dir), strict=True)
                 if not _is_current(d, keys[s])]
        if stale:
            log(f"touch demo: building {', '.join(stale)} into {root} (runs once per change)")
        _build_stage(ep_dir, keys["episodes"], lambda d: record_episodes(
            d, cfg.train_seeds, cfg.episode_seconds, cfg.successful_only, log=log), log)
        bags = [ep_dir / n for n in json.loads((ep_dir / KEY_FILE).read_text())["episodes"]]
        _build_stage(vq_dir, keys["vqvae"], lambda d: train_vqvae_stage(
            d, bags, cfg.vqvae, progress, log), log)
        vq = vq_dir / "vqvae.ckpt"
        _build_stage(pol_dir, keys["policy"], lambda d: train_policy_stage(
            d, bags, vq, cfg.policy, progress, log), log)
        if stale:
            log(f"touch demo ready in {time.perf_counter() - t0:.0f} s")
    return TouchDemo(bags, vq, pol_dir / "checkpoint")


def main(argv: list[str] | None = None) -> int:
    import argparse

    from restac_ros.eval.demo_checkpoint import enable_compile_cache

    ap = argparse.ArgumentParser(description="Build (once) the touch demo's episodes, "
                                             "VQ-VAE and policy.")
    ap.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--vision-baseline", action="store_true",
                    help="also the vision-only baseline (same episodes, no tactile branch)")
    args = ap.parse_args(argv)
    enable_compile_cache()
    demo = ensure_touch_demo(args.cache_dir, progress=not args.quiet)
    print(f"vqvae: {demo.vqvae}\npolicy: {demo.policy}")
    if args.vision_baseline:
        print(f"vision-only baseline: "
              f"{ensure_vision_baseline(args.cache_dir, progress=not args.quiet)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
