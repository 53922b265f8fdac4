"""pip install of the restac_ros Python package (the venv path; colcon uses CMakeLists.txt).

The version is read from package.xml so the two never disagree.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

_HERE = Path(__file__).resolve().parent


def package_xml_version() -> str:
    text = (_HERE / "package.xml").read_text()
    match = re.search(r"<version>\s*([^<\s]+)\s*</version>", text)
    if match is None:
        raise RuntimeError("package.xml has no <version> element")
    return match.group(1)


CONSOLE_SCRIPTS = [
    "policy_node = restac_ros.nodes.entry:policy_node",
    "chunk_executor = restac_ros.nodes.entry:chunk_executor",
    "tactile_monitor = restac_ros.nodes.entry:tactile_monitor",
    "bag_player = restac_ros.nodes.entry:bag_player",
    "sim_node = restac_ros.nodes.sim_node:main",
    "frame_publisher = restac_ros.nodes.entry:frame_publisher",
    "restac-record = restac_ros.nodes.entry:recorder",
    "restac-bringup = restac_ros.nodes.entry:bringup",
    "restac-make-sample-bag = restac_ros.sample_bag.cli:main",
    "restac-eval = restac_ros.eval.cli:main",
    "restac-eval-sim = restac_ros.eval.sim_cli:main",
    "restac-train-policy = restac_ros.eval.train_policy:main",
    "restac-train-vqvae = restac_ros.tactile.train:main",
    "restac-demo = restac_ros.demo:main",
    "restac-serve = restac_ros.serve.cli:main",
    "restac-import = restac_ros.eval.import_checkpoint:main",
]

setup(
    name="restac_ros",
    version=package_xml_version(),
    description="ResTacVLA (Pi0_ResTac) policy, executor, evaluation and monitoring on ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["restac_ros", "restac_ros.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/restac_ros"]),
        ("share/restac_ros", ["package.xml"]),
        ("share/restac_ros/launch", [str(p) for p in sorted(Path("launch").glob("*.py"))]),
        ("share/restac_ros/config", [str(p) for p in sorted(Path("config").glob("*"))]),
    ],
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
