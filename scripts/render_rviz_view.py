#!/usr/bin/env python3
"""Render docs/img/rviz_view.png: what config/restac.rviz shows, drawn from the messages
of a restac-record recording (rviz2 does not install from PyPI and no other viewer
runs headless here; see README "RViz").

Panels as in the RViz config: the 3D view (Grid, TF frames from /tf_static, the
"Tactile uncertainty" MarkerArray: sphere coloured by logvar and sized by the gate,
the text marker), "Tactile overlay" and "Base camera" (the Image messages' pixels as
published). One moment is shown: the markers message with the highest uncertainty,
and the overlay / camera image nearest to it.

Usage: render_rviz_view.py RECORDING [OUT.png]
Make a recording:  restac-bringup --launch replay --use-sim-time --bag BAG \
                     --record REC --exit-when-bag-done
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rosbags.rosbag2 import Reader  # noqa: E402

from restac_ros.core.images import decode_image  # noqa: E402
from restac_ros.eval.prediction_bag import make_typestore  # noqa: E402
from restac_ros.rviz_config import display_topics  # noqa: E402

CONFIG = Path(__file__).resolve().parent.parent / "config" / "restac.rviz"


def quat_matrix(q) -> np.ndarray:
    x, y, z, w = q.x, q.y, q.z, q.w
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def read(bag: Path, topics: set[str]) -> dict[str, list[tuple[int, object]]]:
    store = make_typestore()
    out: dict[str, list] = {t: [] for t in topics}
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic in topics]
        for conn, t, raw in reader.messages(connections=conns):
            out[conn.topic].append((t, store.deserialize_cdr(raw, conn.msgtype)))
    return out


def frames_in(tf_msgs) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """child -> (rotation, translation) in the root frame (static tree)."""
    edges = {}
    for _, m in tf_msgs:
        for tr in m.transforms:
            v = tr.transform.translation
            edges[tr.child_frame_id] = (tr.header.frame_id, quat_matrix(tr.transform.rotation),
                                        np.array([v.x, v.y, v.z]))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def resolve(frame: str):
        if frame in out:
            return out[frame]
        if frame not in edges:
            out[frame] = (np.eye(3), np.zeros(3))
            return out[frame]
        parent, r, t = edges[frame]
        pr, pt = resolve(parent)
        out[frame] = (pr @ r, pr @ t + pt)
        return out[frame]

    for child, (parent, _, _) in edges.items():
        resolve(child)
        resolve(parent)
    return out


def nearest(msgs, t_ns: int):
    return min(msgs, key=lambda m: abs(m[0] - t_ns))[1]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    bag = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else Path("docs/img/rviz_view.png")
    shown = display_topics(CONFIG.read_text())
    markers_topic, overlay_topic, camera_topic = shown[0], shown[1], shown[2]
    msgs = read(bag, {markers_topic, overlay_topic, camera_topic, "/tf_static"})
    missing = [t for t, m in msgs.items() if not m]
    if missing:
        print(f"{bag}: no messages on {missing}", file=sys.stderr)
        return 1
    frames = frames_in(msgs["/tf_static"])

    def uncertainty(entry) -> float:
        sphere = entry[1].markers[0]
        return sphere.color.r - sphere.color.g  # red = uncertain (tactile_drawing)

    t_ns, marker_array = max(msgs[markers_topic], key=uncertainty)
    fig = plt.figure(figsize=(14, 6.2), facecolor=(48 / 255,) * 3)
    ax = fig.add_subplot(1, 2, 1, projection="3d", facecolor=(48 / 255,) * 3)
    g = np.linspace(-0.5, 1.0, 16)
    for v in g:  # Grid (1 m cells of 0.1 m as in RViz's default grid, in the Fixed Frame)
        ax.plot([v, v], [g[0], g[-1]], [0, 0], color="0.55", lw=0.4)
        ax.plot([g[0], g[-1]], [v, v], [0, 0], color="0.55", lw=0.4)
    for name, (r, t) in frames.items():  # TF display: axes + names
        for axis, colour in zip(range(3), ("r", "g", "b"), strict=True):
            end = t + 0.1 * r[:, axis]
            ax.plot(*zip(t, end, strict=True), color=colour, lw=2)
        ax.text(*(t + [0, 0, 0.03]), name, color="white", fontsize=9)
    for m in marker_array.markers:
        r, t = frames.get(m.header.frame_id, (np.eye(3), np.zeros(3)))
        p = r @ np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z]) + t
        colour = (m.color.r, m.color.g, m.color.b, max(m.color.a, 0.3))
        if m.type == 2:  # SPHERE: ~450 px per metre at this zoom, 0.8 pt per px
            ax.scatter(*p, s=(m.scale.x * 450 * 0.8) ** 2, color=colour, depthshade=False,
                       edgecolors="white", linewidths=0.5)
        elif m.type == 9:  # TEXT_VIEW_FACING
            ax.text(*p, m.text, color="white", fontsize=8, ha="center")
        elif m.type == 4:  # LINE_STRIP (EE path)
            pts = np.array([[q.x, q.y, q.z] for q in m.points]) @ r.T + t
            ax.plot(pts[:, 0], pts[:, 1], pts[:, 2], color=colour, lw=1.5)
    ax.set_xlim(-0.2, 0.8)
    ax.set_ylim(-0.5, 0.5)
    ax.set_zlim(0, 0.6)
    ax.view_init(elev=28, azim=-128)
    ax.set_axis_off()
    ax.set_title(f"3D view: Fixed Frame base_link, TF, {markers_topic}", color="white",
                 fontsize=10)
    for i, (topic, title) in enumerate(((overlay_topic, "Tactile overlay"),
                                        (camera_topic, "Base camera"))):
        im = nearest(msgs[topic], t_ns)
        img = decode_image(im.data, im.encoding, im.height, im.width, im.step)
        a = fig.add_subplot(2, 2, 2 * (i + 1))
        a.imshow(np.asarray(img))
        a.set_title(f"{title}: {topic}", color="white", fontsize=10)
        a.set_axis_off()
    fig.suptitle(
        f"Rendered from the messages of {bag.name} (not a screenshot of rviz2), "
        f"bag time +{(t_ns - msgs[markers_topic][0][0]) / 1e9:.1f} s",
        color="0.8", fontsize=9, y=0.02,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, facecolor=fig.get_facecolor())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
