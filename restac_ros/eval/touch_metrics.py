"""Does touch help? The closed loop's tactile metrics against the sim's contact ground truth.

From the per-tick records of `restac_ros.sim.closed_loop` (TickRecord: `in_contact` is
MuJoCo's contact on the sensing pad at the tick, `logvar` / `gate_branch` / `codes` the
tactile branch's diagnostics; ticks without a valid observation carry no diagnostics but
their ground truth still counts for labels):

- gate: mean gate the branch computed over contact ticks vs free-motion ticks, and
  their ratio (target >= 2).
- logvar anticipation: AUROC of logvar for "contact within the next 0.3 s" over the
  ticks not already in sustained contact (free motion and onset ticks: a tick whose
  previous tick was in contact is excluded, it would reward "logvar is high IN contact",
  not "before or at onset"). A free tick whose 0.3 s window runs past the episode's last
  tick without contact is excluded too (its label is unknown). Target >= 0.8.
- VQ codes: AUROC for contact vs no contact of a held-out code score: episodes are split
  by seed into two folds; each fold's ticks are scored with the contact frequency of
  their code (the tuple of all quantizer stages) learned on the OTHER fold, smoothed
  towards that fold's base rate (an unseen code gets the base rate). Cross-fitting scores
  every tick out of sample, so a code seen only in one episode cannot leak its own label;
  a "best single code" indicator would be chosen in-sample (optimistic) and could not
  express several contact codes. The in-sample score is reported next to it as an upper
  bound. Target >= 0.95.
- on vs zeroed: success-rate difference with both Wilson 95% intervals, whether they are
  disjoint, and Newcombe's hybrid-score 95% interval of the difference (target: on's
  lower bound above zeroed's upper bound).

AUROC is rank-based (Mann-Whitney U with mid-ranks for ties), numpy only.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

HORIZON_S = 0.3  # "contact within the next 0.3 s"
CODE_PRIOR_WEIGHT = 1.0  # pseudo-ticks pulling a code's frequency towards the base rate
_EPS_S = 1e-6  # tick times come from integer ns / 1e9: compare with a margin

TARGETS = {"gate_ratio": 2.0, "logvar_onset_auroc": 0.8, "vq_contact_auroc": 0.95}
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) for n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at k = 0 / k = n the bound is exactly 0 / 1 (float rounding would leave 1 - 1e-16)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def auroc(scores, labels) -> float | None:
    """P(score of a positive > score of a negative) + 0.5 P(tie); None without both classes.

    Mid-rank Mann-Whitney U: sort, give tied scores their mean rank, U = rank sum of the
    positives - n1 (n1 + 1) / 2, AUROC = U / (n1 n0). Scores must be finite."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.all(np.isfinite(s)):
        raise ValueError("auroc: scores must be finite (drop or count non-finite ones first)")
    n1 = int(y.sum())
    n0 = int(y.size - n1)
    if n1 == 0 or n0 == 0:
        return None
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # 1-based rank of each tie group's last member
    midrank = ends - (counts - 1) / 2.0
    rank_sum = float(midrank[inverse][y].sum())
    return (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def _mean(values) -> float | None:
    v = [float(x) for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def gate_split(episodes: list[dict]) -> dict:
    """Mean branch gate in contact vs free motion (valid ticks) and contact / free."""
    ticks = [t for e in episodes for t in e["ticks"]
             if t["invalid"] is None and t["gate_branch"] is not None]
    contact = _mean(t["gate_branch"] for t in ticks if t["in_contact"])
    free = _mean(t["gate_branch"] for t in ticks if not t["in_contact"])
    ratio = contact / free if contact is not None and free not in (None, 0.0) else None
    return {"contact_mean": contact, "free_mean": free, "ratio": ratio,
            "contact_ticks": sum(bool(t["in_contact"]) for t in ticks),
            "free_ticks": sum(not t["in_contact"] for t in ticks)}


def onset_labels(ticks: list[dict], horizon_s: float = HORIZON_S,
                 sustained: bool = False) -> list[bool | None]:
    """Per tick: contact at any tick in [t, t + horizon] (True / False), or None where the
    tick is in sustained contact (previous tick in contact; kept, as True, with
    `sustained`) or the label is unknown (a free window that runs past the episode's last
    tick)."""
    t = np.asarray([x["t_s"] for x in ticks], dtype=np.float64)
    c = np.asarray([bool(x["in_contact"]) for x in ticks])
    out: list[bool | None] = []
    last = t[-1] if t.size else 0.0
    for i in range(t.size):
        if i > 0 and c[i - 1] and not (sustained and c[i]):
            out.append(None)  # sustained contact: not an anticipation sample
            continue
        window = (t >= t[i] - _EPS_S) & (t <= t[i] + horizon_s + _EPS_S)
        if c[window].any():
            out.append(True)
        elif t[i] + horizon_s > last + _EPS_S:
            out.append(None)  # the window leaves the episode: unknown
        else:
            out.append(False)
    return out


def _logvar_samples(episodes, horizon_s: float, sustained: bool):
    scores, labels, nonfinite = [], [], 0
    for e in episodes:
        for rec, y in zip(e["ticks"], onset_labels(e["ticks"], horizon_s, sustained),
                          strict=True):
            if y is None or rec["invalid"] is not None or rec["logvar"] is None:
                continue
            if not math.isfinite(rec["logvar"]):
                nonfinite += 1
                continue
            scores.append(rec["logvar"])
            labels.append(y)
    return scores, labels, nonfinite


def logvar_onset(episodes: list[dict], horizon_s: float = HORIZON_S) -> dict:
    """The anticipation AUROC (the target); `auroc_with_sustained` also counts the ticks in
    sustained contact as positives ("in contact now or within the horizon")."""
    scores, labels, nonfinite = _logvar_samples(episodes, horizon_s, sustained=False)
    with_sustained = auroc(*_logvar_samples(episodes, horizon_s, sustained=True)[:2])
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    return {"auroc": auroc(scores, labels), "auroc_with_sustained": with_sustained,
            "horizon_s": horizon_s, "positives": len(pos),
            "negatives": len(neg), "nonfinite": nonfinite,
            "logvar_mean_positive": _mean(pos), "logvar_mean_negative": _mean(neg)}


def _code_ticks(episodes: list[dict]) -> list[tuple[int, tuple[int, ...], bool]]:
    """(seed, code tuple, in contact) of every valid tick that has codes."""
    return [(int(e["seed"]), tuple(int(c) for c in t["codes"]), bool(t["in_contact"]))
            for e in episodes for t in e["ticks"] if t["invalid"] is None and t["codes"]]


def _code_frequency(train: list[tuple], prior_weight: float):
    base = float(np.mean([y for _, _, y in train]))
    n: dict = defaultdict(int)
    k: dict = defaultdict(int)
    for _, code, y in train:
        n[code] += 1
        k[code] += y

    def score(code) -> float:
        return (k.get(code, 0) + prior_weight * base) / (n.get(code, 0) + prior_weight)

    return score


def code_folds(seeds) -> dict[int, int]:
    """Seed -> fold 0/1: the sorted distinct seeds alternate (deterministic, balanced)."""
    return {s: i % 2 for i, s in enumerate(sorted(set(int(x) for x in seeds)))}


def vq_contact(episodes: list[dict], prior_weight: float = CODE_PRIOR_WEIGHT) -> dict:
    rows = _code_ticks(episodes)
    folds = code_folds(s for s, _, _ in rows)
    out = {"auroc": None, "auroc_in_sample": None, "score": "held-out per-code contact "
           "frequency (2 folds by seed, cross-fitted)", "ticks": len(rows),
           "contact_ticks": sum(y for _, _, y in rows), "codes_used": len({c for _, c, _ in rows}),
           "episodes_with_codes": len(folds)}
    if not rows:
        return out
    out["auroc_in_sample"] = auroc([_code_frequency(rows, prior_weight)(c) for _, c, _ in rows],
                                   [y for _, _, y in rows])
    if len(folds) < 2:
        return out  # nothing to hold out
    scores, labels = [], []
    for f in (0, 1):
        train = [r for r in rows if folds[r[0]] != f]
        test = [r for r in rows if folds[r[0]] == f]
        score = _code_frequency(train, prior_weight)
        scores += [score(c) for _, c, _ in test]
        labels += [y for _, _, y in test]
    out["auroc"] = auroc(scores, labels)
    return out


def newcombe_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float] | None:
    """Newcombe's hybrid score 95% interval of p1 - p2 (method 10), from Wilson bounds."""
    if n1 == 0 or n2 == 0:
        return None
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1)
    l2, u2 = wilson_interval(k2, n2)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def success_difference(on: list[dict], zeroed: list[dict]) -> dict:
    k1, n1 = sum(bool(e["success"]) for e in on), len(on)
    k2, n2 = sum(bool(e["success"]) for e in zeroed), len(zeroed)
    ci_on, ci_zero = wilson_interval(k1, n1), wilson_interval(k2, n2)
    diff_ci = newcombe_interval(k1, n1, k2, n2)
    return {"on": [k1, n1], "zeroed": [k2, n2],
            "difference": k1 / n1 - k2 / n2 if n1 and n2 else None,
            "on_ci95": list(ci_on), "zeroed_ci95": list(ci_zero),
            "difference_ci95": None if diff_ci is None else list(diff_ci),
            "disjoint": ci_on[0] > ci_zero[1] or ci_zero[0] > ci_on[1],
            "on_beats_zeroed": ci_on[0] > ci_zero[1],
            "same_seeds": sorted(e["seed"] for e in on) == sorted(e["seed"] for e in zeroed)}


