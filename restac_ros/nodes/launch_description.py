"""The node list + parameters of each launch file, from config/policy.yaml.

Shared by launch/*.launch.py (launch_ros) and `restac-bringup` (plain rclpy),
and importable without launch/launch_ros, so "both describe the same nodes and
parameters" is one function, testable anywhere.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "restac_ros"


@dataclasses.dataclass(frozen=True)
class NodeKind:
    name: str  # node name = YAML section = console script
    module: str
    factory: str  # class in `module`, constructed with rclpy Node kwargs
    lifecycle: bool
    executable: str = ""  # console script / lib/restac_ros name ('' = the node name)

    def node_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.factory)


KINDS: dict[str, NodeKind] = {
    k.name: k
    for k in (
        NodeKind("policy_node", "restac_ros.nodes.policy_node", "PolicyNode", True),
        NodeKind("chunk_executor", "restac_ros.nodes.chunk_executor", "ChunkExecutorNode", False),
        NodeKind(
            "tactile_monitor", "restac_ros.nodes.tactile_monitor", "TactileMonitorNode", False
        ),
        NodeKind("bag_player", "restac_ros.nodes.bag_player", "BagPlayerNode", False),
        NodeKind(
            "frame_publisher", "restac_ros.nodes.frame_publisher", "FramePublisherNode", False
        ),
        NodeKind(
            "restac_record", "restac_ros.nodes.recorder", "RecorderNode", False, "restac-record"
        ),
        NodeKind("sim_node", "restac_ros.nodes.sim_node", "SimNode", False),
    )
}
RECORDER = "restac_record"  # started by any launch when a record directory is given

# Which nodes each launch file starts.
LAUNCHES: dict[str, tuple[str, ...]] = {
    "policy": ("policy_node", "chunk_executor"),
    "policy+monitor": ("policy_node", "chunk_executor", "tactile_monitor", "frame_publisher"),
    "replay": ("bag_player", "policy_node", "chunk_executor", "tactile_monitor",
               "frame_publisher"),
    "monitor": ("tactile_monitor", "frame_publisher"),
    # restac_sim in place of the robot, lockstep on its /clock (launch/sim.launch.py)
    "sim": ("sim_node", "policy_node", "chunk_executor"),
}
# Params files layered over the main one (config/policy.yaml) per launch, section by
# section: config/sim.yaml holds sim_node and the pipeline's lockstep overrides.
LAUNCH_OVERLAYS: dict[str, tuple[str, ...]] = {"sim": ("sim.yaml",)}

# The lifecycle sequence: configure, then activate, exactly once. restac-bringup drives
# the transitions itself (autostart false); under `ros2 launch` the node runs them
# itself (autostart true; launch_actions.node_actions says why). The replay's
# bag_player plays only once policy_node is active (LAUNCH_DEFAULTS wait_for_active).
# Transitions as (start_state, goal_state) labels of lifecycle_msgs/TransitionEvent.
AUTOSTART_UNDER_LAUNCH = True
# After the bag ends (exit_when_bag_done): under ros2 launch (separate processes), time
# for the last ticks' chunks to go out; restac-bringup waits for them instead, at most
# BAG_DONE_DRAIN_TIMEOUT_S.
BAG_DONE_DRAIN_S = 2.0
BAG_DONE_DRAIN_TIMEOUT_S = 120.0
ACTIVATED = ("activating", "active")
# What a start must look like, and nothing else before a stop (tests check real events).
START_SEQUENCE = (
    ("unconfigured", "configuring"),
    ("configuring", "inactive"),
    ("inactive", "activating"),
    ACTIVATED,
)


# Per-launch defaults over the YAML (overrides still win). replay: the same ticks, seeds and
# so chunks as restac-eval over the bag (restac_ros.core.ticks), lossless sensor transport.
LAUNCH_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "replay": {
        "policy_node": {"tick_on": "stamps", "reliable_inputs": True},
        "bag_player": {"reliable": True, "wait_for_active": "policy_node"},
    },
}


def bag_topics(bag_path: str | Path) -> dict[str, str]:
    """{topic: type} of a rosbag2 ({} if it cannot be read: bag_player reports that)."""
    from rosbags.rosbag2 import Reader

    try:
        with Reader(Path(bag_path)) as reader:
            return {c.topic: c.msgtype for c in reader.connections}
    except Exception:  # a missing or unreadable bag: bag_player reports it when playing
        return {}


def bag_start_ns(bag_path: str | Path) -> int | None:
    """First log time of a rosbag2 (restac-eval's tick origin); None if it cannot be read."""
    from rosbags.rosbag2 import Reader

    try:
        with Reader(Path(bag_path)) as reader:
            return int(reader.start_time)
    except Exception:  # a missing or unreadable bag: bag_player reports it when playing
        return None


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    kind: NodeKind
    parameters: dict[str, Any]  # YAML section + overrides

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def executable(self) -> str:
        return self.kind.executable or self.kind.name


def read_params_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """ROS 2 params YAML -> {node_name: {param: value}} (`/name`, `/**` sections too)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a mapping of node names")
    out: dict[str, dict[str, Any]] = {}
    for key, section in data.items():
        if not isinstance(section, dict) or "ros__parameters" not in section:
            raise ValueError(f"{path}: section {key!r} has no ros__parameters")
        params = section["ros__parameters"] or {}
        out[str(key).lstrip("/")] = _flatten(params)
    return out


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def launch_arguments_to_overrides(
    use_sim_time: bool | None = None,
    checkpoint_dir: str | None = None,
    vqvae_checkpoint: str | None = None,
    tokenizer_path: str | None = None,
    bag_path: str | None = None,
    record_dir: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Launch arguments -> per-node parameter overrides ('' / None = keep the YAML's)."""
    per_node: dict[str, dict[str, Any]] = {"*": {}}
    if record_dir:
        per_node[RECORDER] = {"output_dir": str(Path(record_dir).expanduser().absolute())}
    if bag_path:
        bag_path = str(Path(bag_path).expanduser().absolute())
    if use_sim_time:  # false = the nodes' default: no override
        per_node["*"]["use_sim_time"] = True
    policy = {
        k: v
        for k, v in (
            ("checkpoint_dir", checkpoint_dir),
            ("vqvae_checkpoint", vqvae_checkpoint),
            ("tokenizer_path", tokenizer_path),
        )
        if v
    }
    if bag_path:
        per_node["bag_player"] = {"bag_path": bag_path}
        if (start := bag_start_ns(bag_path)) is not None:
            policy["tick_origin_ns"] = start  # restac-eval's grid starts at the bag start
    if policy:
        per_node["policy_node"] = policy
    return per_node


def default_overlays(launch: str) -> list[Path]:
    from restac_ros.paths import config_path

    return [config_path(name) for name in LAUNCH_OVERLAYS.get(launch, ())]


def node_specs(
    params_file: str | Path,
    launch: str = "policy",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    overlay_files: Sequence[str | Path] | None = None,
) -> list[NodeSpec]:
    """The nodes of `launch` with their parameters: YAML section, then `/**`, then the
    overlay files' sections (None: the launch's LAUNCH_OVERLAYS), then overrides (key "*"
    applies to every node). Lifecycle nodes get autostart False: the launcher drives
    their transitions."""
    if launch not in LAUNCHES:
        raise ValueError(f"unknown launch {launch!r}; known: {sorted(LAUNCHES)}")
    sections = read_params_file(params_file)
    overlays = default_overlays(launch) if overlay_files is None else overlay_files
    for overlay in overlays:
        for name, section in read_params_file(overlay).items():
            sections[name] = {**sections.get(name, {}), **section}
    overrides = overrides or {}
    names = LAUNCHES[launch]
    if RECORDER in overrides:  # first, so it subscribes before anything is published
        names = (RECORDER, *names)
    specs = []
    for name in names:
        kind = KINDS[name]
        params = {**sections.get("**", {}), **sections.get(name, {}),
                  **LAUNCH_DEFAULTS.get(launch, {}).get(name, {})}
        params.update(overrides.get("*", {}))
        params.update(overrides.get(name, {}))
        if kind.lifecycle:
            params["autostart"] = False
        if name == "policy_node":
            resolve_model_paths(params)
        specs.append(NodeSpec(kind, params))
    if RECORDER in overrides:
        specs[0] = recorder_spec(specs[0], specs[1:], params_file)
    return [player_waiting_for_policy(s, specs) for s in specs]


def player_waiting_for_policy(spec: NodeSpec, specs: Sequence[NodeSpec]) -> NodeSpec:
    """bag_player next to policy_node: unless told otherwise, it plays once every topic of
    the bag that policy_node reads (and /clock, on sim time) has a matched subscriber, so
    no message is lost to discovery (under ros2 launch the nodes are separate processes)."""
    policy = next((s for s in specs if s.name == "policy_node"), None)
    p = spec.parameters
    if spec.name != "bag_player" or policy is None or "wait_for_subscribers" in p:
        return spec
    q = policy.parameters
    inputs = [*q.get("camera_topics", []), q.get("tactile_topic", ""),
              q.get("joint_states_topic", ""), q.get("prompt_topic", "")]
    in_bag = bag_topics(p.get("bag_path", ""))
    wanted = [t for t in inputs if t and t in in_bag]
    if p.get("publish_clock", True) and q.get("use_sim_time", False):
        wanted.insert(0, p.get("clock_topic", "/clock"))
    if not wanted:
        return spec
    return NodeSpec(spec.kind, {**p, "wait_for_subscribers": wanted})


# Model files a relative path may name: resolved against the working directory first,
# then the package share (share_dir(): the source checkout for `make setup`'s editable
# install, <prefix>/share/restac_ros for a colcon install), so the YAML's
# `.cache/demo_policy` works from any directory.
MODEL_PATHS = ("checkpoint_dir", "tokenizer_path", "vqvae_checkpoint")


def resolve_path(value: str, name: str) -> str:
    """'' stays ''; an absolute path stays; a relative one is made absolute (see above);
    a path found in neither place is an error naming where it was looked for."""
    if not value:
        return value
    path = Path(value).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        from restac_ros.paths import share_dir

        candidates = [Path.cwd() / path, share_dir() / path]
    for c in candidates:
        if c.exists():
            return str(c.resolve())
    raise FileNotFoundError(
        f"policy_node {name} {value!r} not found (looked at {', '.join(map(str, candidates))})"
    )


def resolve_model_paths(params: dict[str, Any]) -> None:
    for name in MODEL_PATHS:
        if isinstance(params.get(name), str):
            params[name] = resolve_path(params[name], name)


# sim_node parameter naming a topic -> its type, recorded next to the pipeline's topics
SIM_RECORDED = {
    "contact_topic": "std_msgs/msg/Bool",
    "slip_topic": "std_msgs/msg/Bool",
    "wrench_topic": "geometry_msgs/msg/WrenchStamped",
    "episode_topic": "std_msgs/msg/String",
    "verdict_topic": "std_msgs/msg/Header",
}


def recorder_spec(recorder: NodeSpec, others: Sequence[NodeSpec], params_file) -> NodeSpec:
    """The recorder's topics/types from the other nodes' parameters, and the run's
    provenance (params file, checkpoint) for the bag metadata."""
    from restac_ros.recording import pipeline_topics

    by_name = {s.name: s.parameters for s in others}
    topics = pipeline_topics(by_name)
    source = by_name.get("bag_player", {}).get("bag_path", "")
    if source:  # a replay: also every topic of the played bag (teacher, ground truth)
        topics = {**bag_topics(source), **topics}
    if (sim := by_name.get("sim_node")) is not None:  # the sim's ground truth and episodes
        topics = {**topics, **{sim[k]: t for k, t in SIM_RECORDED.items()}}
    params = dict(recorder.parameters)
    params["topics"], params["types"] = list(topics), list(topics.values())
    params["config_file"] = str(Path(params_file).absolute())
    params["checkpoint_dir"] = by_name.get("policy_node", {}).get("checkpoint_dir", "")
    params["source_bag"] = source
    policy = by_name.get("policy_node")
    live_sensors = policy is not None and not policy.get("reliable_inputs", False)
    if live_sensors:  # real drivers publish best effort; a reliable reader would not match
        params["best_effort_topics"] = [
            *policy["camera_topics"], policy["tactile_topic"], policy["joint_states_topic"]
        ]
    return NodeSpec(recorder.kind, params)


def describe(specs: Sequence[NodeSpec]) -> dict[str, dict[str, Any]]:
    """{node name: parameters}: what a launcher must reproduce (used by the tests)."""
    return {s.name: dict(s.parameters) for s in specs}
