"""Running rclpy nodes: one SingleThreadedExecutor per spin thread, clean shutdown.

ROS_ON_PIP.md: MultiThreadedExecutor stalls with pip rclpy, and exiting while
an executor thread still spins aborts the process, so shutdown order is:
executor.shutdown -> join thread -> destroy nodes -> rclpy.try_shutdown.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

# Python hands the GIL to a waiting thread only every 5 ms by default; a node whose
# executor thread and inference worker share the GIL then waits up to 5 ms per
# hand-over. 0.5 ms keeps hand-overs short (set per process by the node mains).
GIL_SWITCH_INTERVAL_S = 0.0005


def tune_process() -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


class SpinThread:
    """A node spinning in its own SingleThreadedExecutor on a daemon thread."""

    def __init__(self, node: Node, context=None) -> None:
        self.node = node
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._spin, name=f"spin-{node.get_name()}", daemon=True
        )

    def start(self) -> SpinThread:
        self._thread.start()
        return self

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass
        except BaseException as exc:  # reported by the owner after join
            self.error = exc
            raise

    def stop(self, timeout_s: float = 5.0) -> None:
        self.executor.shutdown(timeout_sec=timeout_s)
        self._thread.join(timeout=timeout_s)


def install_stop_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set `stop` instead of raising inside rclpy."""

    def _handler(signum, frame) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def run_nodes(
    make_nodes: Callable[[], Sequence[Node]],
    args: Sequence[str] | None = None,
    after_start: Callable[[Sequence[Node]], None] | None = None,
    done: Callable[[], bool] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> int:
    """Init rclpy, spin each node in its own thread until SIGINT/SIGTERM (or `done()`)."""
    stop = threading.Event()
    tune_process()
    rclpy.init(
        args=list(args) if args is not None else None,
        signal_handler_options=rclpy.signals.SignalHandlerOptions.NO,
    )
    install_stop_signals(stop)
    nodes: list[Node] = []
    spinners: list[SpinThread] = []
    try:
        nodes = list(make_nodes())
        spinners = [SpinThread(n).start() for n in nodes]
        if after_start is not None:
            after_start(nodes)
        while not stop.wait(0.1):
            if done is not None and done():
                break
            failed = [s for s in spinners if s.error is not None]
            if failed:
                raise RuntimeError(
                    f"node {failed[0].node.get_name()} stopped spinning"
                ) from failed[0].error
        return 0
    finally:
        if on_stop is not None:
            on_stop()
        for s in spinners:
            s.stop()
        for n in nodes:
            n.destroy_node()
        rclpy.try_shutdown()
