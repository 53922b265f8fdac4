"""restac_ros.recording: topics from parameters, log times from the messages' stamps."""

from __future__ import annotations

import pytest
from rclpy.serialization import serialize_message
from restac_ros.msg import ActionChunk
from rosbags.rosbag2 import Reader
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from restac_ros import recording
from restac_ros.nodes import launch_description as ld
from restac_ros.paths import config_path


def test_pipeline_topics_follow_the_action_space_and_command_type():
    params = ld.read_params_file(config_path("policy.yaml"))
    joint = recording.pipeline_topics(params)
    assert joint["/restac/joint_trajectory"] == "trajectory_msgs/msg/JointTrajectory"
    assert "/restac/ee_path" not in joint and "/restac/gripper_command" not in joint
    assert joint["/tf_static"] == "tf2_msgs/msg/TFMessage"
    params["policy_node"]["action_space"] = "ee_pose_rpy"
    params["chunk_executor"]["command_type"] = "pose_stamped"
    params["policy_node"]["camera_transport"] = "compressed"
    ee = recording.pipeline_topics(params)
    assert ee["/restac/ee_path"] == "nav_msgs/msg/Path"
    assert "/restac/joint_trajectory" not in ee
    assert ee["/restac/command"] == "geometry_msgs/msg/PoseStamped"
    assert ee["/restac/gripper_command"] == "std_msgs/msg/Float64"
    assert ee["/camera/base/image_raw"] == "sensor_msgs/msg/CompressedImage"


def test_messages_are_logged_at_their_stamps_and_unstamped_ones_wait(tmp_path):
    rec = recording.BagRecording(tmp_path / "rec", {"restac.config": "x: 1"})
    rec.add_topic("/restac/prompt", "std_msgs/msg/String")
    rec.add_topic("/restac/action_chunk", "restac_ros/msg/ActionChunk")
    rec.add_topic("/tf_static", "tf2_msgs/msg/TFMessage")
    chunk = ActionChunk()
    chunk.header.stamp.sec, chunk.header.stamp.nanosec = 1_735_689_600, 250_000_000
    # sim time before the first /clock: receipt time 0, nothing stamped yet -> held
    rec.write("/restac/prompt", serialize_message(String(data="pick")), 0)
    rec.write("/tf_static", serialize_message(TFMessage()), 0)
    assert sum(rec.counts.values()) == 0
    rec.write("/restac/action_chunk", serialize_message(chunk), 0)
    rec.write("/restac/prompt", serialize_message(String(data="again")), 5)
    rec.close()
    stamp = 1_735_689_600_250_000_000
    with Reader(tmp_path / "rec") as reader:
        times = [(c.topic, t) for c, t, _ in reader.messages()]
        assert reader.start_time == stamp
    assert sorted(times) == sorted([("/restac/prompt", stamp), ("/tf_static", stamp),
                                    ("/restac/action_chunk", stamp),
                                    ("/restac/prompt", stamp)])
    assert "restac.config: 'x: 1'" in (tmp_path / "rec" / "metadata.yaml").read_text()


def test_recording_refuses_an_existing_directory_and_unknown_types(tmp_path):
    with pytest.raises(FileExistsError):
        recording.BagRecording(tmp_path, {})
    rec = recording.BagRecording(tmp_path / "rec", {})
    with pytest.raises(ValueError, match="unknown"):
        rec.add_topic("/x", "no_pkg/msg/Nothing")
    rec.close()


def test_checkpoint_id_changes_with_the_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    (ckpt / "params").mkdir(parents=True)
    (ckpt / "restac_config.json").write_text('{"a": 1}')
    first = recording.checkpoint_id(ckpt)
    assert len(first) == 16 and first == recording.checkpoint_id(ckpt)
    (ckpt / "restac_config.json").write_text('{"a": 2}')
    assert recording.checkpoint_id(ckpt) != first
    assert recording.checkpoint_id("") == "" and recording.checkpoint_id(tmp_path / "no") == ""
