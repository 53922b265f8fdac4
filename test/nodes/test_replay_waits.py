"""The replay launch's bag_player waits for policy_node's subscriptions (launch_description)."""

from __future__ import annotations

from restac_ros.nodes import launch_description as ld
from restac_ros.paths import config_path
from restac_ros.sample_bag.writer import write_sample_bag


def replay_player(bag, use_sim_time: bool | None, **player) -> dict:
    overrides = ld.launch_arguments_to_overrides(
        use_sim_time=use_sim_time, checkpoint_dir=None, vqvae_checkpoint=None,
        tokenizer_path=None, bag_path=str(bag), record_dir=None)
    if player:
        overrides.setdefault("bag_player", {}).update(player)
    specs = ld.node_specs(config_path("policy.yaml"), "replay", overrides)
    return next(s for s in specs if s.name == "bag_player").parameters


def test_player_waits_for_the_policy_topics_in_the_bag_and_the_clock(tmp_path):
    bag = write_sample_bag(tmp_path / "bag", seconds=0.5, seed=1).path
    wanted = replay_player(bag, True)["wait_for_subscribers"]
    # the policy's inputs the bag holds; not /teacher or /contact (nobody reads them)
    assert wanted == ["/clock", "/camera/base/image_raw", "/camera/left_wrist/image_raw",
                      "/camera/right_wrist/image_raw", "/tactile/image_raw", "/joint_states",
                      "/restac/prompt"]
    # wall time: no node subscribes to /clock, so it is not waited for
    assert "/clock" not in replay_player(bag, None)["wait_for_subscribers"]
    # the user's own list wins
    mine = replay_player(bag, True, wait_for_subscribers=["/joint_states"])
    assert mine["wait_for_subscribers"] == ["/joint_states"]


def test_a_policy_launch_has_no_player_to_change():
    specs = ld.node_specs(config_path("policy.yaml"), "policy", {})
    assert all("wait_for_subscribers" not in s.parameters for s in specs)
