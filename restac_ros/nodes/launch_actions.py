"""launch_ros actions for launch/*.launch.py, built from launch_description.node_specs.

Imported only by the launch files (needs `launch` and `launch_ros`, which are
not on PyPI); restac-bringup uses launch_description directly, so both start
the same nodes with the same parameters and the same lifecycle sequence
(launch_description.AUTOSTART_UNDER_LAUNCH, LAUNCH_DEFAULTS).
"""

from __future__ import annotations

import shutil

from launch.actions import (
    DeclareLaunchArgument,
    LogInfo,
    OpaqueFunction,
    Shutdown,
    TimerAction,
)
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from restac_ros.nodes import launch_description as ld
from restac_ros.paths import config_path

MODEL_ARGUMENTS = ("checkpoint_dir", "vqvae_checkpoint", "tokenizer_path")


def common_arguments(use_sim_time_default: str = "false") -> list[DeclareLaunchArgument]:
    return [
        DeclareLaunchArgument(
            "params_file",
            default_value=str(config_path("policy.yaml")),
            description="Node parameters YAML (same file restac-bringup --params reads)",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value=use_sim_time_default,
            description="Use /clock (true when replaying a bag, e.g. next to bag_player)",
        ),
        DeclareLaunchArgument(
            "checkpoint_dir",
            default_value="",
            description="Policy checkpoint ('' = YAML's; relative: see README 'Paths')",
        ),
        DeclareLaunchArgument(
            "vqvae_checkpoint", default_value="", description="VQ-VAE .ckpt ('' = YAML's)"
        ),
        DeclareLaunchArgument(
            "tokenizer_path", default_value="", description="sentencepiece model ('' = YAML's)"
        ),
    ]


def _is_true(context, name: str, default: str = "false") -> bool:
    return LaunchConfiguration(name, default=default).perform(context).lower() in ("true", "1")


def resolved_specs(context, launch: str) -> list[ld.NodeSpec]:
    """The node specs for `launch` with the launch arguments applied (as bringup does)."""
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    overrides = ld.launch_arguments_to_overrides(
        use_sim_time=_is_true(context, "use_sim_time"),
        checkpoint_dir=arg("checkpoint_dir"),
        vqvae_checkpoint=arg("vqvae_checkpoint"),
        tokenizer_path=arg("tokenizer_path"),
        bag_path=LaunchConfiguration("bag_path", default="").perform(context),
        record_dir=LaunchConfiguration("record_dir", default="").perform(context),
    )
    sim_params = LaunchConfiguration("sim_params_file", default="").perform(context)
    return ld.node_specs(arg("params_file"), launch, overrides,
                         [sim_params] if sim_params else None)


def node_actions(
    specs: list[ld.NodeSpec], launch: str = "policy", exit_when_bag_done: bool = False
) -> list:
    """Node / LifecycleNode actions.

    Lifecycle nodes configure and activate themselves (autostart, exactly once, on
    their own thread); launch watches their transition events (LifecycleNode) but
    sends no ChangeState: one still waiting for the node's change_state service when
    Ctrl-C comes (the node is still importing JAX) ends launch with "cannot use
    Destroyable" (launch_ros), and a handler on goal_state 'inactive' re-activates a
    node that deactivates. A lifecycle node that exits by itself ends the launch; so
    does bag_player when exit_when_bag_done.
    """
    actions: list = []
    for spec in specs:
        kwargs = dict(
            package=ld.PACKAGE,
            executable=spec.executable,
            name=spec.name,
            namespace="",
            output="screen",
            parameters=[spec.parameters],
        )
        if spec.kind.lifecycle:
            kwargs["parameters"] = [{**spec.parameters, "autostart": ld.AUTOSTART_UNDER_LAUNCH}]
            actions.append(
                LifecycleNode(on_exit=_shutdown_unless_shutting_down(spec.name), **kwargs)
            )
        elif spec.name == "bag_player" and exit_when_bag_done:
            done = _shutdown_unless_shutting_down("bag_player (bag done)")
            # the last ticks' chunks (and their recording) first
            actions.append(
                Node(on_exit=[TimerAction(period=ld.BAG_DONE_DRAIN_S, actions=done)], **kwargs)
            )
        else:
            actions.append(Node(**kwargs))
    return actions


def _shutdown_unless_shutting_down(name: str) -> list:
    """on_exit: end the launch when `name` exits by itself; nothing when the launch is
    already shutting down (a second Shutdown fails in launch_ros' ROS adapter)."""

    def shutdown(context) -> list:
        return [] if context.is_shutdown else [Shutdown(reason=f"{name} exited")]

    return [OpaqueFunction(function=shutdown)]


def nodes_of(launch: str) -> OpaqueFunction:
    def build(context) -> list:
        exit_when_done = _is_true(context, "exit_when_bag_done")
        return node_actions(resolved_specs(context, launch), launch, exit_when_done)

    return OpaqueFunction(function=build)


def rviz_actions(context) -> list:
    """rviz2 with the config for the YAML's action space (config/restac.rviz or
    restac_ee.rviz) when rviz2 is installed; otherwise a clear message."""
    from restac_ros.rviz_config import config_name

    params = ld.read_params_file(LaunchConfiguration("params_file").perform(context))
    config = config_path(config_name(params.get("policy_node", {}).get("action_space", "")))
    if shutil.which("rviz2") is None:
        return [
            LogInfo(
                msg=(
                    "rviz2 is not installed (not on PATH): starting WITHOUT RViz. The "
                    f"topics are up; open them with `rviz2 -d {config}` where RViz is "
                    "installed (same ROS_DOMAIN_ID), or install rviz2 for ROS 2 Kilted."
                )
            )
        ]
    return [
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", str(config)],
            output="screen",
        )
    ]
