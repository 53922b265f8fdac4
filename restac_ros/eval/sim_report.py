"""Closed-loop metrics per ablation, and their report: metrics.json, episodes.csv, PNGs and
one self-contained report.html (plots inlined, like restac-eval's).

Success rate with a Wilson 95% interval (exact enough at the small N of a CPU run, never
outside [0, 1]); time to success over the successful episodes; peak contact force on the
sensing pad; executor hold ticks; tactile diagnostics over time (logvar, the gate the
branch computed, VQ codes) split into free motion vs contact by the sim's ground truth;
the issue's touch targets (`touch_metrics`: gate contact/free ratio, logvar AUROC for
contact within 0.3 s, held-out VQ-code AUROC, on vs zeroed success with both intervals)
under metrics.json's `touch` and in the report.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from restac_ros.eval import touch_metrics  # noqa: E402
from restac_ros.eval.plots import CONTACT_COLOUR, PlotInfo  # noqa: E402
from restac_ros.eval.touch_metrics import Z95, wilson_interval  # noqa: E402,F401
from restac_ros.sim.closed_loop import Ablation  # noqa: E402

ABLATION_COLOURS = {"on": "#1f77b4", "zeroed": "#e76f51", "vision_only": "#7f7f7f"}


def _stats(values) -> dict:
    """Over the given values; None skipped, non-finite ones counted apart."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    bad = int(np.sum(~np.isfinite(v)))
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0, "nonfinite": bad, "mean": None, "median": None, "min": None,
                "max": None}
    return {"n": int(v.size), "nonfinite": bad, "mean": float(v.mean()),
            "median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def summarize_ablation(episodes: list[dict]) -> dict:
    n = len(episodes)
    k = sum(bool(e["success"]) for e in episodes)
    lo, hi = wilson_interval(k, n)
    ticks = [t for e in episodes for t in e["ticks"] if t["invalid"] is None]
    contact = [t for t in ticks if t["in_contact"]]
    free = [t for t in ticks if not t["in_contact"]]
    holds: Counter = Counter()
    invalid: Counter = Counter()
    for e in episodes:
        holds.update(e["hold_ticks"])
        invalid.update(e["invalid_ticks"])
    codes = Counter(c for t in ticks for c in t["codes"])
    # the first call of a worker compiles; the median is the steady per-tick latency
    inference = [t["inference_ms"] for t in ticks]
    return {
        "episodes": n, "successes": k, "success_rate": k / n if n else None,
        "success_ci95": [lo, hi],
        "time_to_success_s": _stats(e["time_to_success_s"] for e in episodes),
        "peak_force_n": _stats(e["peak_force_n"] for e in episodes),
        "closest_approach_m": _stats(e["closest_approach_m"] for e in episodes),
        "holds_per_episode": _stats(e["holds"] for e in episodes),
        "hold_ticks": dict(holds), "invalid_ticks": dict(invalid),
        "diverged": sum(bool(e["diverged"]) for e in episodes),
        "contact_episodes": sum(any(t["in_contact"] for t in e["ticks"]) for e in episodes),
        "logvar": _stats(t["logvar"] for t in ticks),
        "gate_branch_free": _stats(t["gate_branch"] for t in free),
        "gate_branch_contact": _stats(t["gate_branch"] for t in contact),
        "gate_applied": _stats(t["gate"] for t in ticks),
        "vq_codes": {str(c): n_c for c, n_c in sorted(codes.items())},
        "inference_ms_median": _stats(inference)["median"],
        "wall_s": _stats(e["wall_s"] for e in episodes),
    }


def _order(result: dict) -> tuple:
    """on, zeroed, vision_only (the CLI's order), then by seed."""
    names = [a.value for a in Ablation]
    a = result["ablation"]
    return (names.index(a) if a in names else len(names), a, result["seed"])


def summarize(results: list[dict]) -> dict:
    by: dict[str, list[dict]] = {}
    for r in sorted(results, key=_order):
        by.setdefault(r["ablation"], []).append(r)
    return {a: summarize_ablation(sorted(eps, key=lambda e: e["seed"])) for a, eps in by.items()}


def _deterministic(summary: dict) -> dict:
    """The summary without wall-clock numbers (what must repeat exactly for the same seeds)."""
    return {a: {k: v for k, v in s.items() if k not in ("wall_s", "inference_ms_median")}
            for a, s in summary.items()}


# --- plots -----------------------------------------------------------------------------
def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_success(path: Path, summary: dict) -> PlotInfo:
    names = list(summary)
    rate = [summary[a]["success_rate"] or 0.0 for a in names]
    lo = [r - summary[a]["success_ci95"][0] for r, a in zip(rate, names, strict=True)]
    hi = [summary[a]["success_ci95"][1] - r for r, a in zip(rate, names, strict=True)]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(names, rate, yerr=[lo, hi], capsize=6,
           color=[ABLATION_COLOURS.get(a, "#444") for a in names])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% Wilson)")
    ax.set_title("Success per ablation")
    _save(fig, path)
    return PlotInfo(path, "Success rate with 95% interval")


