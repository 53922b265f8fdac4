"""Training examples from bags via the core's BagDataset (the live node's observation path).

Each valid tick gives the core's `Observation` plus the teacher's commands over
the horizon; images are kept as uint8 (exactly the bytes the core converted,
checked on the first example) to fit many examples in memory.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from restac_ros.core.bag_dataset import TEACHER_TOPIC, BagDataset
from restac_ros.core.images import to_model_range
from restac_ros.core.observation import ObservationBuilder
from restac_ros.model import norm_stats as norm
from restac_ros.model.observation import IMAGE_KEYS, VQ_ACTION_DIM, Observation
from restac_ros.model.tokenizer import PromptTokenizer

from . import bag_io

_log = logging.getLogger(__name__)
# Spread given to dims constant in the training data: a checkpoint whose std or q99 - q01
# is 0 is refused at load (model/validation.py). Such a dim's normalised targets stay 0
# in training, so its predicted actions stay at the mean.
MIN_SPREAD = 1e-4


def floor_spread(name: str, stats: norm.NormStats) -> norm.NormStats:
    """std and q99 - q01 raised to MIN_SPREAD where the data had less (logged)."""
    std = np.maximum(stats.std, MIN_SPREAD).astype(np.float32)
    low = stats.std < MIN_SPREAD
    q01, q99 = stats.q01, stats.q99
    if q01 is not None and q99 is not None:
        narrow = (q99 - q01) < MIN_SPREAD
        mid = (q01 + q99) / 2
        q01 = np.where(narrow, mid - MIN_SPREAD / 2, q01).astype(np.float32)
        q99 = np.where(narrow, mid + MIN_SPREAD / 2, q99).astype(np.float32)
        low = low | narrow
    if low.any():
        dims = [list(map(int, i)) if len(i) > 1 else int(i[0]) for i in np.argwhere(low)]
        _log.warning("norm stats %r: dims %s are (nearly) constant in the training data; "
                     "their std / quantile spread is set to %g", name, dims, MIN_SPREAD)
    return norm.NormStats(stats.mean, std, q01, q99)


@dataclasses.dataclass
class TrainArrays:
    images: dict[str, np.ndarray]  # uint8 [N, 224, 224, 3]
    image_masks: dict[str, np.ndarray]  # bool [N]
    state: np.ndarray  # float32 [N, A]
    tokens: np.ndarray  # int32 [N, L]
    token_mask: np.ndarray  # bool [N, L]
    tactile: np.ndarray  # uint8 [N, 128, 160, 3]
    tactile_mask: np.ndarray  # bool [N]
    action_prev: np.ndarray  # float32 [N, A]
    actions: np.ndarray  # float32 [N, H, A], model targets (builder.action_targets)
    state_raw: np.ndarray  # float64 [N, state_dim], raw joint state of each observation
    targets_raw: np.ndarray  # float32 [N, H, robot_dim], teacher commands in robot units
    # The frozen VQ-VAE's outputs per example (vqvae tactile mode; `precompute_tactile_events`)
    tactile_events: TactileEvents | None = None

    def set_targets(self, builder: ObservationBuilder) -> None:
        """actions = the builder's model-space targets (delta dims relative to the state)."""
        self.actions = np.stack([builder.action_targets(t, s) for t, s in
                                 zip(self.targets_raw, self.state_raw, strict=True)])

    @property
    def n(self) -> int:
        return int(self.state.shape[0])

    def batch(self, idx: np.ndarray) -> tuple[Observation, np.ndarray, tuple | None]:
        """-> (observation, model-space targets, precomputed (q_event, logvar, codes) or None)."""
        obs = Observation(
            images={k: to_model_range(v[idx]) for k, v in self.images.items()},
            image_masks={k: v[idx] for k, v in self.image_masks.items()},
            state=self.state[idx],
            tokenized_prompt=self.tokens[idx],
            tokenized_prompt_mask=self.token_mask[idx],
            tactile_image=to_model_range(self.tactile[idx]),
            tactile_mask=self.tactile_mask[idx],
            action_prev=self.action_prev[idx],
        )
        ev = self.tactile_events
        event = None if ev is None else (ev.q_event[idx], ev.logvar[idx], ev.codes[idx])
        return obs, self.actions[idx], event


