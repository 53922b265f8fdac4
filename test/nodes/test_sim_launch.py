"""launch/sim.launch.py and its plain-rclpy twin `restac-bringup --launch sim` describe the
same nodes and parameters (config/policy.yaml with config/sim.yaml layered over it), the
ament layout installs the launch file, and config/sim.yaml is consistent with itself."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from restac_ros.nodes import bringup
from restac_ros.nodes import launch_description as ld
from restac_ros.paths import config_path, share_dir
from restac_ros.sample_bag.writer import EPOCH_NS
from test.nodes.test_launch import HAVE_LAUNCH_ROS, _load_launch_file, same

YAML = config_path("policy.yaml")
SIM = config_path("sim.yaml")
REPO = Path(__file__).resolve().parents[2]


def test_sim_launch_layers_sim_yaml_over_policy_yaml(ros_context):
    specs = bringup.specs_from_args(bringup.parse_args(["--params", str(YAML),
                                                        "--launch", "sim"]))
    assert [s.name for s in specs] == ["sim_node", "policy_node", "chunk_executor"]
    base, sim = ld.read_params_file(YAML), ld.read_params_file(SIM)
    by_name = ld.describe(specs)
    for name, params in by_name.items():
        expected = {**base.get(name, {}), **sim[name]}
        for key, value in expected.items():
            if key not in ("autostart", *ld.MODEL_PATHS):
                assert same(params[key], value), (name, key)
    assert by_name["policy_node"]["autostart"] is False  # bringup drives the lifecycle
    nodes = bringup.create_nodes(specs, context=ros_context)
    try:
        for spec, node in zip(specs, nodes, strict=True):
            for key, value in spec.parameters.items():
                assert same(node.get_parameter(key).value, value), (spec.name, key)
    finally:
        for n in nodes:
            n.destroy_node()


def test_sim_params_file_replaces_the_overlay(tmp_path):
    own = tmp_path / "sim.yaml"
    own.write_text(SIM.read_text().replace("seed: 0", "seed: 42"))
    specs = bringup.specs_from_args(bringup.parse_args(
        ["--params", str(YAML), "--launch", "sim", "--sim-params", str(own)]))
    assert specs[0].parameters["seed"] == 42


def test_sim_yaml_is_consistent():
    sim = ld.read_params_file(SIM)
    s, policy, executor = sim["sim_node"], sim["policy_node"], sim["chunk_executor"]
    policy_all = {**ld.read_params_file(YAML)["policy_node"], **policy}
    assert math.isclose(s["command_period_s"], 1.0 / executor["control_rate_hz"])
    assert s["policy_rate_hz"] == policy["rate_hz"]
    assert policy["tick_origin_ns"] == EPOCH_NS and policy["tick_on"] == "stamps"
    assert policy["use_sim_time"] and executor["use_sim_time"] and policy["reliable_inputs"]
    # the first gated tick is the first whose newest joint state (100 Hz, stamped <= T)
    # has one action_prev_dt_s before it (see core.observation._previous_joints)
    dt = policy_all.get("action_prev_dt_s", 1.0 / 15.0)
    first = next(k for k in range(10)
                 if math.floor(k / s["policy_rate_hz"] * 100 + 1e-9) / 100 - dt >= -1e-6)
    assert s["first_gated_tick"] == first == 2
    for section in (policy, executor):  # every reset is a jump back of >= one sim step
        assert 0 < section["clock_jump_tolerance_s"] < 1 / 300
        assert section["clock_stall_s"] > s["lockstep_timeout_s"]  # lockstep stalls are fine
    assert set(s["pipeline_nodes"]) == {"policy_node", "chunk_executor"}
    assert s["executor_node"] == "chunk_executor"
    assert s["verdict_topic"] == "/chunk_executor/chunk_verdict"


def test_ament_layout_installs_the_sim_launch_file(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "install_ament_layout", REPO / "scripts" / "install_ament_layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    linked = module.install_share(tmp_path)
    share = tmp_path / "share" / "restac_ros"
    assert share / "launch" / "sim.launch.py" in linked
    assert (share / "launch" / "sim.launch.py").resolve() == REPO / "launch" / "sim.launch.py"
    assert (share / "config" / "sim.yaml").resolve() == SIM
    text = (share_dir() / "launch" / "sim.launch.py").read_text()
    assert "generate_launch_description" in text and 'nodes_of("sim")' in text
    assert "sim_params_file" in text and "DeclareLaunchArgument" in text


@pytest.mark.skipif(not HAVE_LAUNCH_ROS, reason="launch_ros is not installable from PyPI here")
def test_sim_launch_file_matches_bringup():
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch_ros.actions import Node as RosNode

    from launch import LaunchContext
    from restac_ros.nodes import launch_actions

    description = _load_launch_file("sim.launch.py").generate_launch_description()
    context = LaunchContext()
    context.launch_configurations.update({"params_file": str(YAML)})
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.visit(context)
    executables = [a.node_executable for e in description.entities
                   if isinstance(e, OpaqueFunction) for a in e.execute(context) or []
                   if isinstance(a, RosNode)]
    assert executables == list(ld.LAUNCHES["sim"])
    from_launch = ld.describe(launch_actions.resolved_specs(context, "sim"))
    from_bringup = ld.describe(bringup.specs_from_args(
        bringup.parse_args(["--params", str(YAML), "--launch", "sim"])))
    assert from_launch == from_bringup
