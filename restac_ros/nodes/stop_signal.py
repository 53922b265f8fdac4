"""SIGINT/SIGTERM caught from the first line of a node process (no heavy imports here).

A node's module imports JAX/flax (seconds); `ros2 launch` (and a terminal's Ctrl-C)
may signal during those imports, which would otherwise end in a KeyboardInterrupt
traceback and exit code -2. The console-script entry points (restac_ros.nodes.entry)
install this handler first; spin.install_stop_signals takes over and honours a
request that came in before it.
"""

from __future__ import annotations

import signal
import threading

REQUESTED = threading.Event()


def _handler(signum, frame) -> None:
    del signum, frame
    REQUESTED.set()


def install() -> None:
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
