"""restac-bringup and the launch files describe the same nodes and parameters."""

from __future__ import annotations

import importlib.util
import math

import pytest
import rclpy
import yaml
from rclpy.parameter import Parameter

from restac_ros.nodes import bringup
from restac_ros.nodes import launch_description as ld
from restac_ros.paths import config_path, share_dir
from test.ros_helpers import spin_until

YAML = config_path("policy.yaml")
# rclpy declares these on every node by itself
BUILTIN = {"use_sim_time", "start_type_description_service"}


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-12)
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# parameters a launcher fills in (unset in the YAML)
UNSET = {"bag_player": {"topics", "wait_for_subscribers"},
         "restac_record": {"topics", "types", "best_effort_topics"}}


def test_yaml_sections_cover_every_declared_parameter(ros_context, tmp_path):
    sections = ld.read_params_file(YAML)
    sections["sim_node"] = ld.read_params_file(config_path("sim.yaml"))["sim_node"]
    required = {
        "bag_player": [Parameter("bag_path", value="/nonexistent")],
        "restac_record": [Parameter("output_dir", value=str(tmp_path / "rec")),
                          Parameter("topics", value=["/diagnostics"]),
                          Parameter("types", value=["diagnostic_msgs/msg/DiagnosticArray"])],
    }
    for name, kind in ld.KINDS.items():
        overrides = required.get(name, [])
        node = kind.node_class()(context=ros_context, parameter_overrides=overrides)
        try:
            declared = set(node._parameters) - BUILTIN
            described = {n for n in declared if node.describe_parameter(n).description.strip()}
        finally:
            node.destroy_node()
        assert described == declared, f"{name}: no description for {declared - described}"
        in_yaml = set(sections[name])
        assert in_yaml <= declared, f"{name}: YAML sets unknown parameters {in_yaml - declared}"
        missing = declared - in_yaml - UNSET.get(name, set())
        assert not missing, f"{name}: YAML lacks {missing}"


@pytest.mark.parametrize(
    "argv,launch",
    [
        ([], "policy"),
        (["--monitor", "--use-sim-time", "--checkpoint", "/ckpt"], "policy+monitor"),
        (["--launch", "replay", "--use-sim-time", "--bag", "/bag"], "replay"),
    ],
)
def test_bringup_nodes_carry_the_launch_description_parameters(
    ros_context, tmp_path, monkeypatch, argv, launch
):
    (tmp_path / "ckpt").mkdir()
    monkeypatch.chdir(tmp_path)  # --checkpoint /ckpt -> ./ckpt: relative to the cwd
    argv = [a.replace("/ckpt", "ckpt") for a in argv]
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
            assert nodes[0].get_parameter("checkpoint_dir").value == str(tmp_path / "ckpt")
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


# -- paths in the config ----------------------------------------------------------------


def test_relative_model_paths_resolve_against_cwd_then_share(tmp_path, monkeypatch):
    from restac_ros.paths import share_dir

    (share_dir() / ".cache").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    assert ld.resolve_path("mine", "checkpoint_dir") == str(tmp_path / "mine")
    assert ld.resolve_path(".cache", "checkpoint_dir") == str((share_dir() / ".cache").resolve())
    assert ld.resolve_path("", "tokenizer_path") == ""
    with pytest.raises(FileNotFoundError) as err:
        ld.resolve_path("no/such/ckpt", "checkpoint_dir")
    text = str(err.value)
    assert "checkpoint_dir" in text
    assert str(tmp_path / "no/such/ckpt") in text and str(share_dir() / "no/such/ckpt") in text


def test_bringup_names_the_resolved_path_of_a_missing_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = bringup.main(["--params", str(YAML), "--checkpoint", "gone/ckpt"])
    assert rc == 1
    assert str(tmp_path / "gone/ckpt") in capsys.readouterr().err


# -- recorder, frames, RViz ----------------------------------------------------------------