def plot_tactile_over_time(path: Path, results: list[dict]) -> PlotInfo:
    """logvar and the branch's gate over time, every episode, contact ticks marked."""
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True)
    marked = 0
    for r in results:
        ts = [t for t in r["ticks"] if t["logvar"] is not None]
        if not ts:
            continue
        c = ABLATION_COLOURS.get(r["ablation"], "#444")
        t = [x["t_s"] for x in ts]
        a1.plot(t, [x["logvar"] for x in ts], color=c, lw=0.8, alpha=0.6)
        a2.plot(t, [x["gate_branch"] for x in ts], color=c, lw=0.8, alpha=0.6)
        tc = [x["t_s"] for x in ts if x["in_contact"]]
        if tc:
            marked += 1
            a2.scatter(tc, [x["gate_branch"] for x in ts if x["in_contact"]], s=6,
                       color=CONTACT_COLOUR, zorder=3)
    for a, c in ABLATION_COLOURS.items():
        a1.plot([], [], color=c, label=a)
    a1.legend(fontsize=8, loc="upper right")
    a1.set_ylabel("logvar")
    a2.set_ylabel("gate (branch)")
    a2.set_xlabel("episode time [s]")
    a1.set_title("Tactile diagnostics over time (orange dots: sensing pad in contact)")
    _save(fig, path)
    return PlotInfo(path, "logvar and gate over time", marked)


def plot_episodes(path: Path, summary: dict, results: list[dict]) -> PlotInfo:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3))
    for i, a in enumerate(summary):
        eps = [r for r in results if r["ablation"] == a]
        x = i + np.linspace(-0.25, 0.25, max(len(eps), 1))[: len(eps)]
        a1.scatter(x, [e["peak_force_n"] for e in eps], color=ABLATION_COLOURS.get(a, "#444"))
        a2.scatter(x, [e["holds"] for e in eps], color=ABLATION_COLOURS.get(a, "#444"))
    for ax, label in ((a1, "peak contact force [N]"), (a2, "executor hold ticks")):
        ax.set_xticks(range(len(summary)), list(summary))
        ax.set_ylabel(label)
    a1.set_title("Per episode")
    _save(fig, path)
    return PlotInfo(path, "Peak force and executor holds per episode")


def plot_vq(path: Path, summary: dict) -> PlotInfo:
    fig, ax = plt.subplots(figsize=(6, 3))
    drawn = False
    for a, s in summary.items():
        if s["vq_codes"]:
            codes = [int(c) for c in s["vq_codes"]]
            ax.bar(codes, list(s["vq_codes"].values()), alpha=0.5, label=a,
                   color=ABLATION_COLOURS.get(a, "#444"))
            drawn = True
    if drawn:
        ax.legend(fontsize=8)
        ax.set_xlabel("VQ code")
        ax.set_ylabel("ticks")
    else:
        ax.text(0.5, 0.5, "no VQ codes (placeholder tactile encoder)", ha="center", va="center")
        ax.axis("off")
    ax.set_title("VQ code histogram")
    _save(fig, path)
    return PlotInfo(path, "VQ code histogram")


