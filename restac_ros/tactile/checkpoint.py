"""Reading and writing Residual VQ-VAE ``.ckpt`` files in the published format.

Format: ``torch.save`` of a dict with ``state_dict`` (keys under the prefixes
``prophet_encoder.``, ``obs_encoder.``, ``quant_conv.``, ``event_encoder.``,
``residual_vq.``) and ``hyper_parameters`` (``ddconfig``, ``prophet_config``,
``residual_vq_config``, ``use_event_encoder``; optionally
``restac_extensions``), with the sub-names of the published fork's classes
(docs/vqvae.md).  Other top-level entries
(Lightning's ``epoch``, ``optimizer_states``, ..., and this package's
``restac_train_state`` holding the trainer's decoder) are ignored by readers.

Reading is strict: ``torch.load(weights_only=True)`` (no arbitrary
unpickling), every expected key present, no extra key, every shape equal,
every floating-point tensor finite.  Each failure raises ``CheckpointError``
naming the file and every offending key.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from restac_ros.tactile.config import EXTENSIONS_KEY, HParamsError, VQVAEHParams, parse_hparams
from restac_ros.tactile.model import PREFIXES, ResidualVQVAE, expected_shapes

TRAIN_STATE_KEY = "restac_train_state"


class CheckpointError(RuntimeError):
    """A checkpoint file could not be used; the message names the file and the problem."""


def _listed(keys) -> str:
    return ", ".join(sorted(keys))


def non_finite_keys(state: Mapping[str, Any]) -> list[str]:
    """Floating-point entries holding NaN or inf, each as 'key (n NaN, m inf)'."""
    bad = []
    for key in sorted(state):
        v = state[key] if isinstance(state[key], torch.Tensor) else torch.as_tensor(
            np.asarray(state[key]))
        if v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all()):
            n_nan = int(torch.isnan(v).sum())
            bad.append(f"{key} ({n_nan} NaN, {v.numel() - n_nan - int(torch.isfinite(v).sum())}"
                       " inf)")
    return bad


def check_state_dict(state: Mapping[str, Any], hp: VQVAEHParams, where: str) -> None:
    """Raise ``CheckpointError`` unless ``state`` has exactly the published keys and shapes
    (every key named) and every floating-point tensor is finite."""
    want = expected_shapes(hp)
    missing = set(want) - set(state)
    extra = set(state) - set(want)
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_listed(missing)}")
    if extra:
        problems.append(f"unexpected keys ({len(extra)}): {_listed(extra)}")
    wrong = []
    for key in sorted(set(want) & set(state)):
        shape = tuple(getattr(state[key], "shape", ()))
        if shape != want[key]:
            wrong.append(f"{key} has shape {list(shape)}, expected {list(want[key])}")
    if wrong:
        problems.append(f"wrong shapes ({len(wrong)}): " + "; ".join(wrong))
    if problems:
        layout = "the published layout"
        if not hp.ext.is_published():
            layout = f"the layout of its hparams ({EXTENSIONS_KEY} {hp.to_dict()[EXTENSIONS_KEY]})"
        raise CheckpointError(f"{where}: state_dict does not match {layout}: "
                              + " | ".join(problems))
    bad = non_finite_keys(state)
    if bad:
        raise CheckpointError(f"{where}: state_dict holds non-finite weights in "
                              f"{len(bad)} tensor(s): {'; '.join(bad)}")


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> tuple[dict[str, torch.Tensor], VQVAEHParams, dict[str, Any]]:
    """Load and validate ``path`` -> (state_dict, parsed hparams, the raw checkpoint dict)."""
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise CheckpointError(f"{where}: checkpoint file not found")
    try:
        raw = torch.load(where, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" not in text:
            raise CheckpointError(f"{where}: not a readable torch checkpoint ({text})") from exc
        detail = next((ln.split("error:", 1)[1].split(". Please")[0].strip()
                       for ln in text.splitlines() if "WeightsUnpickler error:" in ln), "")
        raise CheckpointError(
            f"{where}: refusing to load, the file needs unpickling of arbitrary objects "
            f"(torch.load weights_only=True: {detail or 'not an allowed type'})") from exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{where}: not a readable torch checkpoint ({exc})") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where}: top level is a {type(raw).__name__}, expected a dict "
                              "with 'state_dict' and 'hyper_parameters'")
    for key in ("state_dict", "hyper_parameters"):
        if key not in raw:
            raise CheckpointError(f"{where}: top-level dict lacks '{key}' "
                                  f"(has: {_listed(map(str, raw))})")
    state = raw["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where}: 'state_dict' is a {type(state).__name__}, not a dict")
    not_tensors = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{where}: 'state_dict' entries that are not tensors: "
                              f"{_listed(not_tensors)}")
    try:
        hp = parse_hparams(raw["hyper_parameters"], where)
    except HParamsError as exc:
        raise CheckpointError(str(exc)) from exc
    check_state_dict(state, hp, where)
    return dict(state), hp, raw


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"
               ) -> tuple[ResidualVQVAE, VQVAEHParams]:
    """A frozen (eval, requires_grad False) ``ResidualVQVAE`` on ``device`` from ``path``."""
    state, hp, _ = read_checkpoint(path, map_location="cpu")
    model = ResidualVQVAE(hp)
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    return model.to(device), hp


def save_checkpoint(path: str | os.PathLike, modules: nn.Module | Mapping[str, nn.Module],
                    hparams: VQVAEHParams | Mapping[str, Any],
                    extra: Mapping[str, Any] | None = None) -> None:
    """Write ``path`` in the published format.

    ``modules``: a ``ResidualVQVAE`` or a mapping from the five prefix names
    (``prophet_encoder``, ``obs_encoder``, ``quant_conv``, ``event_encoder``,
    ``residual_vq``) to modules.  ``hparams``: ``VQVAEHParams`` or its dict form.
    ``extra``: additional top-level entries (tensors/plain types only).
    The result is validated exactly as readers validate it.
    """
    where = os.fspath(path)
    hp = hparams if isinstance(hparams, VQVAEHParams) else parse_hparams(dict(hparams), where)
    if isinstance(modules, nn.Module):
        state = modules.state_dict()
    else:
        names = {p.rstrip(".") for p in PREFIXES}
        if set(modules) != names:
            raise CheckpointError(f"{where}: modules must be exactly {sorted(names)}, "
                                  f"got {sorted(modules)}")
        state = {f"{name}.{k}": v for name, m in modules.items()
                 for k, v in m.state_dict().items()}
    state = {k: v.detach().to("cpu").clone() for k, v in state.items()}
    check_state_dict(state, hp, where)
    payload: dict[str, Any] = {"state_dict": state, "hyper_parameters": hp.to_dict()}
    for key, value in (extra or {}).items():
        if key in payload:
            raise CheckpointError(f"{where}: extra entry '{key}' would overwrite the format")
        payload[key] = value
    tmp = where + ".tmp"
    torch.save(payload, tmp)
    os.replace(tmp, where)
