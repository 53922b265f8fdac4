"""tactile_monitor + rviz2 with config/restac.rviz (rviz2 only when it is installed)."""

from launch import LaunchDescription
from restac_ros.nodes import launch_actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *launch_actions.common_arguments(),
            launch_actions.nodes_of("monitor"),
            *launch_actions.rviz_actions(),
        ]
    )
