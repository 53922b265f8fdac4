"""Evaluation metrics: chunk accuracy vs. the teacher, a hold-last-command baseline,
chunk-boundary jumps, inference time, VQ code usage, and how well logvar anticipates contact.

All functions are pure numpy on `StepArrays`; undefined quantities are None
(never NaN) so metrics.json is strict JSON.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from restac_ros.eval import touch_metrics
from restac_ros.eval.records import NS_PER_S, StepArrays

DEFAULT_STEPS = (1, 5, 10)
CONTACT_WINDOWS_S = (0.25, 0.5, 1.0)
LEAD_WINDOW_S = 2.0


def _f(x: float | np.floating | None) -> float | None:
    """A finite float or None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def horizon_steps(horizon: int, steps: Sequence[int] = DEFAULT_STEPS) -> list[int]:
    """The 1-based horizon steps to report: the defaults that fit, plus H."""
    out = sorted({s for s in steps if 1 <= s <= horizon} | {horizon})
    return out


def error_at_steps(pred: np.ndarray, target: np.ndarray, steps: Sequence[int]) -> dict:
    """Per-dimension MAE/RMSE at 1-based horizon steps. pred, target: [N, H, D]."""
    out = {}
    for s in steps:
        err = pred[:, s - 1, :] - target[:, s - 1, :]
        valid = np.isfinite(err)
        n = valid.sum(axis=0)
        abs_sum = np.where(valid, np.abs(err), 0.0).sum(axis=0)
        sq_sum = np.where(valid, err**2, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mae = abs_sum / n
            rmse = np.sqrt(sq_sum / n)
        total = int(valid.sum())
        out[str(s)] = {
            "mae": [_f(v) for v in mae],
            "rmse": [_f(v) for v in rmse],
            "mae_mean": _f(abs_sum.sum() / total) if total else None,
            "rmse_mean": _f(math.sqrt(sq_sum.sum() / total)) if total else None,
            "count": int(n.min()) if n.size else 0,
        }
    return out


def hold_prediction(arrays: StepArrays) -> np.ndarray:
    """Hold-last-command baseline chunk: the last teacher command repeated [N, H, D]."""
    h = arrays.actions.shape[1]
    return np.repeat(arrays.hold[:, None, :], h, axis=1)


def chunk_boundary_jumps(arrays: StepArrays, dt_s: float) -> dict:
    """Jump between where chunk i would be at chunk i+1's stamp and chunk i+1's first action.

    Reported per dimension (mean/max of |difference|) next to the teacher's own
    mean step-to-step change for scale. Pairs whose offset exceeds the horizon are skipped.
    """
    a = arrays.actions
    n, h, d = a.shape
    jumps = []
    for i in range(n - 1):
        offset = (arrays.stamp_ns[i + 1] - arrays.stamp_ns[i]) / NS_PER_S / dt_s
        k = int(round(offset))
        if 0 <= k < h:
            jumps.append(np.abs(a[i + 1, 0, :] - a[i, k, :]))
    tgt = arrays.target
    teacher_delta = np.abs(np.diff(tgt, axis=1)).reshape(-1, d)
    teacher_delta = teacher_delta[np.all(np.isfinite(teacher_delta), axis=1)]
    teacher_mean = teacher_delta.mean(axis=0) if len(teacher_delta) else np.full(d, np.nan)
    if not jumps:
        return {"count": 0, "mean": None, "max": None, "mean_all": None,
                "teacher_step_delta_mean": [_f(v) for v in teacher_mean]}
    j = np.stack(jumps)
    return {
        "count": int(len(j)),
        "mean": [_f(v) for v in j.mean(axis=0)],
        "max": [_f(v) for v in j.max(axis=0)],
        "mean_all": _f(j.mean()),
        "teacher_step_delta_mean": [_f(v) for v in teacher_mean],
    }


def inference_stats(ms: np.ndarray) -> dict:
    if ms.size == 0:
        return {"count": 0}
    return {
        "count": int(ms.size),
        "mean_ms": _f(ms.mean()),
        "p50_ms": _f(np.percentile(ms, 50)),
        "p95_ms": _f(np.percentile(ms, 95)),
        "max_ms": _f(ms.max()),
    }


def code_usage(codes: np.ndarray, codebook_size: int | None = None) -> dict:
    """Histogram and perplexity (exp of the usage entropy) per quantiser stage.

    codes: int [N, n_q]; -1 marks "no code" (placeholder encoder or no tactile).
    """
    stages = []
    for q in range(codes.shape[1] if codes.ndim == 2 else 0):
        c = codes[:, q]
        c = c[c >= 0]
        if c.size == 0:
            stages.append({"stage": q, "count": 0, "used": 0, "perplexity": None,
                           "histogram": {}})
            continue
        values, counts = np.unique(c, return_counts=True)
        p = counts / counts.sum()
        entropy = float(-(p * np.log(p)).sum())
        stages.append({
            "stage": q,
            "count": int(c.size),
            "used": int(values.size),
            "perplexity": _f(math.exp(entropy)),
            "histogram": {str(int(v)): int(k) for v, k in zip(values, counts, strict=True)},
        })
    return {"codebook_size": codebook_size, "stages": stages,
            "available": any(s["count"] > 0 for s in stages)}


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties) over the
    finite scores; one implementation: `touch_metrics.auroc`."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    ok = np.isfinite(scores)
    return touch_metrics.auroc(scores[ok], labels[ok])


