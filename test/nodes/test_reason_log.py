"""ReasonLog: counts keep the history, the WARN level reflects only recent rejections."""

from __future__ import annotations

from restac_ros.nodes import diagnostics


def test_a_rejection_is_recent_for_the_window_then_only_counted(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(diagnostics.time, "monotonic", lambda: now[0])
    log = diagnostics.ReasonLog()
    log.add("chunk_already_past", "chunk 1823 ended 0.343s ago")
    assert log.recent(diagnostics.REASON_WARN_WINDOW_S) == ["chunk_already_past"]
    now[0] += diagnostics.REASON_WARN_WINDOW_S + 1.0
    assert log.recent(diagnostics.REASON_WARN_WINDOW_S) == []
    assert log.snapshot() == {"chunk_already_past": (1, "chunk 1823 ended 0.343s ago")}
    log.add("chunk_already_past", "again")
    assert log.recent(diagnostics.REASON_WARN_WINDOW_S) == ["chunk_already_past"]
    assert log.snapshot()["chunk_already_past"][0] == 2
