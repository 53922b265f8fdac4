"""policy_node (lifecycle: configured, then activated once) + chunk_executor,
optionally tactile_monitor + frame_publisher (monitor:=true) and restac-record
(record_dir:=DIR). Next to a bag player, pass use_sim_time:=true (the bag's /clock),
or chunks are stale. `restac-bringup --params config/policy.yaml` runs the same nodes
with the same parameters in one process (restac_ros.nodes.launch_description)."""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription
from restac_ros.nodes import launch_actions


def _nodes(context):
    monitor = LaunchConfiguration("monitor").perform(context).lower() in ("true", "1")
    launch = "policy+monitor" if monitor else "policy"
    return launch_actions.node_actions(launch_actions.resolved_specs(context, launch), launch)


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *launch_actions.common_arguments(),
            DeclareLaunchArgument(
                "monitor",
                default_value="false",
                description="Also start tactile_monitor and frame_publisher (static TF)",
            ),
            DeclareLaunchArgument(
                "record_dir",
                default_value="",
                description="Record the pipeline's topics into this new MCAP bag ('' = off)",
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
