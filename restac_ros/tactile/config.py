"""Hyper-parameters of the Residual VQ-VAE, parsed from a checkpoint's ``hyper_parameters``.

The checkpoint stores four entries (CONTRACT.md section 2): ``ddconfig`` (the
VQGAN/taming observation encoder), ``prophet_config``, ``residual_vq_config``
and ``use_event_encoder``.  They are turned into frozen, hashable dataclasses
so the JAX port can take them as a static ``jit`` argument.

Keys this package reads (required unless a default is given; defaults are the
published values):

ddconfig:            z_channels, resolution, in_channels, ch, ch_mult,
                     num_res_blocks, attn_resolutions, double_z (False),
                     out_ch (3, decoder only), dropout (ignored at inference)
prophet_config:      num_views (3), action_dim (7), action_hidden_dim (128),
                     fusion_hidden_dim (256), fusion_depth (3),
                     mu_size ([16, 20]) - spatial size of ``head_mu``'s output,
                     image_size (224) - the trunk's input size; a smaller value
                     bilinearly resizes the views first (CPU training only)
residual_vq_config:  dim (64), codebook_size, num_quantizers (1), decay (0.99),
                     commitment_weight (0.25), event_hidden_dim (64),
                     event_num_res_blocks (3)
use_event_encoder:   must be True (the published v4 event-encoder mode)
"""

from __future__ import annotations

import dataclasses
from typing import Any

TACTILE_HW = (128, 160)  # the observation encoder's input size (H, W)
VISUAL_HW = (224, 224)
RESNET_FEATURE_DIM = 512  # torchvision resnet18 pooled feature width


class HParamsError(ValueError):
    """The hyper_parameters entry is missing a key or holds an unusable value."""


@dataclasses.dataclass(frozen=True)
class DDConfig:
    z_channels: int
    resolution: int
    in_channels: int
    ch: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    attn_resolutions: tuple[int, ...]
    out_ch: int = 3
    double_z: bool = False
    dropout: float = 0.0

    @property
    def num_down(self) -> int:
        return len(self.ch_mult) - 1

    @property
    def z_hw(self) -> tuple[int, int]:
        f = 2**self.num_down
        return TACTILE_HW[0] // f, TACTILE_HW[1] // f


@dataclasses.dataclass(frozen=True)
class ProphetConfig:
    num_views: int = 3
    action_dim: int = 7
    action_hidden_dim: int = 128
    fusion_hidden_dim: int = 256
    fusion_depth: int = 3
    mu_size: tuple[int, int] = (16, 20)
    image_size: int = 224


@dataclasses.dataclass(frozen=True)
class ResidualVQConfig:
    codebook_size: int
    dim: int = 64
    num_quantizers: int = 1
    decay: float = 0.99
    commitment_weight: float = 0.25
    event_hidden_dim: int = 64
    event_num_res_blocks: int = 3


@dataclasses.dataclass(frozen=True)
class VQVAEHParams:
    dd: DDConfig
    prophet: ProphetConfig
    rvq: ResidualVQConfig
    use_event_encoder: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The ``hyper_parameters`` entry written to a checkpoint (plain python types)."""
        def plain(obj) -> dict[str, Any]:
            out = {}
            for k, v in dataclasses.asdict(obj).items():
                out[k] = list(v) if isinstance(v, tuple) else v
            return out

        return {
            "ddconfig": plain(self.dd),
            "prophet_config": plain(self.prophet),
            "residual_vq_config": plain(self.rvq),
            "use_event_encoder": self.use_event_encoder,
        }


def _section(hp: dict, name: str, cls, where: str):
    raw = hp.get(name)
    if not isinstance(raw, dict):
        raise HParamsError(f"{where}: hyper_parameters['{name}'] missing or not a dict")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, f in fields.items():
        if key in raw:
            val = raw[key]
            if isinstance(val, (list, tuple)):
                val = tuple(int(v) for v in val)
            kwargs[key] = val
        elif f.default is dataclasses.MISSING:
            raise HParamsError(f"{where}: hyper_parameters['{name}'] lacks required key '{key}'")
    return cls(**kwargs)


def parse_hparams(hp: Any, where: str = "hyper_parameters") -> VQVAEHParams:
    """Validate and convert a checkpoint's ``hyper_parameters`` dict; ``where`` names the file."""
    if not isinstance(hp, dict):
        raise HParamsError(f"{where}: hyper_parameters is {type(hp).__name__}, expected a dict")
    dd = _section(hp, "ddconfig", DDConfig, where)
    prophet = _section(hp, "prophet_config", ProphetConfig, where)
    rvq = _section(hp, "residual_vq_config", ResidualVQConfig, where)
    if "use_event_encoder" not in hp:
        raise HParamsError(f"{where}: hyper_parameters lacks 'use_event_encoder'")
    use_ev = bool(hp["use_event_encoder"])
    if not use_ev:
        raise HParamsError(f"{where}: use_event_encoder=False is not supported (v4 layout only)")
    if dd.double_z:
        raise HParamsError(f"{where}: ddconfig.double_z=True is not supported (VQ, not KL)")
    f = 2**dd.num_down
    if TACTILE_HW[0] % f or TACTILE_HW[1] % f:
        raise HParamsError(f"{where}: ch_mult {dd.ch_mult} does not divide 128x160")
    if dd.ch % 32 or any((dd.ch * m) % 32 for m in dd.ch_mult):
        raise HParamsError(f"{where}: ddconfig.ch*ch_mult must be multiples of 32 (GroupNorm(32))")
    if rvq.event_hidden_dim % 8:
        raise HParamsError(f"{where}: event_hidden_dim must be a multiple of 8 (GroupNorm(8))")
    if rvq.num_quantizers < 1:
        raise HParamsError(f"{where}: residual_vq_config.num_quantizers must be >= 1")
    if len(prophet.mu_size) != 2:
        raise HParamsError(f"{where}: prophet_config.mu_size must be [H, W]")
    return VQVAEHParams(dd=dd, prophet=prophet, rvq=rvq, use_event_encoder=use_ev)


def default_hparams(
    *, ch: int = 128, codebook_size: int = 512, num_quantizers: int = 1,
    num_res_blocks: int = 2, image_size: int = 224, mu_size: tuple[int, int] = (16, 20),
) -> VQVAEHParams:
    """Published-shaped hyper-parameters (ch_mult [1,1,2,4], z_channels 3, attention at 16)."""
    return VQVAEHParams(
        dd=DDConfig(z_channels=3, resolution=128, in_channels=3, ch=ch, ch_mult=(1, 1, 2, 4),
                    num_res_blocks=num_res_blocks, attn_resolutions=(16,), out_ch=3),
        prophet=ProphetConfig(image_size=image_size, mu_size=tuple(mu_size)),
        rvq=ResidualVQConfig(codebook_size=codebook_size, num_quantizers=num_quantizers),
    )