def in_contact(stamp_ns: np.ndarray, intervals: Sequence[tuple[int, int]]) -> np.ndarray:
    out = np.zeros(stamp_ns.shape, dtype=bool)
    for start, end in intervals:
        out |= (stamp_ns >= start) & (stamp_ns <= end)
    return out


def contact_within(stamp_ns: np.ndarray, intervals: Sequence[tuple[int, int]],
                   window_s: float) -> np.ndarray:
    """True where contact occurs at any time in [t, t + window]."""
    w = int(window_s * NS_PER_S)
    out = np.zeros(stamp_ns.shape, dtype=bool)
    for start, end in intervals:
        out |= (stamp_ns + w >= start) & (stamp_ns <= end)
    return out


def contact_anticipation(arrays: StepArrays, intervals: Sequence[tuple[int, int]],
                         windows_s: Sequence[float] = CONTACT_WINDOWS_S,
                         lead_window_s: float = LEAD_WINDOW_S) -> dict:
    """How well logvar (and gate) anticipate contact.

    - auroc_contact_within[k]: logvar as a score for "contact within the next k s"
      (currently-in-contact steps count as positives).
    - auroc_onset_precontact[k]: among steps NOT in contact, "an onset within k s".
    - lead time per onset: how long before the onset logvar rose above a threshold
      (95th percentile of logvar on steps farther than lead_window_s from any
      contact) and stayed above it until the onset; None when it did not.
    """
    t = arrays.stamp_ns
    intervals = [(int(a), int(b)) for a, b in intervals]
    result: dict = {"intervals": len(intervals), "windows_s": list(windows_s)}
    if not intervals or arrays.n == 0:
        result["available"] = False
        return result
    result["available"] = True
    now = in_contact(t, intervals)
    result["fraction_in_contact"] = _f(now.mean())
    for name, score in (("logvar", arrays.logvar), ("gate", arrays.gate)):
        within, onset = {}, {}
        for k in windows_s:
            lab = contact_within(t, intervals, k)
            within[str(k)] = _f(auroc(score, lab))
            pre = ~now
            onset[str(k)] = _f(auroc(score[pre], lab[pre]))
        result[f"{name}_auroc_contact_within"] = within
        result[f"{name}_auroc_onset_precontact"] = onset
    far = ~contact_within(t - int(lead_window_s * NS_PER_S), intervals, 2 * lead_window_s)
    base = arrays.logvar[far & np.isfinite(arrays.logvar)]
    if base.size < 5:
        base = arrays.logvar[~now & np.isfinite(arrays.logvar)]
    threshold = float(np.percentile(base, 95)) if base.size else None
    result["lead_threshold_logvar"] = _f(threshold)
    leads: list[float | None] = []
    for start, _end in intervals:
        if threshold is None:
            leads.append(None)
            continue
        lo = start - int(lead_window_s * NS_PER_S)
        idx = np.nonzero((t >= lo) & (t <= start))[0]
        if idx.size == 0 or arrays.logvar[idx[-1]] <= threshold:
            leads.append(None)
            continue
        first = idx[-1]
        for i in idx[::-1]:
            if arrays.logvar[i] > threshold:
                first = i
            else:
                break
        leads.append(_f((start - t[first]) / NS_PER_S))
    detected = [v for v in leads if v is not None]
    result["lead_times_s"] = leads
    result["onsets_anticipated"] = len(detected)
    result["median_lead_time_s"] = _f(np.median(detected)) if detected else None
    return result


