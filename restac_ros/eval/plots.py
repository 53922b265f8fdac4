"""PNG plots of an evaluation (matplotlib, Agg backend: no display needed).

Every function draws into a new figure, saves it, closes it, and returns a
`PlotInfo` saying what it drew (tests check e.g. that contact intervals were shaded).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from restac_ros.eval.metrics import hold_prediction  # noqa: E402
from restac_ros.eval.records import NS_PER_S, StepArrays  # noqa: E402

CONTACT_COLOUR = "#f4a261"
POLICY_COLOUR = "#1f77b4"
HOLD_COLOUR = "#7f7f7f"
TEACHER_COLOUR = "#2a9d8f"


@dataclasses.dataclass(frozen=True)
class PlotInfo:
    path: Path
    title: str
    contact_spans: int = 0  # contact intervals shaded (summed over axes / panels once)


def contact_intervals_s(arrays: StepArrays, intervals: Sequence[tuple[int, int]]) -> list:
    """Bag-time intervals [ns] -> seconds relative to the first evaluation step."""
    if arrays.n == 0:
        return []
    t0 = int(arrays.stamp_ns[0])
    return [((a - t0) / NS_PER_S, (b - t0) / NS_PER_S) for a, b in intervals]


def _shade(ax, spans_s: Sequence[tuple[float, float]], label: bool = True) -> int:
    for i, (a, b) in enumerate(spans_s):
        ax.axvspan(a, b, color=CONTACT_COLOUR, alpha=0.3, lw=0,
                   label="contact (ground truth)" if label and i == 0 else None)
    return len(spans_s)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_actions(path: Path, arrays: StepArrays, names: Sequence[str],
                 spans_s: Sequence[tuple[float, float]], step: int = 10,
                 dt_s: float | None = None) -> PlotInfo:
    """Per dimension: teacher command, the policy's step-1 and step-`step` predictions
    (the latter drawn at the time it is due, obs time + (step-1)*dt_s, when dt_s is given)."""
    d = len(names)
    step = min(step, arrays.actions.shape[1])
    cols = 2
    rows = (d + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 1.9 * rows), sharex=True, squeeze=False)
    t = arrays.time_s
    dt = float(np.median(np.diff(t))) if arrays.n > 1 else 0.0
    for i, ax in enumerate(axes.ravel()):
        if i >= d:
            ax.axis("off")
            continue
        _shade(ax, spans_s, label=i == 0)
        ax.plot(t, arrays.target[:, 0, i], color=TEACHER_COLOUR, lw=1.6, label="teacher")
        ax.plot(t, arrays.actions[:, 0, i], color=POLICY_COLOUR, lw=1.0, label="policy step 1")
        if step > 1 and dt > 0:
            shift = (step - 1) * dt_s if dt_s else 0.0
            when = "due time" if dt_s else "obs time"
            ax.plot(t + shift, arrays.actions[:, step - 1, i], color=POLICY_COLOUR, lw=0.8,
                    ls="--", label=f"policy step {step} (at its {when})")
        ax.set_ylabel(names[i], fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("time [s]")
    fig.suptitle("Predicted vs. commanded actions")
    _save(fig, path)
    return PlotInfo(path, "Predicted vs. commanded actions", len(spans_s))


def plot_error_by_horizon(path: Path, arrays: StepArrays) -> PlotInfo:
    """Mean absolute error at every horizon step: policy vs. hold-last-command."""
    h = arrays.actions.shape[1]
    steps = np.arange(1, h + 1)

    def mae(pred):
        err = np.abs(pred - arrays.target)
        return np.nanmean(err.reshape(err.shape[0], h, -1).transpose(1, 0, 2).reshape(h, -1),
                          axis=1)

    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(steps, mae(arrays.actions), "o-", color=POLICY_COLOUR, label="policy")
    ax.plot(steps, mae(hold_prediction(arrays)), "s--", color=HOLD_COLOUR,
            label="hold last command")
    ax.set_xlabel("horizon step")
    ax.set_ylabel("MAE (robot units, mean over dims)")
    ax.set_title("Error by horizon step")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)
    return PlotInfo(path, "Error by horizon step")


def plot_mae_per_dim(path: Path, metrics: dict) -> PlotInfo:
    names = metrics["action_names"]
    steps = [str(s) for s in metrics["horizon_steps"]]
    fig, axes = plt.subplots(1, len(steps), figsize=(3.2 * len(steps), 3.2), sharey=True,
                             squeeze=False)
    x = np.arange(len(names))
    for ax, s in zip(axes[0], steps, strict=True):
        pol = [np.nan if v is None else v for v in metrics["policy"][s]["mae"]]
        hold = [np.nan if v is None else v for v in metrics["hold_baseline"][s]["mae"]]
        ax.bar(x - 0.2, pol, 0.4, color=POLICY_COLOUR, label="policy")
        ax.bar(x + 0.2, hold, 0.4, color=HOLD_COLOUR, label="hold")
        ax.set_xticks(x, names, rotation=60, fontsize=7)
        ax.set_title(f"MAE at step {s}", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    _save(fig, path)
    return PlotInfo(path, "MAE per dimension")


def plot_logvar_gate(path: Path, arrays: StepArrays,
                     spans_s: Sequence[tuple[float, float]]) -> PlotInfo:
    """logvar and gate over time with the bag's contact intervals shaded."""
    t = arrays.time_s
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 4.2), sharex=True)
    n = _shade(a1, spans_s)
    _shade(a2, spans_s, label=False)
    a1.plot(t, arrays.logvar, color="#c0392b", lw=1.2, label="logvar")
    a1.set_ylabel("logvar")
    a1.legend(fontsize=8, loc="upper right")
    a2.plot(t, arrays.gate, color="#8e44ad", lw=1.2)
    a2.set_ylabel("gate")
    a2.set_ylim(-0.05, 1.05)
    a2.set_xlabel("time [s]")
    title = "Tactile uncertainty (logvar) and gate"
    if not spans_s:
        title += " (bag has no contact intervals)"
    a1.set_title(title)
    _save(fig, path)
    return PlotInfo(path, title, n)


