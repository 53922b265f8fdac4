"""restac-bringup and the launch files describe the same nodes and parameters."""

from __future__ import annotations

import importlib.util
import math

import pytest
from rclpy.parameter import Parameter

from restac_ros.nodes import bringup
from restac_ros.nodes import launch_description as ld
from restac_ros.paths import config_path, share_dir

YAML = config_path("policy.yaml")
# rclpy declares these on every node by itself
BUILTIN = {"use_sim_time", "start_type_description_service"}


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-12)
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_yaml_sections_cover_every_declared_parameter(ros_context):
    sections = ld.read_params_file(YAML)
    for name, kind in ld.KINDS.items():
        overrides = [Parameter("bag_path", value="/nonexistent")] if name == "bag_player" else []
        node = kind.node_class()(context=ros_context, parameter_overrides=overrides)
        try:
            declared = set(node._parameters) - BUILTIN
            described = {n for n in declared if node.describe_parameter(n).description.strip()}
        finally:
            node.destroy_node()
        assert described == declared, f"{name}: no description for {declared - described}"
        in_yaml = set(sections[name])
        assert in_yaml <= declared, f"{name}: YAML sets unknown parameters {in_yaml - declared}"
        missing = declared - in_yaml - {"topics"}  # bag_player: unset = every topic
        assert not missing, f"{name}: YAML lacks {missing}"


@pytest.mark.parametrize(
    "argv,launch",
    [
        ([], "policy"),
        (["--monitor", "--use-sim-time", "--checkpoint", "/ckpt"], "policy+monitor"),
        (["--launch", "replay", "--use-sim-time", "--bag", "/bag"], "replay"),
    ],
)
def test_bringup_nodes_carry_the_launch_description_parameters(ros_context, argv, launch):
    args = bringup.parse_args(["--params", str(YAML), *argv])
    specs = bringup.specs_from_args(args)
    assert [s.name for s in specs] == list(ld.LAUNCHES[launch])
    nodes = bringup.create_nodes(specs, context=ros_context)
    try:
        for spec, node in zip(specs, nodes, strict=True):
            assert node.get_name() == spec.name
            for key, value in spec.parameters.items():
                assert same(node.get_parameter(key).value, value), (spec.name, key)
            yaml_section = ld.read_params_file(YAML)[spec.name]
            launch_defaults = ld.LAUNCH_DEFAULTS.get(launch, {}).get(spec.name, {})
            for key, value in yaml_section.items():
                if key not in ("autostart", "bag_path", "checkpoint_dir", *launch_defaults):
                    assert same(node.get_parameter(key).value, value), (spec.name, key)
            for key, value in launch_defaults.items():  # replay: restac-eval's ticks
                assert same(node.get_parameter(key).value, value), (spec.name, key)
            if "--use-sim-time" in argv:
                assert node.get_parameter("use_sim_time").value is True
            if spec.kind.lifecycle:
                assert node.get_parameter("autostart").value is False
        if "--checkpoint" in argv:
            assert nodes[0].get_parameter("checkpoint_dir").value == "/ckpt"
    finally:
        for n in nodes:
            n.destroy_node()


def _load_launch_file(name: str):
    path = share_dir() / "launch" / name
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HAVE_LAUNCH_ROS = importlib.util.find_spec("launch_ros") is not None


@pytest.mark.skipif(not HAVE_LAUNCH_ROS, reason="launch_ros is not installable from PyPI here")
@pytest.mark.parametrize(
    "launch_file,arguments,launch,argv",
    [
        ("policy.launch.py", {}, "policy", []),
        (
            "policy.launch.py",
            {"monitor": "true", "use_sim_time": "true"},
            "policy+monitor",
            ["--monitor", "--use-sim-time"],
        ),
        (
            "replay.launch.py",
            {"bag_path": "/bag"},
            "replay",
            ["--launch", "replay", "--use-sim-time", "--bag", "/bag"],
        ),
        ("monitor.launch.py", {}, "monitor", ["--launch", "monitor"]),
    ],
)
def test_launch_files_match_bringup(launch_file, arguments, launch, argv):
    from launch.actions import DeclareLaunchArgument

    from launch import LaunchContext
    from restac_ros.nodes import launch_actions

    description = _load_launch_file(launch_file).generate_launch_description()
    context = LaunchContext()
    context.launch_configurations.update({"params_file": str(YAML), **arguments})
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.visit(context)
    from launch.actions import OpaqueFunction
    from launch_ros.actions import Node as RosNode

    executables = []
    for entity in description.entities:
        if isinstance(entity, OpaqueFunction):
            for action in entity.execute(context) or []:
                if isinstance(action, RosNode) and action.node_executable != "rviz2":
                    executables.append(action.node_executable)
    assert executables == list(ld.LAUNCHES[launch])
    from_launch = ld.describe(launch_actions.resolved_specs(context, launch))
    from_bringup = ld.describe(
        bringup.specs_from_args(bringup.parse_args(["--params", str(YAML), *argv]))
    )
    assert from_launch == from_bringup


def test_launch_files_exist_and_name_the_package_nodes():
    for name in ("policy.launch.py", "replay.launch.py", "monitor.launch.py"):
        text = (share_dir() / "launch" / name).read_text()
        assert "generate_launch_description" in text
        assert "launch_actions" in text  # built from the same node specs as bringup
