"""Waiting, bounded, until another lifecycle node is active (its get_state service).

The replay's bag_player plays only once policy_node is active, whoever started the
two (ros2 launch, restac-bringup, two terminals), so no message of the bag goes to a
policy that is still loading. The service is asked, not the transition events: an
event published before our subscription matched is lost; the state is not.
"""

from __future__ import annotations

import threading
import time

from lifecycle_msgs.srv import GetState
from rclpy.node import Node

POLL_S = 0.25


class NotActiveError(RuntimeError):
    pass


def wait_until_active(node: Node, target: str, stop: threading.Event, timeout_s: float) -> bool:
    """True once `target` reports 'active'; False if `stop` was set first; NotActiveError
    after timeout_s. `node` must be spinning in another thread."""
    name = target if target.startswith("/") else f"/{target}"
    client = node.create_client(GetState, f"{name}/get_state")
    deadline = time.monotonic() + timeout_s
    last = "no get_state service"
    logged = False
    try:
        while not stop.is_set():
            if client.service_is_ready():
                done = threading.Event()
                future = client.call_async(GetState.Request())
                future.add_done_callback(lambda _f, d=done: d.set())
                if done.wait(max(0.0, min(2.0, deadline - time.monotonic()))):
                    result = future.result()
                    last = result.current_state.label if result is not None else last
                    if last == "active":
                        return True
                else:
                    future.cancel()
            if not logged:
                node.get_logger().info(f"waiting for {name} to be active ({last})")
                logged = True
            if time.monotonic() >= deadline:
                raise NotActiveError(f"{name} not active after {timeout_s:.0f} s (last: {last})")
            stop.wait(POLL_S)
        return False
    finally:
        node.destroy_client(client)
