"""Lifecycle start and Ctrl-C with real processes, as `ros2 launch` runs them.

policy_node runs as the installed executable (lib/restac_ros/policy_node, what
launch_ros starts): autostart true as the launch files set it (it configures and
activates itself, exactly once), or autostart false driven through its change_state
service as `ros2 lifecycle set` does. The test watches /policy_node/transition_event
and sends SIGINT once, or twice as a terminal + ros2 launch do, in each lifecycle
state. Every wait is on a state or an event, bounded; exit times are measured and
only loosely bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import rclpy
import yaml
from lifecycle_msgs.msg import Transition, TransitionEvent
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor

from restac_ros.nodes import launch_description as ld
from restac_ros.paths import config_path
from test.ros_helpers import require_loopback, spin_until, start_python, stop_process

LIBEXEC = Path(sys.prefix) / "lib" / "restac_ros"

# A lifecycle node whose configure never returns (a checkpoint load hung on a dead
# mount): run through the same spin.run_nodes as every node main.
HUNG_CONFIGURE = r"""
import sys, threading
from rclpy.lifecycle import LifecycleNode
from restac_ros.nodes.spin import run_nodes

class Hung(LifecycleNode):
    def __init__(self):
        super().__init__(sys.argv[1])
    def on_configure(self, state):
        open(sys.argv[2], "w").close()  # the test waits for this, not for an event
        threading.Event().wait()

sys.exit(run_nodes(lambda: [Hung()], args=sys.argv))
"""

ERROR_MARKERS = ("Traceback", "ERROR", "terminate called", "Failed", "exception", "Error")
# Only bounds the wait (a node that never exits fails at any bound): idle ~1.5-2.5 s,
# several times that on a loaded 2-core CI machine.
EXIT_BOUND_S = 60.0


def unique_node_name() -> str:
    """A node name no other process in the test domain uses: a node left over from an
    earlier test (or still exiting) must not answer this test's lifecycle requests."""
    return f"policy_node_{uuid.uuid4().hex[:8]}"


