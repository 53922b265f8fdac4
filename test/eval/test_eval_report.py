"""restac-eval on held-out sample episodes: report, metrics, plots, prediction MCAP, verdict."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

PLOTS = ("actions.png", "error_by_horizon.png", "mae_per_dim.png", "logvar_gate.png",
         "vq_usage.png", "inference_ms.png")


def _strict_json(path: Path) -> dict:
    def reject(c):
        raise ValueError(f"non-finite number {c} in {path}")

    return json.loads(path.read_text(), parse_constant=reject)


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def _bag_dirs(eval_out: Path, held_out_bags) -> list[Path]:
    return [eval_out / b.name for b in held_out_bags]


def test_report_html_is_self_contained_and_references_plots(eval_out, held_out_bags):
    for d in _bag_dirs(eval_out, held_out_bags):
        html = (d / "report.html").read_text()
        assert html.startswith("<!DOCTYPE html>")
        for name in PLOTS:
            assert (d / name).stat().st_size > 2000, name
            assert f'data-file="{name}"' in html, name
        images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
        assert len(images) == len(PLOTS)
        assert 'src="http' not in html and "src='http" not in html
        assert "hold-last-command" in html


def test_metrics_are_finite_and_complete(eval_out, held_out_bags):
    for d in _bag_dirs(eval_out, held_out_bags):
        m = _strict_json(d / "metrics.json")
        assert all(math.isfinite(x) for x in _numbers(m))
        assert m["steps"] > 40
        h = m["horizon"]
        assert m["horizon_steps"] == sorted({1, 5, 10, h})
        for s in m["horizon_steps"]:
            for key in ("policy", "hold_baseline"):
                e = m[key][str(s)]
                assert len(e["mae"]) == len(m["action_names"]) == 8
                assert all(v is not None and v >= 0 for v in e["mae"] + e["rmse"])
        assert m["chunk_boundary_jumps"]["count"] > 0
        assert m["inference"]["mean_ms"] > 0
        assert m["run"]["realtime_factor"] > 0
        c = m["contact"]
        assert c["available"] and c["intervals"] >= 1
        assert c["logvar_auroc_contact_within"]["0.5"] is not None
        rows = list(csv.DictReader((d / "steps.csv").open()))
        assert len(rows) == m["steps"]
        assert float(rows[-1]["time_s"]) > 5.0


def test_logvar_plot_shows_the_bags_contact_intervals(held_out_bags, tmp_path):
    """The plotting function draws one shaded span per ground-truth contact interval."""
    import matplotlib

    matplotlib.use("Agg")
    from restac_ros.eval import plots
    from restac_ros.eval.records import StepRecord, stack
    from restac_ros.sample_bag.inspect import read_contact_intervals

    intervals = read_contact_intervals(held_out_bags[0])
    assert intervals
    t0 = intervals[0][0] - 3 * 10**9
    recs = [StepRecord(t0 + i * 2 * 10**8, np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(2), 1.0,
                       float(i), 0.5, np.array([-1]), np.zeros(4), True) for i in range(60)]
    arrays = stack(recs)
    spans = plots.contact_intervals_s(arrays, intervals)
    info = plots.plot_logvar_gate(tmp_path / "lv.png", arrays, spans)
    assert info.contact_spans == len(intervals)
    assert spans[0][0] == pytest.approx(3.0)
    empty = plots.plot_logvar_gate(tmp_path / "lv0.png", arrays, [])
    assert empty.contact_spans == 0 and "no contact intervals" in empty.title


def test_prediction_mcap_reads_back_with_the_mcap_reader(eval_out, held_out_bags):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    d = _bag_dirs(eval_out, held_out_bags)[0]
    m = _strict_json(d / "metrics.json")
    files = list((d / "predictions").glob("*.mcap"))
    assert len(files) == 1
    seen: dict[str, list] = {}
    with files[0].open("rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        for schema, channel, _msg, decoded in reader.iter_decoded_messages():
            seen.setdefault(channel.topic, []).append((schema.name, decoded))
    assert set(seen) == {"/restac/action_chunk", "/restac/tactile/diagnostics",
                         "/restac/tactile/markers"}
    chunks = seen["/restac/action_chunk"]
    assert len(chunks) == m["steps"]
    name, first = chunks[0]
    assert name == "restac_ros/msg/ActionChunk"
    assert first.horizon == m["horizon"] and first.action_dim == 8
    assert len(first.actions) == first.horizon * first.action_dim
    assert list(first.names) == m["action_names"]
    assert [c.chunk_id for _, c in chunks] == list(range(len(chunks)))
    diag = seen["/restac/tactile/diagnostics"][0][1]
    assert diag.mode in ("vqvae", "placeholder")
    assert diag.sigma == pytest.approx(math.exp(diag.logvar / 2), rel=1e-5)
    markers = seen["/restac/tactile/markers"][0][1].markers
    assert markers and all(mk.header.frame_id == "tactile_link" for mk in markers)
    for mk in markers:
        assert all(0.0 <= v <= 1.0 for v in (mk.color.r, mk.color.g, mk.color.b, mk.color.a))
        assert mk.lifetime.sec > 0 or mk.lifetime.nanosec > 0


@pytest.mark.slow
def test_demo_policy_beats_hold_at_step_10_on_held_out_episodes(eval_out):
    """Done-criterion of issue 6 (step 10): pooled over unseen episodes, MAE vs hold."""
    pooled = _strict_json(eval_out / "metrics.json")["pooled"]
    c = pooled["policy_vs_hold"]["10"]
    assert c["policy_beats_hold"], f"step 10: policy {c['policy_mae']} vs hold {c['hold_mae']}"
    for bag in ("episode_101", "episode_102"):
        report = (eval_out / bag / "report.html").read_text()
        assert "Horizon step 10: the policy BEATS the hold-last-command baseline" in report


@pytest.mark.slow
def test_demo_policy_beats_hold_at_step_1_on_held_out_episodes(eval_out):
    """Done-criterion of issue 6 (step 1): pooled over unseen episodes, MAE vs hold."""
    c = _strict_json(eval_out / "metrics.json")["pooled"]["policy_vs_hold"]["1"]
    assert c["policy_beats_hold"], f"step 1: policy {c['policy_mae']} vs hold {c['hold_mae']}"


def test_sqlite3_bag(sqlite_bag, demo_checkpoint, tmp_path):
    from restac_ros.eval.cli import main

    assert main([str(sqlite_bag), "--out", str(tmp_path / "o"), "--checkpoint",
                 str(demo_checkpoint), "-q"]) == 0
    m = _strict_json(tmp_path / "o" / "metrics.json")
    assert m["steps"] >= 10
