"""Reference outputs of the published Residual VQ-VAE, computed by the fork's own classes.

Published code (the numbers in test/tactile/fixtures/vqvae_fork_small come from these):
  Awilekong/openpi  b181a9b61c608a81d5395f6dfbae05de938afcce
      src/openpi/models/pi0_restac.py  (ResidualVQVAEWrapper, SpatialTemporalProphetPT,
      EventEncoderPT, VectorQuantizerEMA)  sha256 2a275eae...
  ZhengtongXu/UniT  52a286520b09708934b25c77aa826360d72c79db
      UniT/taming/modules/diffusionmodules/model.py  (Encoder)  sha256 8c3c03be...

Run OUTSIDE the project, against git mirrors; tests never import this file:

  git --git-dir=<mirror of Awilekong/openpi> archive b181a9b | tar -x -C $FORK
  git --git-dir=<mirror of ZhengtongXu/UniT> archive 52a2865 UniT | tar -x -C $UNIT
  pip install --no-deps --target $DEPS augmax jaxtyping==0.2.36 beartype==0.19.0 \
      safetensors wadler_lindig transformers==4.53.2 huggingface_hub==0.33.4 \
      'tokenizers>=0.21,<0.22' regex      # what the fork's module imports at top level
  export PYTHONPATH=$DEPS:$FORK/src:$UNIT  # python: torch 2.14.1, torchvision 0.29.1, jax, flax
  python scripts/make_vqvae_fork_fixture.py small --out test/tactile/fixtures/vqvae_fork_small
  python scripts/make_vqvae_fork_fixture.py published --out <scratch>/vqvae_fork_published

The fork's module is imported unchanged (``openpi.models.pi0_restac``).  Steps:
1. build the fork's modules from hparams (``small``: a reduced-width config whose
   weights take few values so that the xz-compressed file stays small;
   ``published``: ch 128, ch_mult [1,1,2,4], 2 res blocks, attention at 16,
   ResNet18, mid 256, n_e 512, e_dim 64, default init), seeded;
   calibrate BatchNorm statistics on random views and draw the codebook
   from event features (so codes differ between inputs);
2. save ``{'state_dict', 'hyper_parameters'}`` and load it with the fork's
   ``ResidualVQVAEWrapper`` (checking that every key reached a module: the
   fork loads with strict=False);
3. run ``wrapper.forward`` (q_event, logvar) and the same steps by hand for
   mu, z_real, h_event and codes (asserted equal to the wrapper's result);
4. record how the fork handles inputs it does not expect (HWC views, missing or
   wrongly sized views, tactile in [-1, 1] that happens to lie in [0, 1], tactile
   floats in 0..255).
Input conversion handed to the fork (reproduced bit for bit by the test):
tactile = u8 / 255 (HWC, [0, 1]); views = u8 CHW / 127.5 - 1 ([-1, 1], SigLIP).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import lzma
import os
import pathlib

import numpy as np
import torch
import torchvision
from torch.nn import functional as F

FORK_COMMIT = "b181a9b61c608a81d5395f6dfbae05de938afcce"
UNIT_COMMIT = "52a286520b09708934b25c77aa826360d72c79db"
FORK_SHA256 = "2a275eae6c5dcd397014ab974e1a997dfb40e319643a459b1a8663093bfea382"
UNIT_SHA256 = "8c3c03be847e9049b41b5b1cd039332a57a4dbe090b4e35076c91287b7a1b951"
BATCH = 4


def hparams(size: str) -> dict:
    small = size == "small"
    return {
        "ddconfig": {"double_z": False, "z_channels": 3, "resolution": 128, "in_channels": 3,
                     "out_ch": 3, "ch": 32 if small else 128, "ch_mult": [1, 1, 2, 4],
                     "num_res_blocks": 1 if small else 2, "attn_resolutions": [16],
                     "dropout": 0.0},
        "prophet_config": {"visual_backbone": "resnet18", "visual_pretrained": False,
                           "action_dim": 7, "history_len": 1, "num_views": 3,
                           "view_fusion": "concat", "latent_shape": [3, 16, 20],
                           "bottleneck_resolution": [8, 10] if small else [16, 20],
                           "hidden_dims": [64] if small else [128],
                           "mid_dim": 128 if small else 256,
                           "freeze_visual_backbone": False, "fusion_depth": 3},
        "residual_vq_config": {"n_e": 64 if small else 512, "e_dim": 64, "beta": 0.25,
                               "use_ema": True, "ema_decay": 0.99, "ema_epsilon": 1e-5},
        "use_event_encoder": True,
    }


def fork_module():
    import openpi.models.pi0_restac as fork  # the published module, unchanged

    unit = importlib.import_module("UniT.taming.modules.diffusionmodules.model")
    for mod, want in ((fork, FORK_SHA256), (unit, UNIT_SHA256)):
        got = hashlib.sha256(pathlib.Path(mod.__file__).read_bytes()).hexdigest()
        if got != want:
            raise SystemExit(f"{mod.__file__}: sha256 {got} is not the pinned {want}")
    return fork


def smooth_u8(g: torch.Generator, shape_lo, size) -> torch.Tensor:
    """Smooth random images (N, C, *size) uint8: bilinear upsampling of coarse noise."""
    lo = torch.rand(shape_lo, generator=g) * 255.0
    return F.interpolate(lo, size=size, mode="bilinear", align_corners=False).round().clamp(
        0, 255).to(torch.uint8)


def make_inputs(seed: int, batch: int) -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    tac = smooth_u8(g, (batch, 3, 16, 20), (128, 160)).permute(0, 2, 3, 1)
    views = smooth_u8(g, (batch * 3, 3, 14, 14), (224, 224)).reshape(batch, 3, 3, 224, 224)
    action = 0.05 * torch.randn(batch, 7, generator=g)
    return {"tactile_u8": tac.contiguous().numpy(),  # [B, 128, 160, 3]
            "views_u8": views.permute(0, 1, 3, 4, 2).contiguous().numpy(),  # [B, 3, 224, 224, 3]
            "action_prev": action.numpy().astype(np.float32)}


def fork_inputs(io: dict[str, np.ndarray]):
    """The conversion the test reproduces: tactile HWC [0, 1], views CHW [-1, 1]."""
    tactile = io["tactile_u8"].astype(np.float32) / np.float32(255.0)
    views = (io["views_u8"].transpose(0, 1, 4, 2, 3).astype(np.float32) / np.float32(127.5)
             - np.float32(1.0))
    return tactile, np.ascontiguousarray(views), io["action_prev"]


def build_modules(fork, hp: dict) -> dict[str, torch.nn.Module]:
    from UniT.taming.modules.diffusionmodules.model import Encoder

    pc, dd = hp["prophet_config"], hp["ddconfig"]
    return {
        "prophet_encoder": fork.SpatialTemporalProphetPT(**pc),
        "obs_encoder": Encoder(**dd),
        "quant_conv": torch.nn.Conv2d(dd["z_channels"], pc["latent_shape"][0], kernel_size=1),
        "event_encoder": fork.EventEncoderPT(in_channels=6,
                                             out_dim=hp["residual_vq_config"]["e_dim"]),
        "residual_vq": fork.VectorQuantizerEMA(**hp["residual_vq_config"]),
    }


@torch.no_grad()
def randomise(mods: dict, g: torch.Generator, sparse: bool) -> None:
    """Seeded weights.  sparse: every tensor takes values k * scale, k in -2..2 (mostly 0),
    which xz compresses ~20x; dense: the modules' default init with random norm affines."""
    levels = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    probs = torch.tensor([0.015, 0.06, 0.85, 0.06, 0.015])
    var_k = float((probs * levels**2).sum())
    for mod in mods.values():
        for name, p in mod.named_parameters():
            is_norm_weight = p.ndim == 1 and name.endswith("weight")
            if sparse:
                small = p.numel() < 4096  # dense there: no all-zero filter or row
                pr = torch.tensor([0.25, 0.25, 0.0, 0.25, 0.25]) if small else probs
                k = levels[torch.multinomial(pr, p.numel(), True, generator=g)].view(p.shape)
                if p.ndim > 1:
                    fan_in = p[0].numel()
                    var = 2.5 if small else var_k
                    scale = 2.0 ** round(np.log2(np.sqrt(2.0 / fan_in / var)))
                    p.copy_(k * scale)
                else:
                    p.copy_(1.0 + k / 8.0 if is_norm_weight else k / 16.0)
            elif is_norm_weight:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.add_(0.05 * torch.randn(p.shape, generator=g))


