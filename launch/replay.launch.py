"""Bag replay through the live pipeline: bag_player (with /clock) -> policy_node ->
chunk_executor, tactile_monitor; everything on sim time; optional recording of the
outputs (`ros2 bag record`, when record_dir is set and ros2 is installed).
Plain-rclpy equivalent: `restac-bringup --launch replay --use-sim-time --bag BAG`."""

from launch.actions import DeclareLaunchArgument, OpaqueFunction

from launch import LaunchDescription
from restac_ros.nodes import launch_actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *launch_actions.common_arguments(use_sim_time_default="true"),
            DeclareLaunchArgument("bag_path", description="rosbag2 directory to replay"),
            DeclareLaunchArgument(
                "record_dir",
                default_value="",
                description="Record the outputs here ('' = no recording)",
            ),
            launch_actions.nodes_of("replay"),
            OpaqueFunction(function=launch_actions.record_actions),
        ]
    )
