"""Unit tests of the evaluation metrics on hand-made data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from restac_ros.eval import metrics
from restac_ros.eval.records import NS_PER_S, StepRecord, stack
from restac_ros.eval.runner import hold_commands

DT = 0.1


def _arrays(n=20, h=10, d=2, logvar=None, actions=None, target=None, hold=None, codes=None):
    rng = np.random.default_rng(0)
    recs = []
    for i in range(n):
        recs.append(StepRecord(
            stamp_ns=i * int(DT * NS_PER_S),
            actions=rng.normal(size=(h, d)) if actions is None else actions[i],
            target=rng.normal(size=(h, d)) if target is None else target[i],
            hold=rng.normal(size=d) if hold is None else hold[i],
            inference_ms=1.0 + i, logvar=0.0 if logvar is None else float(logvar[i]),
            gate=0.5, codes=np.array([-1]) if codes is None else codes[i],
            q_event=np.zeros(4), tactile_valid=True))
    return stack(recs)


def test_auroc_known_values():
    assert metrics.auroc(np.array([1, 2, 3, 4.0]), np.array([0, 0, 1, 1])) == 1.0
    assert metrics.auroc(np.array([4, 3, 2, 1.0]), np.array([0, 0, 1, 1])) == 0.0
    assert metrics.auroc(np.array([1, 1, 1, 1.0]), np.array([0, 1, 0, 1])) == 0.5
    # one positive above two of three negatives
    assert metrics.auroc(np.array([0, 1, 3, 2.0]), np.array([0, 0, 0, 1])) == pytest.approx(2 / 3)
    assert metrics.auroc(np.array([1.0, 2.0]), np.array([1, 1])) is None


def test_errors_at_steps_and_hold_baseline():
    n, h, d = 5, 10, 2
    target = np.zeros((n, h, d))
    target[:, :, 0] = np.arange(h)  # dim 0 ramps by 1 per step
    actions = target + 0.5
    hold = np.full((n, d), -1.0)
    a = _arrays(n, h, d, actions=actions, target=target, hold=hold)
    m = metrics.compute_metrics(a, DT, ["a", "b"], None)
    assert m["horizon_steps"] == [1, 5, 10]
    assert m["policy"]["1"]["mae"] == [0.5, 0.5]
    assert m["policy"]["10"]["rmse_mean"] == pytest.approx(0.5)
    # hold predicts -1: error at step k on dim 0 is (k-1)+1 = k, dim 1 is 1
    assert m["hold_baseline"]["10"]["mae"] == [10.0, 1.0]
    assert m["policy_vs_hold"]["1"]["policy_beats_hold"]
    assert m["policy_vs_hold"]["10"]["policy_mae"] == pytest.approx(0.5)


def test_missing_targets_are_excluded():
    n, h, d = 4, 10, 1
    target = np.zeros((n, h, d))
    target[:, 9, :] = np.nan  # nothing recorded at step 10
    a = _arrays(n, h, d, actions=np.ones((n, h, d)), target=target, hold=np.zeros((n, d)))
    m = metrics.compute_metrics(a, DT, ["a"], None)
    assert m["policy"]["1"]["mae_mean"] == 1.0
    assert m["policy"]["10"]["mae_mean"] is None
    assert m["policy"]["10"]["count"] == 0
    assert not m["policy_vs_hold"]["10"]["policy_beats_hold"]


def test_hold_is_last_command_strictly_before():
    stamps = np.array([100, 200, 300])
    cmds = np.array([[1.0], [2.0], [3.0]])
    assert hold_commands(stamps, cmds, 200)[0] == 1.0
    assert hold_commands(stamps, cmds, 201)[0] == 2.0
    assert np.isnan(hold_commands(stamps, cmds, 100)[0])


def test_chunk_boundary_jump():
    n, h, d = 3, 10, 1
    actions = np.zeros((n, h, d))
    actions[1, 0, 0] = 2.0  # chunk 1 starts 2 away from where chunk 0 was
    a = _arrays(n, h, d, actions=actions, target=np.zeros((n, h, d)), hold=np.zeros((n, d)))
    j = metrics.chunk_boundary_jumps(a, DT)  # stamps DT apart -> offset 1 step
    assert j["count"] == 2
    assert j["max"] == [2.0]
    assert j["mean_all"] == pytest.approx(1.0)


def test_code_usage_perplexity():
    codes = np.array([[0], [1], [2], [3]] * 5)
    u = metrics.code_usage(codes, 16)
    assert u["stages"][0]["used"] == 4
    assert u["stages"][0]["perplexity"] == pytest.approx(4.0)
    none = metrics.code_usage(np.full((5, 1), -1))
    assert not none["available"] and none["stages"][0]["perplexity"] is None


def test_contact_anticipation_lead_time():
    n = 100  # 10 s at 10 Hz
    t = np.arange(n) * DT
    onset, end = 6.0, 8.0
    logvar = np.where((t >= onset - 0.5) & (t < end), 3.0, 0.0) + 0.01 * np.sin(t)
    a = _arrays(n, 10, 1, logvar=logvar)
    iv = [(int(onset * NS_PER_S), int(end * NS_PER_S))]
    c = metrics.contact_anticipation(a, iv)
    assert c["available"] and c["onsets_anticipated"] == 1
    assert c["lead_times_s"][0] == pytest.approx(0.5, abs=1e-6)
    assert c["logvar_auroc_onset_precontact"]["0.5"] == 1.0
    assert c["logvar_auroc_contact_within"]["0.5"] > 0.99
    assert 0.5 < c["logvar_auroc_contact_within"]["1.0"] < 1.0  # rises only 0.5 s ahead
    flat = metrics.contact_anticipation(_arrays(n, 10, 1, logvar=np.zeros(n)), iv)
    assert flat["onsets_anticipated"] == 0
    assert flat["logvar_auroc_contact_within"]["0.5"] == 0.5


def test_metrics_json_is_strict():
    import json

    a = _arrays()
    m = metrics.compute_metrics(a, DT, ["a", "b"], [(int(0.5 * NS_PER_S), int(1.0 * NS_PER_S))])
    text = json.dumps(m, allow_nan=False)
    assert not math.isnan(json.loads(text)["inference"]["mean_ms"])
