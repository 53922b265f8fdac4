"""ROS-free core of restac_ros: decoding, buffering, observation assembly, execution maths.

No module in this package imports rclpy; ROS nodes convert messages into the
plain types used here.
"""
