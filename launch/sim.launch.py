"""restac_sim in place of the robot: sim_node + policy_node (lifecycle: configured, then
activated once) + chunk_executor, everything on the sim's /clock in lockstep
(docs/ARCHITECTURE.md "Simulation"). Parameters: params_file (config/policy.yaml) with
sim_params_file (config/sim.yaml) layered over it, section by section. Episodes:
`ros2 topic pub --once /sim/reset std_msgs/msg/Int64 "{data: 7}"` starts seed 7;
outcomes on /sim/episode (JSON) and /diagnostics.
Plain-rclpy equivalent:
  restac-bringup --launch sim [--sim-params config/sim.yaml] [--checkpoint CKPT]"""

from launch.actions import DeclareLaunchArgument

from launch import LaunchDescription
from restac_ros.nodes import launch_actions
from restac_ros.paths import config_path


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *launch_actions.common_arguments(),  # config/sim.yaml sets use_sim_time
            DeclareLaunchArgument(
                "sim_params_file",
                default_value=str(config_path("sim.yaml")),
                description="sim_node + lockstep overrides, layered over params_file",
            ),
            DeclareLaunchArgument(
                "record_dir",
                default_value="",
                description="Record the pipeline's topics into this new MCAP bag ('' = off)",
            ),
            launch_actions.nodes_of("sim"),
        ]
    )
