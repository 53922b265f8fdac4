"""The RViz configs in config/ (restac.rviz: joint spaces, restac_ee.rviz: EE spaces).

Built from the nodes' parameters, so every display names a topic the pipeline
publishes for that action space (the EE path exists only for EE spaces) and the
Fixed Frame is the frame the chunks are in, with tactile_link under it on
/tf_static (frame_publisher). `python -m restac_ros.rviz_config` rewrites both files
from config/policy.yaml; a test checks the committed files are what it writes.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

CONFIGS = {"joint": "restac.rviz", "ee": "restac_ee.rviz"}


def config_name(action_space: str) -> str:
    return CONFIGS["ee" if str(action_space).startswith("ee") else "joint"]


def _topic(name: str, reliable: bool = True, depth: int = 5) -> dict[str, Any]:
    return {
        "Depth": depth,
        "Durability Policy": "Volatile",
        "History Policy": "Keep Last",
        "Reliability Policy": "Reliable" if reliable else "Best Effort",
        "Value": name,
    }


def displays(params: Mapping[str, Mapping[str, Any]], ee: bool) -> list[dict[str, Any]]:
    policy, monitor = params["policy_node"], params["tactile_monitor"]
    out: list[dict[str, Any]] = [
        {"Class": "rviz_default_plugins/Grid", "Enabled": True, "Name": "Grid",
         "Reference Frame": "<Fixed Frame>", "Value": True},
        {"Class": "rviz_default_plugins/TF", "Enabled": True, "Name": "TF",
         "Show Names": True, "Marker Scale": 0.3, "Value": True},
        {"Class": "rviz_default_plugins/MarkerArray", "Enabled": True,
         "Name": "Tactile uncertainty", "Namespaces": {"restac_tactile": True},
         "Topic": _topic(monitor["markers_topic"]), "Value": True},
    ]
    if ee:
        out.append(
            {"Class": "rviz_default_plugins/Path", "Enabled": True, "Name": "Chunk EE path",
             "Alpha": 1, "Buffer Length": 1, "Color": "25; 102; 255", "Line Style": "Lines",
             "Line Width": 0.005, "Pose Style": "Axes",
             "Topic": _topic(policy["ee_path_topic"]), "Value": True}
        )
    out.append(
        {"Class": "rviz_default_plugins/Image", "Enabled": True, "Name": "Tactile overlay",
         "Normalize Range": True, "Topic": _topic(monitor["overlay_topic"]), "Value": True}
    )
    out.append(
        {"Class": "rviz_default_plugins/Image", "Enabled": True, "Name": "Base camera",
         "Normalize Range": True, "Topic": _topic(policy["camera_topics"][0], reliable=False),
         "Value": True}
    )
    return out


def rviz_config(params: Mapping[str, Mapping[str, Any]], ee: bool) -> dict[str, Any]:
    fixed = params["policy_node"]["ee_frame_id"] or "base_link"
    return {
        "Panels": [
            {"Class": "rviz_common/Displays", "Name": "Displays"},
            {"Class": "rviz_common/Views", "Name": "Views"},
        ],
        "Visualization Manager": {
            "Class": "",
            "Displays": displays(params, ee),
            "Enabled": True,
            "Global Options": {"Background Color": "48; 48; 48", "Fixed Frame": fixed,
                               "Frame Rate": 30},
            "Name": "root",
            "Tools": [{"Class": "rviz_default_plugins/Interact"},
                      {"Class": "rviz_default_plugins/MoveCamera"},
                      {"Class": "rviz_default_plugins/Select"}],
            "Value": True,
            "Views": {
                "Current": {"Class": "rviz_default_plugins/Orbit", "Distance": 1.5,
                            "Focal Point": {"X": 0.3, "Y": 0, "Z": 0.2},
                            "Name": "Current View", "Pitch": 0.5,
                            "Target Frame": "<Fixed Frame>", "Value": "Orbit (rviz)",
                            "Yaw": 0.8},
                "Saved": None,
            },
        },
        "Window Geometry": {"Height": 900, "Width": 1400},
    }


def render(params: Mapping[str, Mapping[str, Any]], ee: bool) -> str:
    header = (
        "# Written by `python -m restac_ros.rviz_config` from config/policy.yaml "
        f"({'EE' if ee else 'joint'} action spaces).\n"
    )
    return header + yaml.safe_dump(rviz_config(params, ee), sort_keys=False)


def display_topics(text: str) -> list[str]:
    """Topic of every display of an .rviz file."""
    data = yaml.safe_load(text)
    return [d["Topic"]["Value"] for d in data["Visualization Manager"]["Displays"]
            if "Topic" in d]


def main(argv: list[str] | None = None) -> int:
    from restac_ros.nodes.launch_description import read_params_file
    from restac_ros.paths import share_dir

    config = share_dir() / "config"
    params = read_params_file(config / "policy.yaml")
    for kind, name in CONFIGS.items():
        Path(config / name).write_text(render(params, kind == "ee"))
        print(f"wrote {config / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
