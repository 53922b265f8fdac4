"""tactile_monitor + frame_publisher (static TF) + rviz2 with config/restac.rviz
(restac_ee.rviz for EE action spaces). Without rviz2 installed it says so and runs
the nodes only. Plain-rclpy equivalent: `restac-bringup --launch monitor`."""

from launch.actions import OpaqueFunction

from launch import LaunchDescription
from restac_ros.nodes import launch_actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *launch_actions.common_arguments(),
            launch_actions.nodes_of("monitor"),
            OpaqueFunction(function=launch_actions.rviz_actions),
        ]
    )
