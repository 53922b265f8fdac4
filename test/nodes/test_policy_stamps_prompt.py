"""tick_on: stamps waits for the first prompt instead of refusing the ticks before it.

Live replay gets the prompt on its own latched topic, which may match after the sensor
topics; restac-eval knows the bag's prompt from the first tick. Ticks held until the
prompt arrives are then inferred (those within the ticker's lag window), so replay does
not lose its first ticks to discovery order.
"""

from __future__ import annotations

from test.nodes.harness import PolicyHarness


def test_ticks_before_the_first_prompt_wait_for_it(ros_context, tiny_checkpoint):
    h = PolicyHarness(ros_context, tiny_checkpoint, prompt=None, tick_on="stamps", rate_hz=5.0)
    try:
        assert h.configured
        assert h.spin_until(lambda: h.diagnostics_mention("awaiting_prompt"), 30.0), (
            h.status_text())
        # sensor data flows and ticks complete (two of them at least), but nothing is
        # assembled without a prompt
        ticker = h.node._stamps.ticker

        def two_ticks_complete() -> bool:
            through, first = ticker.complete_through_ns, ticker.next_tick_ns
            return through is not None and first is not None and through >= first + 0.2e9

        assert h.spin_until(two_ticks_complete, 30.0), h.status_text()
        assert h.chunks == [] and not h.diagnostics_mention("no prompt received")
        sent_ns = h.streams.get_clock().now().nanoseconds
        h.streams.publish_prompt("pick up the cube")
        assert h.spin_until(lambda: len(h.chunks) >= 2, 60.0), h.status_text()
        first = h.chunks[0].header.stamp
        first_ns = first.sec * 10**9 + first.nanosec
        # a tick from before the prompt was held, then inferred with it
        assert first_ns < sent_ns, (first_ns, sent_ns)
        assert h.spinner.error is None
    finally:
        h.close()


def test_a_clock_stall_delays_stamp_ticks_without_dropping_them(ros_context, tiny_checkpoint):
    """tick_on: stamps decides on stamps alone: a /clock stall is reported, the held
    messages stay (timer ticks drop theirs), and chunks resume with the clock."""
    s = 10**9
    h = PolicyHarness(ros_context, tiny_checkpoint, tick_on="stamps", rate_hz=5.0,
                      use_sim_time=True, clock_stall_s=1.0, streams={"use_sim_time": True})
    clock = h.start_sim_clock(1000 * s)
    try:
        assert h.spin_until(lambda: len(h.chunks) >= 2, 60.0), h.status_text()
        clock["paused"] = True
        assert h.spin_until(lambda: h.diagnostics_mention("ticks wait for the stamps"), 30.0), (
            h.status_text())
        assert not h.diagnostics_mention("buffered inputs dropped")
        assert h.node._stamps.ticker.next_tick_ns is not None  # the grid was not reset
        before = len(h.chunks)
        clock["paused"] = False
        assert h.spin_until(lambda: len(h.chunks) >= before + 2, 60.0), h.status_text()
        assert h.spinner.error is None
    finally:
        h.close()
