"""ROS 2 nodes of restac_ros: the only layer that imports rclpy.

Each node converts messages into plain data (conversions.py) and hands that to
the ROS-free core (restac_ros.core); no preprocessing logic lives here.

Executables (console scripts; parameters in config/policy.yaml, one section each):
  policy_node      lifecycle node: sensors -> ActionChunk, JointTrajectory | Path,
                   TactileDiagnostics, logvar, VQ codes, /diagnostics
  chunk_executor   ActionChunk -> /restac/command at the control rate (core/executor.py)
  tactile_monitor  TactileDiagnostics -> RViz MarkerArray + overlay Image
  bag_player       rosbag2 -> topics (raw CDR) with recorded timing and /clock
  frame_publisher  static TF (/tf_static) for what RViz draws
  restac-record    the pipeline's topics -> MCAP rosbag2 with config + checkpoint id
  restac-bringup   the nodes of a launch file in one process (launch_description.py)
"""
