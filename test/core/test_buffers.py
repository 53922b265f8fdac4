"""Stream buffers: ordering by stamp, unstamped policy, freshness, counters."""

from __future__ import annotations

import logging
import threading

import pytest

from restac_ros.core.buffers import (
    RejectReason,
    StreamBuffers,
    StreamSpec,
    UnstampedPolicy,
)

S = 1_000_000_000


def _buffers(policy: str = "stamp_on_receipt") -> StreamBuffers:
    return StreamBuffers(
        [
            StreamSpec("cam", 0.1),
            StreamSpec("joints", 0.05, history=2),
            StreamSpec("tac", 0.1, False),
        ],
        policy,
    )


def test_latest_and_history_keep_consecutive_states() -> None:
    b = _buffers()
    for i in range(1, 5):
        assert b.push("joints", i * S, f"q{i}", i * S + 10) is None
    assert b.latest("joints").value == "q4"
    assert [e.value for e in b.history("joints")] == ["q3", "q4"]
    assert b.history("joints")[-1].receipt_ns == 4 * S + 10
    assert b.latest("cam") is None


def test_out_of_order_and_duplicate_stamps_are_rejected_and_counted() -> None:
    b = _buffers()
    b.push("cam", 10 * S, "a", 10 * S)
    assert b.push("cam", 9 * S, "old", 10 * S) is RejectReason.OUT_OF_ORDER
    assert b.push("cam", 10 * S, "dup", 10 * S) is RejectReason.DUPLICATE_STAMP
    assert b.latest("cam").value == "a"
    c = b.counters()["cam"]
    assert (c.received, c.accepted, c.rejected_total) == (3, 1, 2)
    assert c.rejected == {"out_of_order": 1, "duplicate_stamp": 1}


def test_unstamped_stamp_on_receipt_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    b = _buffers("stamp_on_receipt")
    with caplog.at_level(logging.WARNING):
        assert b.push("cam", 0, "a", 5 * S) is None
        assert b.push("cam", 0, "b", 6 * S) is None
    entry = b.latest("cam")
    assert entry.stamp_ns == 6 * S and entry.stamped_on_receipt
    assert b.counters()["cam"].stamped_on_receipt == 2
    assert sum("unstamped" in r.message for r in caplog.records) == 1


def test_unstamped_reject_policy() -> None:
    b = _buffers(UnstampedPolicy.REJECT)
    assert b.push("cam", 0, "a", 5 * S) is RejectReason.UNSTAMPED
    assert b.latest("cam") is None
    assert b.counters()["cam"].rejected == {"unstamped": 1}


def test_stamp_far_in_future_is_rejected() -> None:
    b = StreamBuffers([StreamSpec("cam", 0.1)], future_tolerance_s=0.5)
    assert b.push("cam", 2 * S, "x", 1 * S) is RejectReason.FROM_FUTURE
    assert b.push("cam", S + S // 4, "y", 1 * S) is None


def test_freshness_relative_to_now() -> None:
    b = _buffers()
    report = b.freshness(10 * S)
    assert not report.ok and set(report.missing_required) == {"cam", "joints"}
    b.push("cam", 10 * S, "img", 10 * S)
    b.push("joints", 10 * S, "q", 10 * S)
    assert b.freshness(10 * S + S // 20).ok  # 50 ms: joints exactly at their bound
    late = b.freshness(10 * S + S // 10)  # 100 ms: joints stale, camera at bound
    assert not late.ok
    assert [s.name for s in late.stale_required] == ["joints"]
    assert late.status("joints").age_s == pytest.approx(0.1)
    assert late.status("tac").missing and not late.status("tac").required
    assert "joints: age 0.100s/0.050s STALE" in late.describe()


def test_optional_stream_does_not_block() -> None:
    b = _buffers()
    b.push("cam", S, "img", S)
    b.push("joints", S, "q", S)
    b.push("tac", S // 2, "old", S)
    report = b.freshness(S)
    assert report.ok and not report.status("tac").fresh


def test_unknown_stream_and_bad_specs() -> None:
    b = _buffers()
    with pytest.raises(KeyError, match="unknown stream 'nope'"):
        b.push("nope", S, 1, S)
    with pytest.raises(ValueError, match="max_age_s must be > 0"):
        StreamSpec("x", 0)
    with pytest.raises(ValueError, match="duplicate stream"):
        StreamBuffers([StreamSpec("x", 1), StreamSpec("x", 1)])
    with pytest.raises(ValueError):
        StreamBuffers([StreamSpec("x", 1)], "sometimes")


def test_concurrent_pushes_are_all_counted() -> None:
    b = StreamBuffers([StreamSpec(f"s{i}", 1.0) for i in range(4)])

    def pump(name: str) -> None:
        for k in range(1, 2001):
            b.push(name, k, k, k)

    threads = [threading.Thread(target=pump, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(c.accepted == 2000 for c in b.counters().values())


def test_clear_keeps_counters() -> None:
    b = _buffers()
    b.push("cam", S, "img", S)
    b.clear()
    assert b.latest("cam") is None and b.counters()["cam"].accepted == 1


def test_time_bounded_history_and_at_or_before() -> None:
    """history_s keeps exactly what looking back history_s from the newest entry needs."""
    ms = S // 1000
    b = StreamBuffers([StreamSpec("j", 0.1, history=100, history_s=0.05)])
    for k in range(0, 101):  # 100 Hz for 1 s
        b.push("j", S + k * 10 * ms, k, S + k * 10 * ms)
    hist = b.history("j")
    # newest at 2.0 s; the newest entry at or before 1.95 s is kept, older ones dropped
    assert [e.value for e in hist] == [95, 96, 97, 98, 99, 100]
    assert b.at_or_before("j", 2 * S - 50 * ms).value == 95
    assert b.at_or_before("j", 2 * S - 41 * ms).value == 95  # nearest not after
    assert b.at_or_before("j", 2 * S).value == 100
    assert b.at_or_before("j", 2 * S - 51 * ms) is None  # older than what is kept
    assert b.at_or_before("j", 10 * S).value == 100
    # the count cap still applies
    capped = StreamBuffers([StreamSpec("j", 0.1, history=3, history_s=1.0)])
    for k in range(10):
        capped.push("j", S + k * ms, k, S + k * ms)
    assert [e.value for e in capped.history("j")] == [7, 8, 9]
    with pytest.raises(ValueError, match="history_s must be >= 0"):
        StreamSpec("x", 1.0, history_s=-1.0)