@torch.no_grad()
def calibrate_batchnorm(prophet, views_chw_m11: np.ndarray) -> None:
    """Running statistics = this batch's statistics (momentum None: cumulative average)."""
    bns = [m for m in prophet.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    prophet.train()
    v = torch.from_numpy(views_chw_m11)
    v = ((v + 1.0) / 2.0 - torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)) \
        / torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
    prophet.visual_backbone(v.reshape(-1, 3, 224, 224))
    for m in bns:
        m.momentum = 0.1
    prophet.eval()


@torch.no_grad()
def fork_steps(w, tactile_hwc01: np.ndarray, views_chw: np.ndarray, action: np.ndarray,
               tactile_is_signed: bool = False) -> dict[str, np.ndarray]:
    """``ResidualVQVAEWrapper.forward``'s steps, by hand, keeping the intermediates.
    tactile_is_signed: feed the tactile unchanged (a [-1, 1] image the fork would remap)."""
    t = torch.from_numpy(tactile_hwc01).float().permute(0, 3, 1, 2)
    if not tactile_is_signed and t.max() <= 1.0 and t.min() >= 0.0:
        t = t * 2.0 - 1.0
    v = torch.from_numpy(views_chw).float()
    v = (v + 1.0) / 2.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
    v = (v - mean) / std
    mu, logvar = w.prophet_encoder(v, torch.from_numpy(action).float())
    z_real = w.quant_conv(w.obs_encoder(t))
    h_event = w.event_encoder(z_real, mu)
    q4, _, (_, _, idx) = w.residual_vq(h_event.view(h_event.shape[0], -1, 1, 1))
    return {"q_event": q4.squeeze(-1).squeeze(-1).numpy(), "mu": mu.numpy(),
            "logvar": logvar.numpy(), "z_real": z_real.numpy(), "h_event": h_event.numpy(),
            "codes": idx.reshape(-1).numpy().astype(np.int64)}


