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
        # sensor data flows, ticks are complete, but nothing is assembled without a prompt
        assert h.spin_until(lambda: sum(len(q) for q in h.node._held.values()) > 20, 30.0)
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
