"""policy_node (lifecycle: configured, then activated) + chunk_executor, optionally
tactile_monitor. `restac-bringup --params config/policy.yaml` runs the same nodes
with the same parameters in one process (restac_ros.nodes.launch_description)."""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription
from restac_ros.nodes import launch_actions


def _nodes(context):
    monitor = LaunchConfiguration("monitor").perform(context).lower() in ("true", "1")
    specs = launch_actions.resolved_specs(context, "policy+monitor" if monitor else "policy")
    return launch_actions.node_actions(specs)


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *launch_actions.common_arguments(),
            DeclareLaunchArgument(
                "monitor", default_value="false", description="Also start tactile_monitor"
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
