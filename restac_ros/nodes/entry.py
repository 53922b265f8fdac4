"""Console-script entry points of the nodes (setup.py, lib/restac_ros/*).

Each installs the stop-signal handler before importing its node module (see
stop_signal), returns at once, cleanly, when a stop came during the imports, and
ignores further stop signals once the node has shut down.
"""

from __future__ import annotations

import importlib
import signal

from restac_ros.nodes import stop_signal


def _run(module: str) -> int:
    stop_signal.install()
    try:
        main = importlib.import_module(module).main
        if stop_signal.REQUESTED.is_set():
            return 0
        return main()
    finally:
        # Python's finalization resets Python-handled signals to SIG_DFL, so a second
        # SIGINT (ros2 launch sends one after the terminal's) landing while the
        # interpreter tears down would kill the process (exit -2). Ignored ones stay.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def policy_node() -> int:
    return _run("restac_ros.nodes.policy_node")


def chunk_executor() -> int:
    return _run("restac_ros.nodes.chunk_executor")


def tactile_monitor() -> int:
    return _run("restac_ros.nodes.tactile_monitor")


def bag_player() -> int:
    return _run("restac_ros.nodes.bag_player")


def frame_publisher() -> int:
    return _run("restac_ros.nodes.frame_publisher")


def recorder() -> int:
    return _run("restac_ros.nodes.recorder")


def bringup() -> int:
    return _run("restac_ros.nodes.bringup")
