"""restac_sim: a MuJoCo world with a GelSight-style sensor (ROS-free).

Modules: `world` (hand-written MJCF: table, 7-joint arm, gel-padded gripper, box),
`task` (seeded randomisation, success), `contact` (ground truth from MuJoCo contact
forces), `render` (RGB + tactile depth cameras), `tactile` (GelSight shading),
`env` (SimEnv: the reset/step/sense core), `ik` + `expert` (scripted demonstrations),
`recorder` (rosbag2 episodes), `cli` (`python -m restac_ros.sim record OUT --seeds 0-9`).
Only `restac_ros/nodes/sim_node.py` puts it on ROS 2.
"""

import os

# Headless by default; MUJOCO_GL=osmesa (or glfw with a display) still wins. Must be
# set before mujoco is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