def touch_summary(results: list[dict]) -> dict:
    """Per ablation with tactile diagnostics: gate split, logvar anticipation, VQ codes;
    plus on vs zeroed and the issue's targets (on the `on` ablation's diagnostics)."""
    by: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(results, key=lambda r: (r["ablation"], r["seed"])):
        by[r["ablation"]].append(r)
    per = {a: {"gate": gate_split(eps), "logvar_onset": logvar_onset(eps),
               "vq_contact": vq_contact(eps)}
           for a, eps in by.items() if a != "vision_only"}
    out = {"per_ablation": per, "on_vs_zeroed": None}
    if by.get("on") and by.get("zeroed"):
        out["on_vs_zeroed"] = success_difference(by["on"], by["zeroed"])
    out["targets"] = targets(out)
    return out


def targets(touch: dict) -> list[dict]:
    """The issue's targets: target, measured, pass (None: not measurable), shortfall."""
    on = touch["per_ablation"].get("on")
    rows = []

    def add(name, target, measured, passed, shortfall, note):
        rows.append({"target": name, "wanted": target, "measured": measured,
                     "pass": passed, "shortfall": shortfall, "note": note})

    diff = touch.get("on_vs_zeroed")
    if diff is None:
        add("success on > zeroed, CIs disjoint", "on lower > zeroed upper", None, None, None,
            "needs ablations on and zeroed")
    else:
        gap = diff["on_ci95"][0] - diff["zeroed_ci95"][1]
        add("success on > zeroed, CIs disjoint", "on lower > zeroed upper",
            f"{diff['on'][0]}/{diff['on'][1]} vs {diff['zeroed'][0]}/{diff['zeroed'][1]} "
            f"(diff {diff['difference']:+.2f})", bool(diff["on_beats_zeroed"]),
            None if gap > 0 else -gap,
            f"on {diff['on_ci95'][0]:.2f}-{diff['on_ci95'][1]:.2f}, zeroed "
            f"{diff['zeroed_ci95'][0]:.2f}-{diff['zeroed_ci95'][1]:.2f}")
    specs = (("mean gate contact / free", "gate", "ratio", "gate_ratio"),
             ("logvar AUROC, contact within 0.3 s", "logvar_onset", "auroc",
              "logvar_onset_auroc"),
             ("VQ-code AUROC, contact vs none", "vq_contact", "auroc", "vq_contact_auroc"))
    for name, section, key, tkey in specs:
        value = None if on is None else on[section][key]
        want = TARGETS[tkey]
        if value is None:
            add(name, f">= {want:g}", None, None, None, "not measurable (no contact, no "
                "codes, or no `on` ablation)")
        else:
            add(name, f">= {want:g}", round(float(value), 4), bool(value >= want),
                None if value >= want else round(want - float(value), 4), "")
    return rows


def targets_table(rows: list[dict]) -> list[list[str]]:
    """Header + one row per target (text for the CLI, the bench and the HTML report)."""
    out = [["target", "wanted", "measured", "pass", "short by", "note"]]
    for r in rows:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[r["pass"]]
        out.append([r["target"], r["wanted"], "n/a" if r["measured"] is None
                    else str(r["measured"]), verdict,
                    "" if r["shortfall"] is None else f"{r['shortfall']:.3g}", r["note"]])
    return out
