"""One self-contained HTML report: summary, verdict vs. the hold baseline, tables, inlined PNGs."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from restac_ros.eval.plots import PlotInfo


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return html.escape(str(v))


def _img(plot: PlotInfo) -> str:
    data = base64.b64encode(Path(plot.path).read_bytes()).decode("ascii")
    name = html.escape(Path(plot.path).name)
    return (f'<figure><img alt="{name}" data-file="{name}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(plot.title)} ({name})</figcaption></figure>")


def _error_table(metrics: dict) -> str:
    names = metrics["action_names"]
    rows = ["<tr><th>step</th><th>model</th><th>mean MAE</th><th>mean RMSE</th>"
            + "".join(f"<th>MAE {html.escape(n)}</th>" for n in names) + "</tr>"]
    for s in metrics["horizon_steps"]:
        for label, key in (("policy", "policy"), ("hold last command", "hold_baseline")):
            m = metrics[key][str(s)]
            rows.append(f"<tr><td>{s}</td><td>{label}</td><td>{_fmt(m['mae_mean'])}</td>"
                        f"<td>{_fmt(m['rmse_mean'])}</td>"
                        + "".join(f"<td>{_fmt(v)}</td>" for v in m["mae"]) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def verdict_lines(metrics: dict) -> list[str]:
    out = []
    for s, c in metrics["policy_vs_hold"].items():
        word = "BEATS" if c["policy_beats_hold"] else "does NOT beat"
        out.append(f"Horizon step {s}: the policy {word} the hold-last-command baseline "
                   f"(MAE {_fmt(c['policy_mae'])} vs {_fmt(c['hold_mae'])}).")
    return out


def _contact_section(contact: dict) -> str:
    if not contact.get("available"):
        return "<p>The bag has no contact intervals (restac.contact_intervals metadata).</p>"
    rows = ["<tr><th>window k [s]</th><th>logvar AUROC: contact within k</th>"
            "<th>logvar AUROC: onset within k (pre-contact steps)</th>"
            "<th>gate AUROC: contact within k</th></tr>"]
    for k in contact["windows_s"]:
        key = str(k)
        rows.append(f"<tr><td>{k}</td><td>{_fmt(contact['logvar_auroc_contact_within'][key])}</td>"
                    f"<td>{_fmt(contact['logvar_auroc_onset_precontact'][key])}</td>"
                    f"<td>{_fmt(contact['gate_auroc_contact_within'][key])}</td></tr>")
    leads = ", ".join(_fmt(v, 3) for v in contact["lead_times_s"])
    return ("<table>" + "".join(rows) + "</table>"
            f"<p>{contact['intervals']} contact intervals; {contact['onsets_anticipated']} onsets "
            f"anticipated (logvar above {_fmt(contact['lead_threshold_logvar'])}, the 95th "
            "percentile away from contact, continuously until the onset); median lead time "
            f"{_fmt(contact['median_lead_time_s'], 3)} s. Lead times per onset [s]: {leads}.</p>")


def write_report(path: Path, title: str, metrics: dict, plots: Sequence[PlotInfo],
                 inputs: dict, notes: Sequence[str] = ()) -> Path:
    """Write report.html; every image is embedded as a base64 data URI (no external files)."""
    inf = metrics["inference"]
    jumps = metrics["chunk_boundary_jumps"]
    vq = metrics["vq_code_usage"]
    vq_txt = ("; ".join(f"stage {s['stage']}: {s['used']} codes used, perplexity "
                        f"{_fmt(s['perplexity'])}" for s in vq["stages"] if s["count"])
              or "no VQ codes (placeholder tactile encoder)")
    input_rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                         for k, v in inputs.items())
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Verdict</h2><ul>" + "".join(f"<li>{html.escape(v)}</li>"
                                         for v in verdict_lines(metrics)) + "</ul>",
        "".join(f"<p class=note>{html.escape(n)}</p>" for n in notes),
        f"<table>{input_rows}</table>",
        f"<p>{metrics['steps']} policy calls over {_fmt(metrics['duration_s'], 4)} s of bag time; "
        f"horizon {metrics['horizon']}, dt {_fmt(metrics['dt_s'])} s.</p>",
        "<h2>Action error vs. teacher</h2>", _error_table(metrics),
        f"<p>Chunk-boundary jump (|next chunk's first action - previous chunk at that time|): "
        f"mean {_fmt(jumps['mean_all'])} over {jumps['count']} boundaries.</p>",
        f"<p>Inference: mean {_fmt(inf.get('mean_ms'))} ms, p50 {_fmt(inf.get('p50_ms'))} ms, "
        f"p95 {_fmt(inf.get('p95_ms'))} ms, max {_fmt(inf.get('max_ms'))} ms.</p>",
        f"<h2>Tactile branch</h2><p>VQ: {html.escape(vq_txt)}. logvar mean "
        f"{_fmt(metrics['logvar']['mean'])}, gate mean {_fmt(metrics['gate']['mean'])}.</p>",
        "<h3>Does logvar anticipate contact?</h3>", _contact_section(metrics["contact"]),
        "<h2>Plots</h2>", "".join(_img(p) for p in plots),
    ]
    return _write(path, title, body)


_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
          "table{border-collapse:collapse;margin:0.5em 0;font-size:0.85em}"
          "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
          "img{max-width:100%}.note{color:#a33}")


def _write(path: Path, title: str, body: Sequence[str]) -> Path:
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
           f"</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>")
    path = Path(path)
    path.write_text(doc, encoding="utf-8")
    return path


def write_notice(path: Path, title: str, notes: Sequence[str]) -> Path:
    """report.html of a run with nothing to evaluate: the title and why."""
    return _write(path, title, [f"<h1>{html.escape(title)}</h1>",
                                "<h2>No evaluation</h2>",
                                "".join(f"<p class=note>{html.escape(n)}</p>" for n in notes)])