def plot_onset(path: Path, results: list[dict], before_s: float = 2.0,
               after_s: float = 1.0) -> PlotInfo:
    """logvar and the branch's gate against time from each episode's first contact onset:
    does logvar rise before or at contact (the anticipation the onset AUROC scores)?"""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3), sharex=True)
    aligned = 0
    for r in results:
        ts = r["ticks"]
        onset = next((t["t_s"] for t in ts if t["in_contact"]), None)
        if onset is None or not any(t["logvar"] is not None for t in ts):
            continue
        near = [t for t in ts if t["logvar"] is not None
                and -before_s <= t["t_s"] - onset <= after_s]
        c = ABLATION_COLOURS.get(r["ablation"], "#444")
        x = [t["t_s"] - onset for t in near]
        a1.plot(x, [t["logvar"] for t in near], color=c, lw=0.8, alpha=0.5)
        a2.plot(x, [t["gate_branch"] for t in near], color=c, lw=0.8, alpha=0.5)
        aligned += 1
    for ax, label in ((a1, "logvar"), (a2, "gate (branch)")):
        ax.axvline(0.0, color=CONTACT_COLOUR, lw=1)
        ax.axvspan(-touch_metrics.HORIZON_S, 0.0, color=CONTACT_COLOUR, alpha=0.15)
        ax.set_xlabel("time from first contact onset [s]")
        ax.set_ylabel(label)
    if not aligned:
        a1.text(0.5, 0.5, "no episode with contact and tactile diagnostics", ha="center",
                va="center", transform=a1.transAxes)
    a1.set_title(f"Around contact onset ({aligned} episodes; shaded: the 0.3 s before)")
    _save(fig, path)
    return PlotInfo(path, "logvar and gate around the first contact onset", aligned)


# --- files -----------------------------------------------------------------------------
CSV_FIELDS = ("ablation", "seed", "success", "time_to_success_s", "peak_force_n",
              "closest_approach_m", "holds",
              "control_ticks", "chunks_accepted", "diverged", "duration_s", "wall_s", "mcap")