def plot_vq_usage(path: Path, usage: dict) -> PlotInfo:
    stages = [s for s in usage["stages"] if s["count"] > 0]
    fig, axes = plt.subplots(1, max(1, len(stages)), figsize=(5 * max(1, len(stages)), 3),
                             squeeze=False)
    if not stages:
        ax = axes[0, 0]
        ax.text(0.5, 0.5, "no VQ codes (placeholder tactile encoder)", ha="center",
                va="center")
        ax.axis("off")
    for ax, s in zip(axes[0], stages, strict=False):
        codes = np.array([int(k) for k in s["histogram"]])
        counts = np.array(list(s["histogram"].values()))
        ax.bar(codes, counts, width=max(1.0, (codes.max() - codes.min() + 1) / 80))
        ax.set_xlabel("code index")
        ax.set_ylabel("count")
        ax.set_title(f"stage {s['stage']}: {s['used']} codes used, "
                     f"perplexity {s['perplexity']:.1f}", fontsize=9)
    _save(fig, path)
    return PlotInfo(path, "VQ code usage")


def plot_inference(path: Path, arrays: StepArrays) -> PlotInfo:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(arrays.inference_ms, bins=30, color=POLICY_COLOUR)
    ax.set_xlabel("inference time [ms]")
    ax.set_ylabel("chunks")
    ax.set_title("Inference time per chunk")
    _save(fig, path)
    return PlotInfo(path, "Inference time")


def render_summary_png(path: Path, arrays: StepArrays, metrics: dict,
                       spans_s: Sequence[tuple[float, float]], title: str) -> PlotInfo:
    """One screenshot-style PNG of the report's key panels (for the README)."""
    fig = plt.figure(figsize=(12, 7.5))
    gs = fig.add_gridspec(3, 2, height_ratios=[1.1, 1, 1])
    t = arrays.time_s
    ax = fig.add_subplot(gs[0, :])
    n = _shade(ax, spans_s)
    dim = 0
    ax.plot(t, arrays.target[:, 0, dim], color=TEACHER_COLOUR, lw=1.6, label="teacher")
    ax.plot(t, arrays.actions[:, 0, dim], color=POLICY_COLOUR, lw=1.0, label="policy step 1")
    ax.set_ylabel(metrics["action_names"][dim])
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Predicted vs. commanded", fontsize=10)
    ax = fig.add_subplot(gs[1, :], sharex=ax)
    _shade(ax, spans_s)
    ax.plot(t, arrays.logvar, color="#c0392b", label="logvar")
    ax2 = ax.twinx()
    ax2.plot(t, arrays.gate, color="#8e44ad", lw=0.9, label="gate")
    ax2.set_ylim(-0.05, 1.05)
    ax.set_ylabel("logvar")
    ax2.set_ylabel("gate")
    ax.set_xlabel("time [s]")
    ax.set_title("Tactile uncertainty and gate (shaded: contact)", fontsize=10)
    ax = fig.add_subplot(gs[2, 0])
    h = arrays.actions.shape[1]
    for pred, lab, col in ((arrays.actions, "policy", POLICY_COLOUR),
                           (hold_prediction(arrays), "hold last command", HOLD_COLOUR)):
        err = np.abs(pred - arrays.target).transpose(1, 0, 2).reshape(h, -1)
        ax.plot(np.arange(1, h + 1), np.nanmean(err, axis=1), "o-", color=col, label=lab,
                ms=3)
    ax.set_xlabel("horizon step")
    ax.set_ylabel("MAE")
    ax.legend(fontsize=8)
    ax.set_title("Error by horizon step", fontsize=10)
    ax = fig.add_subplot(gs[2, 1])
    ax.axis("off")
    lines = [title, ""]
    for s, c in metrics["policy_vs_hold"].items():
        verdict = "beats" if c["policy_beats_hold"] else "does NOT beat"
        lines.append(f"step {s}: policy {c['policy_mae']:.4f} vs hold {c['hold_mae']:.4f} "
                     f"-> {verdict}")
    inf = metrics["inference"]
    if inf.get("count"):
        lines.append(f"inference: mean {inf['mean_ms']:.1f} ms, p95 {inf['p95_ms']:.1f} ms")
    au = metrics["contact"].get("logvar_auroc_contact_within", {}).get("0.5")
    if au is not None:
        lines.append(f"logvar AUROC (contact within 0.5 s): {au:.2f}")
    ax.text(0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize=9)
    fig.suptitle("restac-eval report", fontsize=13)
    _save(fig, path)
    return PlotInfo(path, "summary", n)
