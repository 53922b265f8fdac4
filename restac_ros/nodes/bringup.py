"""restac-bringup: the nodes of a launch file in ONE process with plain rclpy.

Reads the same YAML as launch/*.launch.py (via launch_description.node_specs),
creates every node with those parameters, spins each in its own
SingleThreadedExecutor thread, drives the lifecycle transitions
(configure -> activate; on exit shutdown), starts the bag player (replay) only
once every lifecycle node is active, and stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence

import rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter

from restac_ros.nodes import launch_description as ld
from restac_ros.nodes.bag_player import BagPlayerNode
from restac_ros.nodes.recorder import RecorderNode
from restac_ros.nodes.spin import (
    STOP_GRACE_S,
    SpinThread,
    exit_abandoning,
    finalize_lifecycle,
    install_stop_signals,
    stop_spinners,
    tune_process,
)
from restac_ros.paths import config_path


class BringupError(RuntimeError):
    pass


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="restac-bringup", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=None, help="params YAML (default: config/policy.yaml)")
    parser.add_argument(
        "--sim-params", default=None, metavar="YAML",
        help="--launch sim: sim params layered over --params (default: config/sim.yaml)",
    )
    parser.add_argument("--launch", default="policy", choices=sorted(ld.LAUNCHES))
    parser.add_argument("--monitor", action="store_true", help="also start tactile_monitor")
    parser.add_argument("--use-sim-time", action="store_true", help="use /clock (bag replay)")
    parser.add_argument("--checkpoint", default=None, help="override policy_node checkpoint_dir")
    parser.add_argument("--vqvae", default=None, help="override policy_node vqvae_checkpoint")
    parser.add_argument("--tokenizer", default=None, help="override policy_node tokenizer_path")
    parser.add_argument("--bag", default=None, help="override bag_player bag_path (replay)")
    parser.add_argument(
        "--exit-when-bag-done", action="store_true", help="replay: stop when the bag ends"
    )
    parser.add_argument(
        "--record", default=None, metavar="DIR",
        help="also record the pipeline's topics into this new MCAP bag (restac-record)",
    )
    return parser.parse_args(argv)


def specs_from_args(args: argparse.Namespace) -> list[ld.NodeSpec]:
    launch = "policy+monitor" if args.monitor and args.launch == "policy" else args.launch
    overrides = ld.launch_arguments_to_overrides(
        use_sim_time=True if args.use_sim_time else None,
        checkpoint_dir=args.checkpoint,
        vqvae_checkpoint=args.vqvae,
        tokenizer_path=args.tokenizer,
        bag_path=args.bag,
        record_dir=args.record,
    )
    params = args.params or str(config_path("policy.yaml"))
    overlays = None if args.sim_params is None else [args.sim_params]
    return ld.node_specs(params, launch, overrides, overlays)


def create_nodes(specs: Sequence[ld.NodeSpec], context=None) -> list[Node]:
    """One node per spec, parameters passed as rclpy overrides (typed from the YAML)."""
    nodes = []
    for spec in specs:
        overrides = [Parameter(k, value=v) for k, v in spec.parameters.items()]
        nodes.append(spec.kind.node_class()(parameter_overrides=overrides, context=context))
    return nodes


def activate(nodes: Sequence[Node]) -> None:
    for node in nodes:
        if isinstance(node, LifecycleNode):
            for name, trigger in (
                ("configure", node.trigger_configure),
                ("activate", node.trigger_activate),
            ):
                result = trigger()
                if result != TransitionCallbackReturn.SUCCESS:
                    raise BringupError(f"{node.get_name()}: {name} failed ({result})")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        specs = specs_from_args(args)
    except (FileNotFoundError, ValueError) as exc:  # a path or parameter that cannot work
        print(f"restac-bringup: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    tune_process()
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    install_stop_signals(stop)
    nodes: list[Node] = []
    spinners: list[SpinThread] = []
    players: list[threading.Thread] = []
    driver = LifecycleDriver(stop)
    try:
        try:
            nodes = create_nodes(specs)
        except ValueError as exc:  # a parameter value no node can work with
            raise BringupError(f"bad parameters: {exc}") from exc
        spinners = [SpinThread(n).start() for n in nodes]
        driver.start(nodes)
        running = False
        while not stop.wait(0.1):
            if driver.done.is_set() and not running:  # every lifecycle node active
                running = True
                # replay: the bag plays only now, so every message meets an active policy
                for node in nodes:
                    if isinstance(node, BagPlayerNode):
                        players.append(threading.Thread(target=node.play, daemon=True))
                        players[-1].start()
                print(f"restac-bringup: running {[n.get_name() for n in nodes]}", flush=True)
            if args.exit_when_bag_done and players and not any(t.is_alive() for t in players):
                # bag time stops with the bag: the last ticks' inference finishes, no new tick
                drain_after_bag(nodes, stop)
                break
            if failed := [s for s in spinners if s.error is not None]:
                raise BringupError(f"{failed[0].node.get_name()} stopped") from failed[0].error
        if driver.error is not None:
            raise driver.error
        return 0
    except BringupError as exc:
        print(f"restac-bringup: {exc}", file=sys.stderr)
        return 1
    finally:
        for node in nodes:
            if isinstance(node, BagPlayerNode):
                node.stop.set()
        for t in players:
            t.join(timeout=5.0)
        busy = stop_spinners(spinners) + driver.join(STOP_GRACE_S)
        if busy:
            exit_abandoning(busy)
        for n in nodes:
            if isinstance(n, LifecycleNode) and n.context.ok():
                finalize_lifecycle(n)
            if isinstance(n, RecorderNode):
                n.close()
            n.destroy_node()
        rclpy.try_shutdown()


def drain_after_bag(nodes: Sequence[Node], stop: threading.Event) -> None:
    """Wait, bounded, until policy_node took every message the players published, inferred
    every tick they completed and its subscribers acknowledged the outputs: exiting at a
    fixed delay would lose the last chunks whenever the policy runs behind."""
    from restac_ros.nodes.policy_node import PolicyNode  # the replay has one (JAX: lazily)

    players = [n for n in nodes if isinstance(n, BagPlayerNode)]
    policies = [n for n in nodes if isinstance(n, PolicyNode)]
    published: dict[str, int] = {}
    for player in players:
        for topic, count in player.published_by_topic.items():
            published[topic] = published.get(topic, 0) + count
    deadline = time.monotonic() + ld.BAG_DONE_DRAIN_TIMEOUT_S
    while not all(p.drained(published) for p in policies):
        if time.monotonic() >= deadline:
            print(f"restac-bringup: policy_node not drained {ld.BAG_DONE_DRAIN_TIMEOUT_S:.0f} s "
                  "after the bag ended; stopping anyway", file=sys.stderr)
            return
        if stop.wait(0.05):
            return
    for policy in policies:
        if policy.outputs is not None and not policy.outputs.wait_for_all_acked(
                max(0.0, deadline - time.monotonic())):
            print("restac-bringup: not every subscriber acknowledged the last chunks",
                  file=sys.stderr)


class LifecycleDriver:
    """configure + activate on a thread, so a Ctrl-C during a long configure is seen at
    once (the configure itself cannot be interrupted: see spin.STOP_GRACE_S)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self.done = threading.Event()
        self.error: BringupError | None = None
        self._thread: threading.Thread | None = None
        self._nodes: Sequence[Node] = ()

    def start(self, nodes: Sequence[Node]) -> None:
        self._nodes = nodes
        self._thread = threading.Thread(target=self._run, name="lifecycle-driver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            activate(self._nodes)
            self.done.set()
        except BringupError as exc:
            self.error = exc
            self._stop.set()

    def join(self, timeout_s: float) -> list[str]:
        """Names of the lifecycle nodes still in a transition after timeout_s."""
        if self._thread is None:
            return []
        self._thread.join(timeout=timeout_s)
        if not self._thread.is_alive():
            return []
        return [n.get_name() for n in self._nodes if isinstance(n, LifecycleNode)]


if __name__ == "__main__":
    sys.exit(main())
