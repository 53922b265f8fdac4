"""The design note's real-data validation box, on the data we can make.

Trains on two ``restac-make-sample-bag`` episodes, evaluates on a held-out
third: contact-detection AUROC from q_event (and from the codes) >= 0.8 on
the held-out episode, logvar finite on every frame.  Frames come from the
core's observation path (``BagDataset`` + ``ObservationBuilder``) at 7.5 Hz.
~1.5-2 min on one core.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from restac_ros.sample_bag import read_contact_intervals, write_sample_bag
from restac_ros.tactile.bag_frames import concat_frames, read_bag_frames
from restac_ros.tactile.config import default_hparams
from restac_ros.tactile.train import save_trained, train_vqvae
from restac_ros.tactile.validate import auroc, evaluate

SECONDS = 10.0  # one grasp: free space first, then ~4.5 s of contact
RATE_HZ = 7.5  # every other 15 Hz control tick


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample_bags")
    return [write_sample_bag(root / f"s{s}", seconds=SECONDS, seed=s).path for s in (0, 1, 2)]


def test_auroc_reference_values():
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert auroc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75


def test_contact_labels_match_bag_metadata(bags):
    f = read_bag_frames(bags[0], rate_hz=RATE_HZ)
    intervals = read_contact_intervals(bags[0])
    inside = np.array([any(a <= t <= b for a, b in intervals) for t in f.stamps_ns])
    assert 0.2 < f.contact.mean() < 0.8
    assert np.mean(inside == f.contact) >= 0.95  # only frames at an interval edge may differ


@pytest.mark.slow
def test_contact_detection_on_heldout_episode(bags, tmp_path):
    train = concat_frames([read_bag_frames(b, rate_hz=RATE_HZ) for b in bags[:2]])
    heldout = read_bag_frames(bags[2], rate_hz=RATE_HZ)
    hp = default_hparams(ch=32, n_e=32, num_res_blocks=1, prophet_input_size=64)
    trainer = train_vqvae(train, hp, steps=15, event_steps=80, batch_size=4,
                          event_batch_size=16, device="cpu", seed=0, progress=False)
    ckpt = tmp_path / "vqvae.ckpt"
    save_trained(trainer, str(ckpt))
    result = evaluate(str(ckpt), train, heldout)
    print("validation:", json.dumps(result))
    assert result["logvar_finite"]
    assert result["auroc_q_event"] >= 0.8, result
    assert result["auroc_codes"] >= 0.8, result
    assert result["codes_used"] > 1
    assert torch.isfinite(torch.tensor([result["logvar_min"], result["logvar_max"]])).all()
