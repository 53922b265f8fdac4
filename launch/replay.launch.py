"""Bag replay through the live pipeline: policy_node -> chunk_executor, tactile_monitor,
frame_publisher; bag_player (with /clock) starts only once policy_node is active, so
every message of the bag meets a running policy; everything on sim time
(use_sim_time defaults to true here). record_dir:=DIR also records the pipeline's
topics with restac-record (MCAP, config + checkpoint id in the metadata); the launch
ends when the bag does (exit_when_bag_done).
Plain-rclpy equivalent:
  restac-bringup --launch replay --use-sim-time --bag BAG [--record DIR] --exit-when-bag-done"""

from launch.actions import DeclareLaunchArgument

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
                description="Record the pipeline's topics into this new MCAP bag ('' = off)",
            ),
            DeclareLaunchArgument(
                "exit_when_bag_done",
                default_value="true",
                description="Shut the launch down when the bag has been played",
            ),
            launch_actions.nodes_of("replay"),
        ]
    )
