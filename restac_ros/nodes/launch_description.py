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
    )
}

# Which nodes each launch file starts.
LAUNCHES: dict[str, tuple[str, ...]] = {
    "policy": ("policy_node", "chunk_executor"),
    "policy+monitor": ("policy_node", "chunk_executor", "tactile_monitor"),
    "replay": ("bag_player", "policy_node", "chunk_executor", "tactile_monitor"),
    "monitor": ("tactile_monitor",),
}

# Per-launch defaults over the YAML (overrides still win). replay: the same ticks, seeds and
# so chunks as restac-eval over the bag (restac_ros.core.ticks), lossless sensor transport.
LAUNCH_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "replay": {
        "policy_node": {"tick_on": "stamps", "reliable_inputs": True},
        "bag_player": {"reliable": True},
    },
}


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
        return self.kind.name


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
) -> dict[str, dict[str, Any]]:
    """Launch arguments -> per-node parameter overrides ('' / None = keep the YAML's)."""
    per_node: dict[str, dict[str, Any]] = {"*": {}}
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


def node_specs(
    params_file: str | Path,
    launch: str = "policy",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[NodeSpec]:
    """The nodes of `launch` with their parameters: YAML section, then `/**`, then overrides
    (key "*" applies to every node). Lifecycle nodes get autostart False: the launcher
    drives their transitions."""
    if launch not in LAUNCHES:
        raise ValueError(f"unknown launch {launch!r}; known: {sorted(LAUNCHES)}")
    sections = read_params_file(params_file)
    overrides = overrides or {}
    specs = []
    for name in LAUNCHES[launch]:
        kind = KINDS[name]
        params = {**sections.get("**", {}), **sections.get(name, {}),
                  **LAUNCH_DEFAULTS.get(launch, {}).get(name, {})}
        params.update(overrides.get("*", {}))
        params.update(overrides.get(name, {}))
        if kind.lifecycle:
            params["autostart"] = False
        specs.append(NodeSpec(kind, params))
    return specs


def describe(specs: Sequence[NodeSpec]) -> dict[str, dict[str, Any]]:
    """{node name: parameters}: what a launcher must reproduce (used by the tests)."""
    return {s.name: dict(s.parameters) for s in specs}
