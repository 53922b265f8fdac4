"""restac-bringup: the nodes of a launch file in ONE process with plain rclpy.

Reads the same YAML as launch/*.launch.py (via launch_description.node_specs),
creates every node with those parameters, spins each in its own
SingleThreadedExecutor thread, drives the lifecycle transitions
(configure -> activate; on exit deactivate -> shutdown) and stops cleanly on
SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

import rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter

from restac_ros.nodes import launch_description as ld
from restac_ros.nodes.bag_player import BagPlayerNode
from restac_ros.nodes.spin import SpinThread, install_stop_signals, tune_process
from restac_ros.paths import config_path


class BringupError(RuntimeError):
    pass


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="restac-bringup", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=None, help="params YAML (default: config/policy.yaml)")
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
    return parser.parse_args(argv)


def specs_from_args(args: argparse.Namespace) -> list[ld.NodeSpec]:
    launch = "policy+monitor" if args.monitor and args.launch == "policy" else args.launch
    overrides = ld.launch_arguments_to_overrides(
        use_sim_time=True if args.use_sim_time else None,
        checkpoint_dir=args.checkpoint,
        vqvae_checkpoint=args.vqvae,
        tokenizer_path=args.tokenizer,
        bag_path=args.bag,
    )
    params = args.params or str(config_path("policy.yaml"))
    return ld.node_specs(params, launch, overrides)


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


def deactivate(nodes: Sequence[Node]) -> None:
    for node in nodes:
        if isinstance(node, LifecycleNode):
            if node.lifecycle_state == "active":
                node.trigger_deactivate()
            node.trigger_shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    specs = specs_from_args(args)
    stop = threading.Event()
    tune_process()
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    install_stop_signals(stop)
    nodes: list[Node] = []
    spinners: list[SpinThread] = []
    players: list[threading.Thread] = []
    try:
        try:
            nodes = create_nodes(specs)
        except ValueError as exc:  # a parameter value no node can work with
            raise BringupError(f"bad parameters: {exc}") from exc
        spinners = [SpinThread(n).start() for n in nodes]
        activate(nodes)
        for node in nodes:
            if isinstance(node, BagPlayerNode):
                players.append(threading.Thread(target=node.play, name="bag-player", daemon=True))
                players[-1].start()
        print(f"restac-bringup: running {[n.get_name() for n in nodes]}", flush=True)
        while not stop.wait(0.1):
            if args.exit_when_bag_done and players and not any(t.is_alive() for t in players):
                break
            if failed := [s for s in spinners if s.error is not None]:
                raise BringupError(f"{failed[0].node.get_name()} stopped") from failed[0].error
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
        deactivate([n for n in nodes if n.context.ok()])
        for s in spinners:
            s.stop()
        for n in nodes:
            n.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
