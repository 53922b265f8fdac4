"""ROS 2 nodes of restac_ros: the only layer that imports rclpy.

Each node converts messages into plain data (conversions.py) and hands that to
the ROS-free core (restac_ros.core); no preprocessing logic lives here.
"""
