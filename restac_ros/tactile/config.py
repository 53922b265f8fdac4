"""Hyper-parameters of the Residual VQ-VAE, parsed from a checkpoint's ``hyper_parameters``.

The names, defaults and meaning are those of the published code (the
ResTacVLA fork, Awilekong/openpi ``src/openpi/models/pi0_restac.py``:
``ResidualVQVAEWrapper`` builds ``SpatialTemporalProphetPT(**prophet_config)``,
taming's ``Encoder(**ddconfig)``, ``VectorQuantizerEMA(**residual_vq_config)``).
A key the published constructors do not take is ignored, as they ignore it
(``ignored_hparams`` lists such keys for reports).  A required key is one the
published code cannot run without.

ddconfig (taming ``Encoder``): required ch, out_ch, num_res_blocks,
    attn_resolutions, in_channels, resolution, z_channels; optional
    ch_mult (1,2,4,8), dropout (0.0), resamp_with_conv (True), double_z (True:
    the published wrapper then fails, so False is required in practice).
prophet_config (``SpatialTemporalProphetPT``): required action_dim,
    latent_shape; optional visual_backbone ('resnet18', the only one),
    visual_pretrained (True; init only), history_len (1; unused by the
    published module), num_views (3), view_fusion ('concat'; the published
    code averages the views for any other value, restac_ros accepts 'mean'),
    bottleneck_resolution (16, 20), hidden_dims ([128]; only [0] is used),
    mid_dim (256), freeze_visual_backbone (False; training only), fusion_depth
    (3: max(1, fusion_depth - 1) Linear/LayerNorm/GELU/Dropout blocks).
residual_vq_config (``VectorQuantizerEMA``): required n_e, e_dim; optional
    beta (0.25), use_ema (True: buffers cluster_size and embed_avg exist),
    ema_decay (0.99), ema_epsilon (1e-5).
use_event_encoder: must be True (the published wrapper refuses anything else).

restac_extensions (not in the published format; absent = published): a dict
    with any of num_quantizers (1; >1 = several residual codebook stages under
    ``residual_vq.stages.{i}``), shared_visual_backbone (True; False = one
    ResNet18 per view under ``visual_backbones.{v}``), prophet_input_size
    (None; an int bilinearly resizes the ImageNet-normalised views to that
    square before the trunk, for CPU-sized training).  The published wrapper
    does not know these: a file that has them runs correctly only here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

TACTILE_HW = (128, 160)  # the observation encoder's input size (H, W)
VISUAL_HW = (224, 224)
RESNET_FEATURE_DIM = 512  # torchvision resnet18 pooled feature width
EVENT_HIDDEN_DIM = 64  # EventEncoderPT: fixed in the published code
EVENT_NUM_RES_BLOCKS = 3
EVENT_IN_LATENT_CHANNELS = 3  # EventEncoderPT(in_channels=6) takes cat(mu, z_real - mu)
EXTENSIONS_KEY = "restac_extensions"
SECTIONS = ("ddconfig", "prophet_config", "residual_vq_config")


class HParamsError(ValueError):
    """The hyper_parameters entry is missing a key or holds an unusable value."""


@dataclasses.dataclass(frozen=True)
class DDConfig:
    """taming ``Encoder`` keyword arguments (names and defaults as published)."""

    ch: int
    out_ch: int
    num_res_blocks: int
    attn_resolutions: tuple[int, ...]
    in_channels: int
    resolution: int
    z_channels: int
    ch_mult: tuple[int, ...] = (1, 2, 4, 8)
    dropout: float = 0.0
    resamp_with_conv: bool = True
    double_z: bool = True

    @property
    def num_down(self) -> int:
        return len(self.ch_mult) - 1

    @property
    def z_hw(self) -> tuple[int, int]:
        f = 2**self.num_down
        return TACTILE_HW[0] // f, TACTILE_HW[1] // f


@dataclasses.dataclass(frozen=True)
class ProphetConfig:
    """``SpatialTemporalProphetPT`` keyword arguments (names and defaults as published)."""

    action_dim: int
    latent_shape: tuple[int, int, int]
    visual_backbone: str = "resnet18"
    visual_pretrained: bool = True
    history_len: int = 1
    num_views: int = 3
    view_fusion: str = "concat"
    bottleneck_resolution: tuple[int, int] = (16, 20)
    hidden_dims: tuple[int, ...] = (128,)
    mid_dim: int = 256
    freeze_visual_backbone: bool = False
    fusion_depth: int = 3

    @property
    def action_hidden_dim(self) -> int:
        return self.hidden_dims[0]

    @property
    def num_fusion_blocks(self) -> int:
        """The published loop: one block, then ``fusion_depth - 2`` more."""
        return max(1, self.fusion_depth - 1)

    @property
    def visual_feat_dim(self) -> int:
        return RESNET_FEATURE_DIM * (self.num_views if self.view_fusion == "concat" else 1)


@dataclasses.dataclass(frozen=True)
class ResidualVQConfig:
    """``VectorQuantizerEMA`` keyword arguments (names and defaults as published)."""

    n_e: int
    e_dim: int
    beta: float = 0.25
    use_ema: bool = True
    ema_decay: float = 0.99
    ema_epsilon: float = 1e-5


@dataclasses.dataclass(frozen=True)
class Extensions:
    """restac_ros additions beyond the published format (defaults = published)."""

    num_quantizers: int = 1
    shared_visual_backbone: bool = True
    prophet_input_size: int | None = None

    def is_published(self) -> bool:
        return self == Extensions()


@dataclasses.dataclass(frozen=True)
class VQVAEHParams:
    dd: DDConfig
    prophet: ProphetConfig
    rvq: ResidualVQConfig
    ext: Extensions = Extensions()
    use_event_encoder: bool = True

    @property
    def latent_channels(self) -> int:
        return self.prophet.latent_shape[0]

    @property
    def num_quantizers(self) -> int:
        return self.ext.num_quantizers

    def to_dict(self) -> dict[str, Any]:
        """The ``hyper_parameters`` entry written to a checkpoint (plain python types).

        Every published field is written explicitly; ``restac_extensions`` only
        when something differs from the published format."""
        def plain(obj) -> dict[str, Any]:
            return {k: list(v) if isinstance(v, tuple) else v
                    for k, v in dataclasses.asdict(obj).items()}

        out: dict[str, Any] = {
            "ddconfig": plain(self.dd),
            "prophet_config": plain(self.prophet),
            "residual_vq_config": plain(self.rvq),
            "use_event_encoder": self.use_event_encoder,
        }
        if not self.ext.is_published():
            out[EXTENSIONS_KEY] = {f.name: getattr(self.ext, f.name)
                                   for f in dataclasses.fields(self.ext)
                                   if getattr(self.ext, f.name) != f.default}
        return out


def _convert(value: Any, default: Any, name: str, where: str):
    """Bring a raw hparams value to the field's type (tuples for lists)."""
    if isinstance(value, (list, tuple)):
        try:
            return tuple(int(v) for v in value)
        except (TypeError, ValueError) as exc:
            raise HParamsError(f"{where}: {name} must be a list of ints, got {value!r}") from exc
    if isinstance(default, bool) or isinstance(value, bool):
        if not isinstance(value, bool):
            raise HParamsError(f"{where}: {name} must be true/false, got {value!r}")
        return value
    if isinstance(value, (int, float)) and not math.isfinite(value):
        raise HParamsError(f"{where}: {name} is not finite ({value!r})")
    return value


