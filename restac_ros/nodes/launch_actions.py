"""launch_ros actions for launch/*.launch.py, built from launch_description.node_specs.

Imported only by the launch files (needs `launch` and `launch_ros`, which are
not on PyPI); restac-bringup uses launch_description directly, so both start
the same nodes with the same parameters.
"""

from __future__ import annotations

import shutil

from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

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
            description="Use /clock (true when replaying a bag)",
        ),
        DeclareLaunchArgument(
            "checkpoint_dir", default_value="", description="Policy checkpoint ('' = YAML's)"
        ),
        DeclareLaunchArgument(
            "vqvae_checkpoint", default_value="", description="VQ-VAE .ckpt ('' = YAML's)"
        ),
        DeclareLaunchArgument(
            "tokenizer_path", default_value="", description="sentencepiece model ('' = YAML's)"
        ),
    ]


def resolved_specs(context, launch: str) -> list[ld.NodeSpec]:
    """The node specs for `launch` with the launch arguments applied (as bringup does)."""
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    bag = LaunchConfiguration("bag_path", default="").perform(context)
    overrides = ld.launch_arguments_to_overrides(
        use_sim_time=arg("use_sim_time").lower() in ("true", "1"),
        checkpoint_dir=arg("checkpoint_dir"),
        vqvae_checkpoint=arg("vqvae_checkpoint"),
        tokenizer_path=arg("tokenizer_path"),
        bag_path=bag,
    )
    return ld.node_specs(arg("params_file"), launch, overrides)


def node_actions(specs: list[ld.NodeSpec]) -> list:
    """Node / LifecycleNode actions; lifecycle nodes are configured, then activated."""
    actions = []
    for spec in specs:
        kwargs = dict(
            package=ld.PACKAGE,
            executable=spec.executable,
            name=spec.name,
            namespace="",
            output="screen",
            parameters=[spec.parameters],
        )
        if not spec.kind.lifecycle:
            actions.append(Node(**kwargs))
            continue
        node = LifecycleNode(**kwargs)
        activate = EmitEvent(
            event=ChangeState(
                lifecycle_node_matcher=matches_action(node),
                transition_id=Transition.TRANSITION_ACTIVATE,
            )
        )
        actions.append(
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=node,
                    goal_state="inactive",
                    entities=[activate],
                )
            )
        )
        actions.append(node)
        actions.append(
            EmitEvent(
                event=ChangeState(
                    lifecycle_node_matcher=matches_action(node),
                    transition_id=Transition.TRANSITION_CONFIGURE,
                )
            )
        )
    return actions


def nodes_of(launch: str) -> OpaqueFunction:
    return OpaqueFunction(function=lambda context: node_actions(resolved_specs(context, launch)))


def rviz_actions() -> list:
    """rviz2 with config/restac.rviz, only when rviz2 is installed."""
    if shutil.which("rviz2") is None:
        return []
    return [
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", str(config_path("restac.rviz"))],
            output="screen",
        )
    ]


def record_actions(context) -> list:
    """`ros2 bag record` of the pipeline's outputs when record_dir is set and ros2 exists."""
    out = LaunchConfiguration("record_dir").perform(context)
    if not out or shutil.which("ros2") is None:
        return []
    topics = [
        "/restac/action_chunk",
        "/restac/joint_trajectory",
        "/restac/tactile/diagnostics",
        "/restac/tactile/logvar",
        "/restac/tactile/vq_codes",
        "/restac/tactile/markers",
        "/restac/command",
        "/diagnostics",
        "/clock",
    ]
    return [ExecuteProcess(cmd=["ros2", "bag", "record", "-o", out, *topics], output="screen")]