def test_replay_with_record_dir_adds_the_recorder_with_the_pipeline_topics(tmp_path):
    from restac_ros.recording import pipeline_topics
    from restac_ros.sample_bag.writer import write_sample_bag

    bag = write_sample_bag(tmp_path / "bag", seconds=0.5, seed=1).path
    args = bringup.parse_args(["--params", str(YAML), "--launch", "replay", "--bag", str(bag),
                               "--record", str(tmp_path / "rec")])
    specs = bringup.specs_from_args(args)
    assert [s.name for s in specs] == [ld.RECORDER, *ld.LAUNCHES["replay"]]
    rec = specs[0].parameters
    assert specs[0].executable == "restac-record"
    assert rec["output_dir"] == str(tmp_path / "rec")
    topics = dict(zip(rec["topics"], rec["types"], strict=True))
    pipeline = pipeline_topics({s.name: s.parameters for s in specs[1:]})
    assert pipeline.items() <= topics.items()
    for topic in ("/camera/base/image_raw", "/tactile/image_raw", "/joint_states",
                  "/restac/action_chunk", "/restac/tactile/diagnostics", "/diagnostics",
                  "/restac/command", "/restac/tactile/markers", "/teacher/joint_command"):
        assert topic in topics, topic
    assert topics["/restac/action_chunk"] == "restac_ros/msg/ActionChunk"
    assert "/clock" not in topics
    assert rec["config_file"] == str(YAML) and rec["source_bag"] == str(bag)
    assert rec["checkpoint_dir"] == specs[2].parameters["checkpoint_dir"]
    player = specs[1].parameters
    assert player["wait_for_active"] == "policy_node" and player["reliable"] is True


@pytest.mark.parametrize("action_space", ["joint_position", "ee_pose_rpy"])
def test_rviz_config_displays_only_topics_the_pipeline_publishes(action_space):
    from restac_ros import rviz_config
    from restac_ros.recording import pipeline_topics

    params = ld.read_params_file(YAML)
    params["policy_node"]["action_space"] = action_space
    ee = action_space.startswith("ee")
    committed = config_path(rviz_config.config_name(action_space)).read_text()
    assert committed == rviz_config.render(ld.read_params_file(YAML), ee)  # regenerated
    published = pipeline_topics(params)
    shown = rviz_config.display_topics(committed)
    assert shown and set(shown) <= set(published), set(shown) - set(published)
    assert (params["policy_node"]["ee_path_topic"] in shown) == ee
    fixed = yaml.safe_load(committed)["Visualization Manager"]["Global Options"]["Fixed Frame"]
    frames = ld.read_params_file(YAML)["frame_publisher"]
    # the markers' frame hangs off the Fixed Frame on /tf_static
    assert params["policy_node"]["tactile_frame_id"] in frames["child_frames"]
    assert fixed in frames["parent_frames"] and fixed == params["policy_node"]["ee_frame_id"]


def test_frame_publisher_latches_the_configured_static_frames(ros_context):
    from rclpy.executors import SingleThreadedExecutor
    from tf2_msgs.msg import TFMessage

    from restac_ros.nodes.frame_publisher import TF_STATIC, FramePublisherNode

    overrides = [
        Parameter("parent_frames", value=["base_link", "tactile_link"]),
        Parameter("child_frames", value=["tactile_link", "gel_link"]),
        Parameter("translations", value=[0.4, 0.0, 0.3, 0.0, 0.0, 0.01]),
        Parameter("rotations_rpy", value=[0.0, 0.0, math.pi / 2, 0.0, 0.0, 0.0]),
    ]
    publisher = FramePublisherNode(context=ros_context, parameter_overrides=overrides)
    listener = rclpy.create_node("late_rviz", context=ros_context)  # joins after the publish
    got: list = []
    listener.create_subscription(TFMessage, "/tf_static", got.append, TF_STATIC)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(listener)
    try:
        assert spin_until(executor, lambda: bool(got), 30.0), "no latched /tf_static"
    finally:
        executor.shutdown(timeout_sec=2.0)
        listener.destroy_node()
        publisher.destroy_node()
    tfs = got[0].transforms
    assert [(t.header.frame_id, t.child_frame_id) for t in tfs] == [
        ("base_link", "tactile_link"), ("tactile_link", "gel_link")]
    q = tfs[0].transform.rotation
    assert (q.x, q.y) == (0.0, 0.0) and q.z == pytest.approx(math.sqrt(0.5))
    assert q.w == pytest.approx(math.sqrt(0.5)) and tfs[1].transform.translation.z == 0.01


def test_frame_publisher_refuses_frames_that_do_not_fit():
    from restac_ros.nodes.frame_publisher import validate

    good = dict(parent_frames=["a"], child_frames=["b"], translations=[0.0] * 3,
                rotations_rpy=[0.0] * 3)
    assert validate(good) == 1
    for bad in (dict(translations=[0.0] * 2), dict(parent_frames=["a", "c"]),
                dict(child_frames=["a"]), dict(rotations_rpy=[float("nan")] * 3)):
        with pytest.raises(ValueError):
            validate({**good, **bad})
