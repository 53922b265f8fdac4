"""A standalone lifecycle node configures and activates itself (its `autostart` parameter).

Launch files and restac-bringup drive the transitions instead. The transitions run on a
thread, so that a Ctrl-C during a long configure is seen at once; run_nodes then shuts
the lifecycle down.
"""

from __future__ import annotations

import threading

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from restac_ros.nodes.spin import STOP_GRACE_S, exit_abandoning


class LifecycleAutostart:
    """`start` and `stop` are run_nodes' after_start and on_stop for one node."""

    def __init__(self, node_name: str) -> None:
        self._node_name = node_name
        self._thread: threading.Thread | None = None

    def start(self, node: LifecycleNode, enabled: bool) -> None:
        if not enabled:
            return

        def configure_and_activate() -> None:
            if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                node.trigger_activate()

        self._thread = threading.Thread(target=configure_and_activate, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Wait STOP_GRACE_S for the transitions; a configure still running is abandoned."""
        if self._thread is not None:
            self._thread.join(timeout=STOP_GRACE_S)
            if self._thread.is_alive():
                exit_abandoning([self._node_name])