@dataclasses.dataclass(frozen=True)
class TactileEvents:
    """The frozen Residual VQ-VAE's outputs for every training example, computed once."""

    q_event: np.ndarray  # float32 [N, q_event_dim]
    logvar: np.ndarray  # float32 [N, 1]
    codes: np.ndarray  # int32 [N, n_q]


def precompute_tactile_events(data: TrainArrays, encoder, batch_size: int = 16,
                              progress: bool = True) -> TactileEvents:
    """Runs the model's frozen VQ-VAE (`model.tactile.TactileEncoder`, vqvae mode) once per
    example, on exactly the inputs a training batch gives it (`TrainArrays.batch`): the
    training step then takes these instead of running the encoder in every step. The last
    batch is padded (one compiled shape)."""
    import jax

    from restac_ros.tactile.jax_port import vqvae_forward

    if encoder.mode != "vqvae" or not encoder.has_vqvae:
        raise ValueError("precompute_tactile_events needs a tactile encoder with a VQ-VAE loaded")
    params, hparams = encoder.vqvae.get_value(), encoder.vqvae_hparams.value
    forward = jax.jit(lambda p, t, v, a: vqvae_forward(p, hparams, t, v, a))
    q, lv, codes = [], [], []
    starts = range(0, data.n, batch_size)
    if progress:
        starts = tqdm(starts, desc="precomputing VQ-VAE outputs", unit="batch", leave=False)
    for start in starts:
        idx = np.arange(start, start + batch_size).clip(max=data.n - 1)
        obs, _, _ = data.batch(idx)
        visual = np.stack([obs.images[k] for k in IMAGE_KEYS], axis=1)
        out = forward(params, obs.tactile_image, visual, obs.action_prev[:, :VQ_ACTION_DIM])
        keep = min(batch_size, data.n - start)
        q.append(np.asarray(out.q_event, np.float32)[:keep])
        lv.append(np.asarray(out.logvar, np.float32)[:keep])
        codes.append(np.asarray(out.codes, np.int32).reshape(batch_size, -1)[:keep])
    events = TactileEvents(np.concatenate(q), np.concatenate(lv), np.concatenate(codes))
    if not (np.isfinite(events.q_event).all() and np.isfinite(events.logvar).all()):
        raise FloatingPointError("the VQ-VAE gave non-finite q_event / logvar on training data")
    return events


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Inverse of core.images.to_model_range for values it produced (checked by the caller)."""
    return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _check_lossless(x: np.ndarray, what: str) -> None:
    back = to_model_range(to_uint8(x))
    if not np.array_equal(back, np.asarray(x, np.float32)):
        raise ValueError(f"{what}: core images are not exact uint8/255*2-1 values; "
                         f"max difference {np.abs(back - x).max()}")


def compute_stats(bags: Sequence[Path], joint_topic: str, names: Sequence[str],
                  teacher_topic: str = TEACHER_TOPIC) -> dict[str, norm.NormStats]:
    """openpi norm stats: "state" from the joint states, "actions" from the teacher commands."""
    states, actions = [], []
    for bag in bags:
        states.append(bag_io.joint_series(bag, joint_topic, names)[1])
        actions.append(bag_io.joint_series(bag, teacher_topic, names)[1])
    return {"state": floor_spread("state", norm.compute_norm_stats(np.concatenate(states))),
            "actions": floor_spread("actions",
                                    norm.compute_norm_stats(np.concatenate(actions)))}


def relative_action_stats(data: TrainArrays, builder: ObservationBuilder,
                          per_step: bool = False) -> norm.NormStats:
    """openpi-style "actions" stats over the model's (relative) action chunks: [D], or
    [H, D] (one row per chunk step) with per_step."""
    rel = np.stack([builder.relative_actions(t, s) for t, s in
                    zip(data.targets_raw, data.state_raw, strict=True)])
    return floor_spread("actions", norm.compute_norm_stats(rel, per_step=per_step))


def extract(bags: Sequence[Path], builder: ObservationBuilder, rate_hz: float,
            progress: bool = True, teacher_topic: str = TEACHER_TOPIC) -> TrainArrays:
    """Every tick with an observation and a full horizon of teacher commands."""
    cols: dict[str, list] = {k: [] for k in ("state", "tokens", "token_mask", "tactile",
                                             "tactile_mask", "action_prev", "state_raw",
                                             "targets_raw")}
    images: dict[str, list] = {k: [] for k in IMAGE_KEYS}
    masks: dict[str, list] = {k: [] for k in IMAGE_KEYS}
    checked = False
    for bag in bags:
        with BagDataset(bag, builder, rate_hz, teacher_topic=teacher_topic) as ds:
            _collect(ds, builder, progress, images, masks, cols, checked)
            checked = True
    if not cols["state"]:
        raise ValueError(f"no training examples in {[str(b) for b in bags]} "
                         "(no tick had a valid observation and a full horizon of commands)")
    data = TrainArrays(
        images={k: np.stack(v) for k, v in images.items()},
        image_masks={k: np.asarray(v, bool) for k, v in masks.items()},
        state=np.stack(cols["state"]).astype(np.float32),
        tokens=np.stack(cols["tokens"]).astype(np.int32),
        token_mask=np.stack(cols["token_mask"]).astype(bool),
        tactile=np.stack(cols["tactile"]),
        tactile_mask=np.asarray(cols["tactile_mask"], bool),
        action_prev=np.stack(cols["action_prev"]).astype(np.float32),
        actions=np.zeros((0,), np.float32),
        state_raw=np.stack(cols["state_raw"]),
        targets_raw=np.stack(cols["targets_raw"]).astype(np.float32),
    )
    data.set_targets(builder)
    return data


def _collect(ds: BagDataset, builder: ObservationBuilder, progress: bool, images: dict,
             masks: dict, cols: dict, checked: bool) -> None:
    """Append every tick of `ds` with an observation and a full horizon of commands."""
    it = ds.valid_steps()
    if progress:
        it = tqdm(it, total=len(ds), desc=f"reading {ds.path.name}", unit="obs", leave=False)
    for step in it:
        if not step.target_mask.all():
            continue
        obs = step.observation
        if not checked:
            for k in IMAGE_KEYS:
                _check_lossless(obs.images[k], f"camera {k}")
            _check_lossless(obs.tactile_image, "tactile")
            checked = True
        for k in IMAGE_KEYS:
            images[k].append(to_uint8(obs.images[k][0]))
            masks[k].append(bool(obs.image_masks[k][0]))
        cols["state"].append(obs.state[0])
        cols["tokens"].append(obs.tokenized_prompt[0])
        cols["token_mask"].append(obs.tokenized_prompt_mask[0])
        cols["tactile"].append(to_uint8(obs.tactile_image[0]))
        cols["tactile_mask"].append(bool(obs.tactile_mask[0]))
        cols["action_prev"].append(obs.action_prev[0])
        cols["state_raw"].append(builder.state_vector(step.sample.joints))
        cols["targets_raw"].append(step.targets)


def train_tokenizer(prompts: Sequence[str], out: Path, vocab_size: int = 64) -> Path:
    """A word-level sentencepiece model over the prompts (tiny corpus -> soft vocab limit)."""
    import io

    import sentencepiece as spm

    texts = [p.strip() for p in prompts if p and p.strip()]
    if not texts:
        raise ValueError("no prompts to train the tokenizer on")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts * 4), model_writer=model, model_type="word",
        vocab_size=vocab_size, hard_vocab_limit=False, character_coverage=1.0,
        bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(model.getvalue())
    PromptTokenizer(out, 8)  # loads back, raises otherwise
    return out