def compute_metrics(arrays: StepArrays, dt_s: float, action_names: Sequence[str],
                    contact_intervals: Sequence[tuple[int, int]] | None,
                    codebook_size: int | None = None) -> dict:
    h = arrays.actions.shape[1]
    steps = horizon_steps(h)
    policy = error_at_steps(arrays.actions, arrays.target, steps)
    baseline = error_at_steps(hold_prediction(arrays), arrays.target, steps)
    comparison = {}
    for s in (1, 10):
        key = str(s)
        if key not in policy:
            continue
        p, b = policy[key]["mae_mean"], baseline[key]["mae_mean"]
        comparison[key] = {
            "policy_mae": p,
            "hold_mae": b,
            "policy_beats_hold": bool(p is not None and b is not None and p < b),
        }
    duration = (arrays.stamp_ns[-1] - arrays.stamp_ns[0]) / NS_PER_S if arrays.n else 0.0
    return {
        "steps": arrays.n,
        "duration_s": _f(duration),
        "horizon": h,
        "dt_s": dt_s,
        "action_names": list(action_names),
        "horizon_steps": steps,
        "policy": policy,
        "hold_baseline": baseline,
        "policy_vs_hold": comparison,
        "chunk_boundary_jumps": chunk_boundary_jumps(arrays, dt_s),
        "inference": inference_stats(arrays.inference_ms),
        "vq_code_usage": code_usage(arrays.codes, codebook_size),
        "logvar": {"mean": _f(np.nanmean(arrays.logvar)), "min": _f(np.nanmin(arrays.logvar)),
                   "max": _f(np.nanmax(arrays.logvar))},
        "gate": {"mean": _f(np.nanmean(arrays.gate)), "min": _f(np.nanmin(arrays.gate)),
                 "max": _f(np.nanmax(arrays.gate))},
        "tactile_valid_fraction": _f(arrays.tactile_valid.mean()),
        "contact": contact_anticipation(arrays, contact_intervals or []),
    }


def write_step_csv(path: Path, arrays: StepArrays, action_names: Sequence[str],
                   contact_intervals: Sequence[tuple[int, int]] | None) -> None:
    """One row per policy call: timing, diagnostics, and step-1/step-10 errors per dimension."""
    h = arrays.actions.shape[1]
    s10 = min(10, h)
    contact = in_contact(arrays.stamp_ns, contact_intervals or [])
    header = ["step", "stamp_ns", "time_s", "inference_ms", "logvar", "gate", "tactile_valid",
              "in_contact", "vq_codes"]
    for name in action_names:
        header += [f"pred1_{name}", f"target1_{name}", f"hold_{name}",
                   f"abs_err1_{name}", f"abs_err{s10}_{name}", f"hold_abs_err{s10}_{name}"]
    time_s = arrays.time_s
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(arrays.n):
            row = [i, int(arrays.stamp_ns[i]), f"{time_s[i]:.6f}", f"{arrays.inference_ms[i]:.3f}",
                   f"{arrays.logvar[i]:.6g}", f"{arrays.gate[i]:.6g}", int(arrays.tactile_valid[i]),
                   int(contact[i]), " ".join(str(int(c)) for c in arrays.codes[i])]
            for d in range(len(action_names)):
                p1, t1 = arrays.actions[i, 0, d], arrays.target[i, 0, d]
                e10 = arrays.actions[i, s10 - 1, d] - arrays.target[i, s10 - 1, d]
                b10 = arrays.hold[i, d] - arrays.target[i, s10 - 1, d]
                row += [f"{p1:.6g}", f"{t1:.6g}", f"{arrays.hold[i, d]:.6g}",
                        f"{abs(p1 - t1):.6g}", f"{abs(e10):.6g}", f"{abs(b10):.6g}"]
            w.writerow(row)