def write_outputs(out: Path, results: list[dict], run: dict) -> dict:
    """metrics.json (run, per-ablation summary, per-episode rows), episodes.csv,
    episodes.jsonl (every tick), PNGs and report.html in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=_order)
    summary = summarize(results)
    touch = touch_metrics.touch_summary(results)
    rows = [{k: r[k] for k in CSV_FIELDS} for r in results]
    metrics = {"run": run, "ablations": summary, "touch": touch, "episodes": rows}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False))
    with open(out / "episodes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(rows)
    with open(out / "episodes.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps(r, allow_nan=True) + "\n")
    plots = [plot_success(out / "success.png", summary),
             plot_tactile_over_time(out / "tactile_over_time.png", results),
             plot_episodes(out / "episodes.png", summary, results),
             plot_vq(out / "vq_codes.png", summary),
             plot_onset(out / "contact_onset.png", results)]
    write_html(out / "report.html", summary, plots, run, touch)
    return metrics


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return html.escape(str(v))


def summary_table(summary: dict) -> list[list[str]]:
    """Header + one row per ablation (also the text table the CLI prints)."""
    rows = [["ablation", "success", "95% CI", "time to success [s]", "peak force [N]",
             "closest TCP-box [cm]", "holds/episode", "logvar mean", "gate free",
             "gate contact", "VQ codes used"]]
    for a, s in summary.items():
        lo, hi = s["success_ci95"]
        rows.append([a, f"{s['successes']}/{s['episodes']}", f"{lo:.2f}-{hi:.2f}",
                     _fmt(s["time_to_success_s"]["median"]), _fmt(s["peak_force_n"]["mean"]),
                     _fmt(None if s["closest_approach_m"]["mean"] is None
                          else 100 * s["closest_approach_m"]["mean"]),
                     _fmt(s["holds_per_episode"]["mean"]), _fmt(s["logvar"]["mean"]),
                     _fmt(s["gate_branch_free"]["mean"]), _fmt(s["gate_branch_contact"]["mean"]),
                     str(len(s["vq_codes"]))])
    return rows


def touch_table(touch: dict) -> list[list[str]]:
    """Header + one row per ablation with tactile diagnostics (the touch metrics)."""
    rows = [["ablation", "gate contact", "gate free", "contact/free",
             "logvar AUROC (contact <= 0.3 s)", "onset samples +/-",
             "logvar AUROC incl. sustained", "VQ AUROC held-out", "VQ AUROC in-sample",
             "codes used"]]
    for a, t in touch["per_ablation"].items():
        g, lo, vq = t["gate"], t["logvar_onset"], t["vq_contact"]
        rows.append([a, _fmt(g["contact_mean"]), _fmt(g["free_mean"]), _fmt(g["ratio"]),
                     _fmt(lo["auroc"]), f"{lo['positives']}/{lo['negatives']}",
                     _fmt(lo["auroc_with_sustained"]),
                     _fmt(vq["auroc"]), _fmt(vq["auroc_in_sample"]), str(vq["codes_used"])])
    return rows


def _html_table(table: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in table[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def _touch_html(touch: dict | None) -> str:
    if touch is None:
        return ""
    diff = touch.get("on_vs_zeroed")
    line = ""
    if diff is not None and diff["difference"] is not None:
        d_lo, d_hi = diff["difference_ci95"]
        line = (f"<p>success on - zeroed: {diff['difference']:+.3f} (Newcombe 95% "
                f"{d_lo:+.3f} .. {d_hi:+.3f}); Wilson intervals "
                f"{'disjoint' if diff['disjoint'] else 'overlap'}.</p>")
    notes = ("Targets on the `on` ablation's diagnostics. Gate: the branch's gate, mean over "
             "valid ticks with / without sensing-pad contact. logvar AUROC: label 'contact at "
             "a tick within the next 0.3 s', over free-motion and onset ticks (ticks in "
             "sustained contact and free ticks whose window leaves the episode excluded). VQ "
             "AUROC held-out: each tick scored by its code's contact frequency learned on the "
             "other half of the episodes (2 folds by seed); in-sample: learned on all ticks "
             "(optimistic upper bound).")
    return (f"<h2>Does touch help? (issue targets)</h2>"
            f"{_html_table(touch_metrics.targets_table(touch['targets']))}{line}"
            f"{_html_table(touch_table(touch))}<p>{html.escape(notes)}</p>")


def write_html(path: Path, summary: dict, plots: list[PlotInfo], run: dict,
               touch: dict | None = None) -> Path:
    inputs = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                     for k, v in run.items())
    figs = []
    for p in plots:
        data = base64.b64encode(Path(p.path).read_bytes()).decode("ascii")
        name = html.escape(Path(p.path).name)
        figs.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(p.title)} ({name})</figcaption></figure>")
    notes = ("time to success: median over successful episodes; peak force: mean over "
             "episodes of the largest normal force on the sensing pad; closest TCP-box: mean "
             "over episodes of the smallest gripper-centre to box-centre distance; holds: executor "
             "control ticks (100 Hz) holding (no chunk yet, chunk end, uncertainty guard); "
             "gate free / contact: the gate the tactile branch computed, mean over policy "
             "ticks without / with sensing-pad contact (in 'zeroed' it is reported, the "
             "applied gate is 0).")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;margin:0.5em 0;font-size:0.85em}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%}")
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>restac-eval-sim</title>"
           f"<style>{style}</style></head><body><h1>restac-eval-sim: closed loop in "
           f"restac_sim</h1><table>{inputs}</table><h2>Per ablation</h2>"
           f"{_html_table(summary_table(summary))}<p>{html.escape(notes)}</p>"
           f"{_touch_html(touch)}<h2>Plots</h2>{''.join(figs)}"
           f"</body></html>")
    Path(path).write_text(doc, encoding="utf-8")
    return Path(path)