def _section(hp: dict, name: str, cls, where: str):
    raw = hp.get(name)
    if not isinstance(raw, dict):
        raise HParamsError(f"{where}: hyper_parameters['{name}'] missing or not a dict")
    kwargs = {}
    for f in dataclasses.fields(cls):
        label = f"hyper_parameters['{name}']['{f.name}']"
        if f.name in raw:
            default = None if f.default is dataclasses.MISSING else f.default
            kwargs[f.name] = _convert(raw[f.name], default, label, where)
        elif f.default is dataclasses.MISSING:
            hint = ""
            if name == "residual_vq_config" and "codebook_size" in raw:
                hint = (" (this file has the pre-fork restac_ros layout, 'codebook_size'; "
                        "retrain it with restac-train-vqvae)")
            raise HParamsError(f"{where}: hyper_parameters['{name}'] lacks required key "
                               f"'{f.name}'{hint}")
    return cls(**kwargs)


def _extensions(hp: dict, where: str) -> Extensions:
    raw = hp.get(EXTENSIONS_KEY, {})
    if not isinstance(raw, dict):
        raise HParamsError(f"{where}: hyper_parameters['{EXTENSIONS_KEY}'] is not a dict")
    known = {f.name for f in dataclasses.fields(Extensions)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise HParamsError(f"{where}: hyper_parameters['{EXTENSIONS_KEY}'] has unknown keys "
                           f"{unknown} (known: {sorted(known)})")
    ext = Extensions(**raw)
    if not isinstance(ext.num_quantizers, int) or ext.num_quantizers < 1:
        raise HParamsError(f"{where}: {EXTENSIONS_KEY}.num_quantizers must be an int >= 1")
    if not isinstance(ext.shared_visual_backbone, bool):
        raise HParamsError(f"{where}: {EXTENSIONS_KEY}.shared_visual_backbone must be a bool")
    s = ext.prophet_input_size
    if s is not None and (not isinstance(s, int) or s < 32):
        raise HParamsError(f"{where}: {EXTENSIONS_KEY}.prophet_input_size must be an int "
                           f">= 32 or absent, got {s!r}")
    return ext


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise HParamsError(f"{where}: {msg}")


def parse_hparams(hp: Any, where: str = "hyper_parameters") -> VQVAEHParams:
    """Validate and convert a checkpoint's ``hyper_parameters`` dict; ``where`` names the file."""
    if not isinstance(hp, dict):
        raise HParamsError(f"{where}: hyper_parameters is {type(hp).__name__}, expected a dict")
    dd = _section(hp, "ddconfig", DDConfig, where)
    pc = _section(hp, "prophet_config", ProphetConfig, where)
    rvq = _section(hp, "residual_vq_config", ResidualVQConfig, where)
    ext = _extensions(hp, where)
    if "use_event_encoder" not in hp:
        raise HParamsError(f"{where}: hyper_parameters lacks 'use_event_encoder'")
    _check(hp["use_event_encoder"] is True, where,
           "use_event_encoder must be True (the published v4 event-encoder mode)")
    _check(not dd.double_z, where, "ddconfig.double_z must be False (taming's default True "
           "gives 2*z_channels, which the published quant_conv cannot take)")
    f = 2**dd.num_down
    _check(not (TACTILE_HW[0] % f or TACTILE_HW[1] % f), where,
           f"ddconfig.ch_mult {list(dd.ch_mult)} does not divide 128x160")
    _check(dd.ch % 32 == 0 and all((dd.ch * m) % 32 == 0 for m in dd.ch_mult), where,
           "ddconfig.ch*ch_mult must be multiples of 32 (GroupNorm(32))")
    _check(pc.visual_backbone == "resnet18", where,
           f"prophet_config.visual_backbone {pc.visual_backbone!r}: only 'resnet18' exists")
    _check(pc.view_fusion in ("concat", "mean"), where,
           f"prophet_config.view_fusion {pc.view_fusion!r}: use 'concat' or 'mean' (the "
           "published code averages the views for every value other than 'concat')")
    _check(len(pc.latent_shape) == 3 and pc.latent_shape[0] == EVENT_IN_LATENT_CHANNELS, where,
           f"prophet_config.latent_shape {list(pc.latent_shape)} must be [3, H, W] (the "
           "published EventEncoder takes 6 = 2 x 3 channels)")
    _check(tuple(pc.latent_shape[1:]) == dd.z_hw, where,
           f"prophet_config.latent_shape {list(pc.latent_shape)} must match the encoder's "
           f"latent size {list(dd.z_hw)} for a 128x160 tactile image")
    _check(len(pc.bottleneck_resolution) == 2, where,
           "prophet_config.bottleneck_resolution must be [H, W]")
    _check(len(pc.hidden_dims) >= 1, where, "prophet_config.hidden_dims must be non-empty")
    _check(pc.fusion_depth >= 1 and pc.num_views >= 1 and pc.action_dim >= 1, where,
           "prophet_config fusion_depth, num_views and action_dim must be >= 1")
    _check(rvq.n_e >= 1 and rvq.e_dim >= 1, where, "residual_vq_config n_e, e_dim must be >= 1")
    _check(0.0 < rvq.ema_decay < 1.0 and rvq.ema_epsilon > 0 and rvq.beta >= 0, where,
           "residual_vq_config: need 0 < ema_decay < 1, ema_epsilon > 0, beta >= 0")
    return VQVAEHParams(dd=dd, prophet=pc, rvq=rvq, ext=ext, use_event_encoder=True)


def ignored_hparams(hp: dict) -> list[str]:
    """Keys of the three sections that the published constructors (and we) ignore."""
    out = []
    for name, cls in zip(SECTIONS, (DDConfig, ProphetConfig, ResidualVQConfig), strict=True):
        known = {f.name for f in dataclasses.fields(cls)}
        out += [f"{name}.{k}" for k in sorted(hp.get(name, {})) if k not in known]
    return out


def default_hparams(
    *, ch: int = 128, n_e: int = 512, num_res_blocks: int = 2, num_quantizers: int = 1,
    prophet_input_size: int | None = None, bottleneck_resolution: tuple[int, int] = (16, 20),
    shared_visual_backbone: bool = True,
) -> VQVAEHParams:
    """Published-shaped hyper-parameters (ch_mult [1,1,2,4], z_channels 3, attention at 16,
    ResNet18, mid 256, e_dim 64); the keyword-only extensions default to published."""
    return VQVAEHParams(
        dd=DDConfig(ch=ch, out_ch=3, num_res_blocks=num_res_blocks, attn_resolutions=(16,),
                    in_channels=3, resolution=128, z_channels=3, ch_mult=(1, 1, 2, 4),
                    dropout=0.0, resamp_with_conv=True, double_z=False),
        prophet=ProphetConfig(action_dim=7, latent_shape=(3, 16, 20), visual_pretrained=False,
                              bottleneck_resolution=tuple(bottleneck_resolution)),
        rvq=ResidualVQConfig(n_e=n_e, e_dim=64),
        ext=Extensions(num_quantizers=num_quantizers,
                       shared_visual_backbone=shared_visual_backbone,
                       prophet_input_size=prophet_input_size),
    )
