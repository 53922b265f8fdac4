"""Running rclpy nodes: one SingleThreadedExecutor per spin thread, clean shutdown.

ROS_ON_PIP.md: MultiThreadedExecutor stalls with pip rclpy, and exiting while
an executor thread still spins aborts the process, so shutdown order is:
executor.shutdown -> join thread -> lifecycle shutdown -> destroy nodes ->
rclpy.try_shutdown. SIGINT/SIGTERM only set an event (a second one, as
`ros2 launch` sends after the terminal's, changes nothing). A callback still
running after STOP_GRACE_S (a lifecycle configure loading a checkpoint) cannot
be interrupted: the process then exits at once (os._exit) instead of aborting
in rclpy's teardown.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node

from restac_ros.nodes import stop_signal

# Python hands the GIL to a waiting thread only every 5 ms by default; a node whose
# executor thread and inference worker share the GIL then waits up to 5 ms per
# hand-over. 0.5 ms keeps hand-overs short (set per process by the node mains).
GIL_SWITCH_INTERVAL_S = 0.0005
# How long a stop waits for running callbacks (e.g. a configure) before the process
# exits without them; `ros2 launch` escalates to SIGTERM after 5 s.
STOP_GRACE_S = 1.5


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

    def request_stop(self) -> None:
        """No new callbacks; the one running (if any) finishes on the spin thread."""
        self.executor.shutdown(timeout_sec=0)

    def join(self, timeout_s: float) -> bool:
        """True once the spin thread has ended."""
        if self._thread.is_alive():
            self._thread.join(timeout=max(0.0, timeout_s))
        return not self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> bool:
        self.request_stop()
        return self.join(timeout_s)


def stop_spinners(spinners: Sequence[SpinThread], grace_s: float = STOP_GRACE_S) -> list[str]:
    """Stop every executor; names of the nodes whose callback is still running after grace_s."""
    for s in spinners:
        s.request_stop()
    deadline = time.monotonic() + grace_s
    return [s.node.get_name() for s in spinners if not s.join(deadline - time.monotonic())]


def exit_abandoning(busy: Sequence[str], rc: int = 0) -> NoReturn:
    """Exit now although callbacks of `busy` still run (they cannot be interrupted)."""
    print(
        f"{', '.join(busy)}: stop requested while a callback was still running "
        f"(after {STOP_GRACE_S:.1f} s); exiting without it",
        flush=True,
    )
    sys.stderr.flush()
    os._exit(rc)


def lifecycle_state(node: LifecycleNode) -> str:
    """The state machine's label: unconfigured, configuring, inactive, active, finalized..."""
    return node._state_machine.current_state[1]


def finalize_lifecycle(node: LifecycleNode) -> None:
    """Shut a lifecycle node down from whatever primary state it is in (spin stopped).

    From active this is the lifecycle's own active -> shuttingdown -> finalized edge:
    no deactivation, so no `inactive` transition event a launch handler could take
    for a finished configure.
    """
    state = lifecycle_state(node)
    if state in ("unconfigured", "inactive", "active"):
        result = node.trigger_shutdown()
        node.get_logger().info(f"shut down from {state} ({result.name.lower()})")


def install_stop_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set `stop` instead of raising inside rclpy (kept until exit)."""

    def _handler(signum, frame) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    if stop_signal.REQUESTED.is_set():  # signalled while the process was importing
        stop.set()


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
        if busy := stop_spinners(spinners):
            exit_abandoning(busy)
        if on_stop is not None:
            on_stop()
        for n in nodes:
            if isinstance(n, LifecycleNode):
                finalize_lifecycle(n)
            n.destroy_node()
        rclpy.try_shutdown()