def start_executable(name: str, *args: str, node_name: str | None = None) -> subprocess.Popen:
    require_loopback()
    remap = ["--ros-args", "-r", f"__node:={node_name}"] if node_name else []
    return subprocess.Popen(
        [str(LIBEXEC / name), *remap, *args], env=dict(os.environ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture()
def params_file(tmp_path, tiny_checkpoint):
    def write(autostart: bool) -> Path:
        data = yaml.safe_load(config_path("policy.yaml").read_text())
        data["policy_node"]["ros__parameters"].update(
            checkpoint_dir=str(tiny_checkpoint), autostart=autostart
        )
        path = tmp_path / f"params_{autostart}.yaml"
        # "/**": the node runs under a unique name (unique_node_name)
        path.write_text(yaml.safe_dump({"/**": data["policy_node"]}))
        return path

    return write


class LifecycleWatch:
    """Transition events of /policy_node and its change_state service (ros2 lifecycle)."""

    def __init__(self, context, node_name: str) -> None:
        self.node = rclpy.create_node("lifecycle_watch", context=context)
        self.events: list[tuple[str, str]] = []
        self.subscription = self.node.create_subscription(
            TransitionEvent, f"/{node_name}/transition_event",
            lambda m: self.events.append((m.start_state.label, m.goal_state.label)), 10,
        )
        self.client = self.node.create_client(ChangeState, f"/{node_name}/change_state")
        self.state_client = self.node.create_client(GetState, f"/{node_name}/get_state")
        self._asked = None  # (future, time asked) of a pending get_state
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def ready(self) -> bool:
        """The service answers and the transition events reach us (volatile: an event
        published before our subscription matched would be lost)."""
        return self.client.service_is_ready() and self.subscription.get_publisher_count() > 0

    def state_is(self, label: str) -> bool:
        """Polls get_state (one request at a time, re-asked after 2 s without a reply): the
        state is there for whoever asks, a transition event only for matched readers."""
        if self._asked is None and self.state_client.service_is_ready():
            self._asked = (self.state_client.call_async(GetState.Request()), time.monotonic())
        if self._asked is None:
            return False
        future, asked_at = self._asked
        if future.done():
            self._asked = None
            result = future.result()
            return result is not None and result.current_state.label == label
        if time.monotonic() - asked_at > 2.0:
            future.cancel()
            self._asked = None
        return False

    def change(self, transition_id: int):
        request = ChangeState.Request()
        request.transition.id = transition_id
        return self.client.call_async(request)

    def wait_for(self, condition, timeout_s: float = 150.0) -> bool:
        return spin_until(self.executor, condition, timeout_s)

    def configure_until_seen(self, goal: tuple[str, str]) -> None:
        """Configure and see `goal` among the transition events. Discovery is per side:
        our reader may see the node's writer before that writer sees our reader, so the
        first event can be lost. A later one arriving proves the writer matched us; then
        clean up and configure again (bounded)."""
        done = ld.START_SEQUENCE[1]
        for _ in range(3):
            self.change(Transition.TRANSITION_CONFIGURE)
            assert self.wait_for(lambda: goal in self.events or done in self.events), self.events
            if goal in self.events:
                return
            self.events.clear()
            self.change(Transition.TRANSITION_CLEANUP)
            assert self.wait_for(lambda: ("cleaningup", "unconfigured") in self.events), (
                self.events)
            self.events.clear()
        raise AssertionError(f"{goal} never seen in 3 configures")

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()


def interrupt(proc, times: int) -> tuple[float, str]:
    t0 = time.monotonic()
    for _ in range(times):
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        out, err = stop_process(proc)
        raise AssertionError(f"no exit within {EXIT_BOUND_S} s of SIGINT\n{err[-3000:]}") from None
    return time.monotonic() - t0, out + err


def assert_clean(proc, elapsed: float, output: str) -> None:
    bad = [line for line in output.splitlines() if any(m in line for m in ERROR_MARKERS)]
    assert proc.returncode == 0, f"rc {proc.returncode}\n{output[-3000:]}"
    assert not bad, "\n".join(bad)
    assert elapsed < EXIT_BOUND_S
    print(f"exit {elapsed:.2f} s after SIGINT")


@pytest.mark.parametrize(
    "state,sigints",
    [("unconfigured", 2), ("configuring", 2), ("inactive", 1), ("active", 1), ("active", 2)],
)
def test_sigint_in_each_lifecycle_state_exits_cleanly(ros_context, params_file, state, sigints):
    autostart = state == "active"  # as the launch files start it
    name = unique_node_name()
    watch = LifecycleWatch(ros_context, name)
    proc = start_executable("policy_node", "--params-file", str(params_file(autostart)),
                            node_name=name)
    try:
        if state == "unconfigured":
            assert watch.wait_for(watch.ready), "no change_state service / transition_event"
        elif state in ("configuring", "inactive"):  # `ros2 lifecycle set ... configure`
            assert watch.wait_for(watch.ready), "no change_state service / transition_event"
            watch.configure_until_seen(ld.START_SEQUENCE[0 if state == "configuring" else 1])
        else:
            assert watch.wait_for(lambda: ld.ACTIVATED in watch.events
                                  or watch.state_is("active")), watch.events
        seen_at_sigint = list(watch.events)
        elapsed, output = interrupt(proc, sigints)
        watch.wait_for(lambda: ("shuttingdown", "finalized") in watch.events, 1.0)
    finally:
        if proc.poll() is None:
            stop_process(proc)
        events = list(watch.events)
        watch.close()
    assert_clean(proc, elapsed, output)
    if state == "active":  # configured, then activated, exactly once
        # (events published before the node's writer matched our reader are not seen, and
        # get_state may answer 'active' before the last event arrives: what was seen is a
        # contiguous part of the one start sequence, each transition once)
        seen, seq = tuple(seen_at_sigint), ld.START_SEQUENCE
        assert any(seen == seq[i:i + len(seen)] for i in range(len(seq) - len(seen) + 1)), seen
    after = events[len(seen_at_sigint):]
    if state == "configuring":
        # the configure finished within the grace period and the node shut down, or it
        # was abandoned (the process exits without it)
        allowed = {ld.START_SEQUENCE[1], ("inactive", "shuttingdown"),
                   ("shuttingdown", "finalized")}
        assert set(after) <= allowed, after
        return
    # Ctrl-C never passes through `inactive` (no transition event a launch handler on
    # goal_state 'inactive' could take for a finished configure)
    assert not any(goal == "inactive" for _, goal in after), after
    # (the last transition events may not reach us: the process exits right after them)
    assert f"shut down from {state} (success)" in output, output[-3000:]


def test_sigint_while_a_configure_hangs_exits_without_waiting_for_it(ros_context, tmp_path):
    name = unique_node_name()
    watch = LifecycleWatch(ros_context, name)
    started = tmp_path / "configure_started"
    proc = start_python(HUNG_CONFIGURE, name, str(started))
    try:
        assert watch.wait_for(watch.ready), "no change_state service / transition_event"
        watch.change(Transition.TRANSITION_CONFIGURE)
        assert watch.wait_for(started.exists), "on_configure never ran"
        elapsed, output = interrupt(proc, 2)
    finally:
        if proc.poll() is None:
            stop_process(proc)
        watch.close()
    assert_clean(proc, elapsed, output)
    assert "exiting without it" in output


def test_plain_nodes_exit_cleanly_on_two_sigints(ros_context):
    node = rclpy.create_node("probe", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    proc = start_executable("chunk_executor")
    try:
        up = spin_until(
            executor, lambda: "chunk_executor" in node.get_node_names(), 120.0
        )
        assert up, "chunk_executor did not come up"
        elapsed, output = interrupt(proc, 2)
    finally:
        if proc.poll() is None:
            stop_process(proc)
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
    assert_clean(proc, elapsed, output)


def test_environment_is_loopback():
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