def code_margins(w, h_event: np.ndarray) -> list[float]:
    """Second-nearest minus nearest squared distance, per sample (ties would be fragile)."""
    e = w.residual_vq.embed.cpu().numpy().astype(np.float64)
    d = ((h_event.astype(np.float64)[:, None, :] - e[None]) ** 2).sum(-1)
    s = np.sort(d, axis=1)
    return (s[:, 1] - s[:, 0]).tolist()


def check_every_key_loaded(w, state: dict) -> None:
    consumed = set()
    for name in ("prophet_encoder", "obs_encoder", "quant_conv", "event_encoder", "residual_vq"):
        for k, v in getattr(w, name).state_dict().items():
            key = f"{name}.{k}"
            if key not in state or not torch.equal(v.cpu(), state[key]):
                raise SystemExit(f"fork wrapper did not load {key} from the file")
            consumed.add(key)
    if consumed != set(state):
        raise SystemExit(f"keys the fork wrapper ignored: {sorted(set(state) - consumed)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("size", choices=("small", "published"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    fork = fork_module()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hp = hparams(args.size)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed + 1)
    mods = build_modules(fork, hp)
    for m in mods.values():
        m.eval()
    randomise(mods, g, sparse=args.size == "small")
    calib = make_inputs(args.seed + 1000, 8)
    ct, cv, ca = fork_inputs(calib)
    calibrate_batchnorm(mods["prophet_encoder"], cv)

    class Bare:  # the modules under the wrapper's attribute names, before the file exists
        pass

    bare = Bare()
    for k, m in mods.items():
        setattr(bare, k, m)
    h_cal = torch.from_numpy(fork_steps(bare, ct, cv, ca)["h_event"])
    vq = mods["residual_vq"]
    n_e = vq.embed.shape[0]
    with torch.no_grad():
        pick = torch.randint(0, h_cal.shape[0], (n_e,), generator=g)
        embed = h_cal[pick] + 0.5 * h_cal.std() * torch.randn(vq.embed.shape, generator=g)
        if args.size == "small":
            embed = torch.round(embed * 64.0) / 64.0
        vq.embed.copy_(embed)
        vq.cluster_size.copy_(torch.rand(n_e, generator=g).mul(4).round())
        vq.embed_avg.copy_(vq.embed * vq.cluster_size[:, None])

    state = {f"{name}.{k}": v.detach().clone() for name, m in mods.items()
             for k, v in m.state_dict().items()}
    ckpt = out / "vqvae.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": hp, "epoch": 0, "global_step": 0}, ckpt)
    w = fork.ResidualVQVAEWrapper(str(ckpt), frozen=True)
    check_every_key_loaded(w, state)

    io = make_inputs(args.seed + 2000, BATCH)
    t01, vchw, act = fork_inputs(io)
    ref = fork_steps(w, t01, vchw, act)
    q_w, lv_w = w.forward(t01, vchw, act)
    if not (np.array_equal(np.asarray(q_w), ref["q_event"])
            and np.array_equal(np.asarray(lv_w), ref["logvar"])):
        raise SystemExit("hand-run steps differ from ResidualVQVAEWrapper.forward")

    # How the fork treats inputs it does not expect (evidence for restac_ros's refusals).
    try:
        w.forward(t01, np.ascontiguousarray(vchw.transpose(0, 1, 3, 4, 2)), act)
        hwc = "no error"
    except RuntimeError as exc:  # measured: the ImageNet broadcast fails before its check
        hwc = f"RuntimeError: {exc}"
    q_none, lv_none = w.forward(t01, None, act)
    big = F.interpolate(torch.from_numpy(vchw).reshape(-1, 3, 224, 224), size=(256, 256),
                        mode="bilinear", align_corners=False).reshape(BATCH, 3, 3, 256, 256)
    q_big, lv_big = w.forward(t01, big.numpy(), act)
    bright = np.float32(0.5) * t01 + np.float32(0.5)  # a [-1, 1] image lying in [0.5, 1]
    bright_fork = fork_steps(w, bright, vchw, act)  # the fork remaps it to [0, 1]
    bright_true = fork_steps(w, bright, vchw, act, tactile_is_signed=True)
    raw255 = fork_steps(w, io["tactile_u8"].astype(np.float32), vchw, act)  # passed unchanged

    def rel(a, b):
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    np.savez_compressed(out / "io.npz", **io, **{f"ref_{k}": v for k, v in ref.items()},
                        bright_z_real_unremapped=bright_true["z_real"],
                        bright_z_real_fork=bright_fork["z_real"])
    meta = {
        "fork": {"repo": "Awilekong/openpi", "commit": FORK_COMMIT,
                 "file": "src/openpi/models/pi0_restac.py", "sha256": FORK_SHA256},
        "unit": {"repo": "ZhengtongXu/UniT", "commit": UNIT_COMMIT,
                 "file": "UniT/taming/modules/diffusionmodules/model.py", "sha256": UNIT_SHA256},
        "size": args.size, "seed": args.seed, "batch": BATCH,
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "numpy": np.__version__, "device": str(w.device),
        "hyper_parameters": hp,
        "inputs": "tactile = tactile_u8 / 255 (HWC, [0,1]); views = views_u8 as CHW / 127.5 - 1",
        "code_margins": code_margins(w, ref["h_event"]),
        "codes": ref["codes"].tolist(),
        "fork_behaviour": {
            "hwc_views_[B,3,224,224,3]": hwc,
            "views_None_q_event_logvar_abs_max": [float(np.abs(np.asarray(q_none)).max()),
                                                  float(np.abs(np.asarray(lv_none)).max())],
            "views_[B,3,3,256,256]_q_event_logvar_abs_max": [
                float(np.abs(np.asarray(q_big)).max()), float(np.abs(np.asarray(lv_big)).max())],
            "bright_signed_tactile_z_real_rel_change": rel(bright_fork["z_real"],
                                                           bright_true["z_real"]),
            "uint8_valued_float_tactile_z_real_rel_change": rel(raw255["z_real"],
                                                                ref["z_real"]),
        },
    }
    sensitivity = ("bright_signed_tactile_z_real_rel_change",
                   "uint8_valued_float_tactile_z_real_rel_change")
    if min(meta["fork_behaviour"][k] for k in sensitivity) < 1e-2:
        raise SystemExit("z_real does not depend on the tactile image: pick other weights")
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    if args.size == "small":
        with lzma.open(out / "vqvae.ckpt.xz", "wb", preset=9 | lzma.PRESET_EXTREME) as f:
            f.write(ckpt.read_bytes())
        ckpt.unlink()
    print(json.dumps({k: meta[k] for k in ("code_margins", "codes", "fork_behaviour")}))
    for p in sorted(out.iterdir()):
        print(f"{p}  {p.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
