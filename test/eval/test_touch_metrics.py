"""Touch metrics of the closed loop (restac_ros/eval/touch_metrics.py) and their report."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from restac_ros.eval import sim_report, touch_metrics
from restac_ros.eval.touch_metrics import (
    auroc,
    code_folds,
    gate_split,
    logvar_onset,
    newcombe_interval,
    onset_labels,
    success_difference,
    touch_summary,
    vq_contact,
    wilson_interval,
)
from restac_ros.sim.closed_loop import EpisodeResult, TickRecord

RATE_HZ = 15.0


def brute_force_auroc(scores, labels) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


# --- AUROC -----------------------------------------------------------------------------
def test_auroc_hand_computed_cases():
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0  # perfectly separated
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0  # perfectly inverted
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5  # all tied
    # positives {0.4, 0.8} each beat both negatives {0.1, 0.35}: 4 wins of 4 pairs
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 1, 0, 1]) == 1.0
    # the sklearn docs' example: scores .1 .4 .35 .8, labels 0 0 1 1 -> 0.75
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # one tie between classes: pos {1, 2}, neg {1, 0}: (1,1) half, (1,0) win, (2,1) win,
    # (2,0) win -> 3.5 / 4
    assert auroc([1, 2, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.875)


def test_auroc_matches_brute_force_pairwise_count_with_ties():
    rng = np.random.default_rng(7)
    for trial in range(30):
        n = int(rng.integers(2, 60))
        scores = rng.integers(0, 6, n).astype(float)  # few values: many ties
        if trial % 3 == 0:
            scores = rng.standard_normal(n)
        labels = rng.random(n) < 0.4
        if labels.all() or not labels.any():
            labels[0] = not labels[0]
        assert auroc(scores, labels) == pytest.approx(brute_force_auroc(scores, labels),
                                                      abs=1e-12)


def test_auroc_needs_both_classes_and_finite_scores():
    assert auroc([0.1, 0.2], [1, 1]) is None
    assert auroc([0.1, 0.2], [0, 0]) is None
    with pytest.raises(ValueError, match="finite"):
        auroc([0.1, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="labels"):
        auroc([0.1, 0.2, 0.3], [0, 1])


# --- episodes as the closed loop writes them ---------------------------------------------
def episode(seed: int, contact: list[bool], *, logvar=None, gate=None, codes=None,
            ablation: str = "on", success: bool = False, invalid=()) -> dict:
    """An EpisodeResult.as_dict() of the real dataclasses (ticks at 15 Hz)."""
    ticks = []
    for i, c in enumerate(contact):
        bad = i in invalid
        ticks.append(TickRecord(
            t_s=i / RATE_HZ, in_contact=c, normal_force_n=2.0 if c else 0.0, slipping=False,
            logvar=None if bad or logvar is None else logvar[i],
            gate=None if bad or gate is None else gate[i],
            gate_branch=None if bad or gate is None else gate[i],
            codes=[] if bad or codes is None else list(codes[i]),
            inference_ms=None if bad else 5.0, invalid="missing_stream" if bad else None))
    return EpisodeResult(
        seed=seed, ablation=ablation, success=success, time_to_success_s=None,
        duration_s=len(contact) / RATE_HZ, peak_force_n=2.0 * any(contact),
        closest_approach_m=0.1, hold_ticks={}, control_ticks=10, chunks_accepted=1,
        chunks_refused={}, invalid_ticks={}, ticks=ticks, diverged=False, wall_s=1.0,
        final_joints=[0.0] * 7).as_dict()


def test_onset_labels_window_sustained_contact_and_unknown_end():
    # ticks 0..14 at 15 Hz; contact from tick 8 to 10, then free to the end
    contact = [False] * 8 + [True] * 3 + [False] * 4
    labels = onset_labels(episode(1, contact)["ticks"])
    # 0.3 s = 4.5 ticks: ticks 4..7 see tick 8 within [t, t + 0.3]; tick 3 does not (0.333 s)
    assert labels[:4] == [False] * 4
    assert labels[4:8] == [True] * 4
    assert labels[8] is True  # the onset tick itself
    assert labels[9:12] == [None] * 3  # sustained contact (tick 11: previous tick in contact)
    # ticks 12..14: windows run past the last tick (0.933 s) without contact: unknown
    assert labels[12:] == [None] * 3
    with_sustained = onset_labels(episode(1, contact)["ticks"], sustained=True)
    assert with_sustained[9:11] == [True, True] and with_sustained[11] is None  # 11: released
    assert with_sustained[:9] == labels[:9] and with_sustained[12:] == labels[12:]


def test_logvar_onset_auroc_from_rising_logvar():
    contact = [False] * 10 + [True] * 5 + [False] * 10
    lv = [-3.0] * 6 + [-1.0, -0.5, 0.0, 0.5] + [1.0] * 5 + [-3.0] * 10
    r = logvar_onset([episode(1, contact, logvar=lv)])
    assert r["auroc"] == 1.0  # logvar rises in the 0.3 s before onset: perfect anticipation
    # positives: ticks 6..9 (onset within 0.3 s = 4.5 ticks) and the onset tick 10;
    # negatives: ticks 0..5 and 16..19 (11..15 sustained, 20..24 run past the end)
    assert r["positives"] == 5 and r["negatives"] == 6 + 4
    # in sustained contact logvar stays at 1.0: counted as positives it still separates
    assert r["auroc_with_sustained"] == 1.0
    flat = logvar_onset([episode(1, contact, logvar=[0.0] * 25)])
    assert flat["auroc"] == 0.5  # constant logvar carries no information
    # an invalid tick has no score but its contact still defines the others' labels
    r2 = logvar_onset([episode(1, contact, logvar=lv, invalid={10})])
    assert r2["auroc"] == 1.0 and r2["positives"] == 4


def test_gate_split_ratio():
    contact = [False, False, True, True]
    g = gate_split([episode(1, contact, gate=[0.1, 0.3, 0.5, 0.7])])
    assert g["free_mean"] == pytest.approx(0.2) and g["contact_mean"] == pytest.approx(0.6)
    assert g["ratio"] == pytest.approx(3.0)
    assert gate_split([episode(1, [False, False], gate=[0.1, 0.2])])["ratio"] is None


def test_vq_codes_held_out_score_has_no_in_sample_leak():
    # code 7 means contact and code 3 free motion in every episode; codes 100+seed (contact)
    # and 200+seed (free) appear in ONE episode only: in-sample they look informative,
    # held out they carry nothing (the other fold's base rate, tied with each other)
    eps = []
    for seed in range(10, 16):
        contact = [False] * 6 + [True] * 4
        codes = [(3,)] * 4 + [(200 + seed,)] * 2 + [(7,)] * 2 + [(100 + seed,)] * 2
        eps.append(episode(seed, contact, codes=codes))
    r = vq_contact(eps)
    assert r["auroc_in_sample"] == 1.0
    base = 0.4  # the training fold: 3 episodes, 12 of 30 ticks in contact
    p7 = (3 * 2 + base) / (3 * 2 + 1)
    p3 = (0 + base) / (3 * 4 + 1)
    scores, labels = [], []
    for _ in eps:
        scores += [p3] * 4 + [base] * 2 + [p7] * 2 + [base] * 2
        labels += [0] * 6 + [1] * 4
    assert r["auroc"] == pytest.approx(brute_force_auroc(scores, labels))
    assert 0.5 < r["auroc"] < 1.0
    assert r["codes_used"] == 2 + 12 and r["episodes_with_codes"] == 6


def test_vq_codes_perfect_separation_and_folds():
    eps = [episode(s, [False] * 5 + [True] * 5, codes=[(1, 4)] * 5 + [(2, 4)] * 5)
           for s in (3, 1, 2, 4)]
    assert vq_contact(eps)["auroc"] == 1.0
    assert code_folds([4, 1, 3, 2, 1]) == {1: 0, 2: 1, 3: 0, 4: 1}
    one = vq_contact(eps[:1])
    assert one["auroc"] is None and one["auroc_in_sample"] == 1.0  # nothing to hold out
    assert vq_contact([episode(1, [True, False])])["auroc"] is None  # placeholder: no codes


def test_newcombe_interval_matches_the_published_example():
    # Newcombe (1998), Stat. Med. 17:873, method 10, example (a): 56/70 vs 48/80
    lo, hi = newcombe_interval(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=1e-4) and hi == pytest.approx(0.3339, abs=1e-4)
    assert newcombe_interval(0, 0, 1, 2) is None


def test_success_difference_disjoint_intervals():
    on = [episode(s, [False], success=s < 45) for s in range(50)]
    zero = [episode(s, [False], ablation="zeroed", success=s < 10) for s in range(50)]
    d = success_difference(on, zero)
    assert d["difference"] == pytest.approx(0.7)
    assert d["on_ci95"] == list(wilson_interval(45, 50))
    assert d["disjoint"] and d["on_beats_zeroed"] and d["same_seeds"]
    close = success_difference(on[:10], zero[:10])  # 10/10 vs 10/10
    assert not close["disjoint"] and not close["on_beats_zeroed"]


def _run(ablation: str, successes: int, n: int = 8) -> list[dict]:
    out = []
    for s in range(100, 100 + n):
        contact = [False] * 10 + [True] * 6 + [False] * 4
        lv = [-2.0] * 6 + [0.5] * 10 + [-2.0] * 4
        gate = [0.1] * 10 + [0.4] * 6 + [0.1] * 4
        codes = [(5,)] * 10 + [(9,)] * 6 + [(5,)] * 4
        out.append(episode(s, contact, logvar=lv, gate=gate, codes=codes, ablation=ablation,
                           success=s - 100 < successes))
    return out


def test_touch_summary_targets_and_report(tmp_path):
    results = _run("on", 8) + _run("zeroed", 0) + [
        episode(s, [False] * 20, ablation="vision_only") for s in range(100, 108)]
    touch = touch_summary(results)
    assert set(touch["per_ablation"]) == {"on", "zeroed"}
    on = touch["per_ablation"]["on"]
    assert on["gate"]["ratio"] == pytest.approx(4.0)
    assert on["logvar_onset"]["auroc"] == 1.0 and on["vq_contact"]["auroc"] == 1.0
    rows = {r["target"]: r for r in touch["targets"]}
    assert all(r["pass"] for r in rows.values())  # 8/8 vs 0/8: Wilson 0.68-1 vs 0-0.32
    table = touch_metrics.targets_table(touch["targets"])
    assert table[0][:4] == ["target", "wanted", "measured", "pass"] and len(table) == 5

    metrics = sim_report.write_outputs(tmp_path, results, {"checkpoint": "synthetic"})
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["touch"] == json.loads(json.dumps(metrics["touch"]))
    html = (tmp_path / "report.html").read_text()
    assert "Does touch help?" in html and "contact_onset.png" in html
    assert (tmp_path / "contact_onset.png").stat().st_size > 0


def test_targets_fail_and_shortfall_when_touch_does_not_help():
    results = _run("on", 4) + _run("zeroed", 4)
    for e in results:  # gate equal in contact and free motion
        for t in e["ticks"]:
            t["gate_branch"] = 0.2
    rows = {r["target"]: r for r in touch_summary(results)["targets"]}
    gate = rows["mean gate contact / free"]
    assert gate["pass"] is False and gate["shortfall"] == pytest.approx(1.0)
    succ = rows["success on > zeroed, CIs disjoint"]
    assert succ["pass"] is False and succ["shortfall"] > 0
    only_on = touch_summary(_run("on", 4))["targets"]
    assert only_on[0]["pass"] is None  # no zeroed ablation: not measurable
