#!/usr/bin/env python3
"""Render docs/img/tactile_overlay.png: the tactile_monitor overlay for one in-contact
frame of a sample bag (the same drawing function the node publishes with).

Usage: render_overlay_example.py BAG [OUT.png] [--logvar X --gate G --codes C...]
The numbers drawn are the ones given on the command line (an illustration).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from rosbags.highlevel import AnyReader

from restac_ros.core.images import decode_image
from restac_ros.nodes.tactile_drawing import normalised_logvar, overlay, summary_text
from restac_ros.sample_bag.inspect import read_contact_intervals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bag", type=Path)
    ap.add_argument("out", type=Path, nargs="?", default=Path("docs/img/tactile_overlay.png"))
    ap.add_argument("--logvar", type=float, default=-1.0)
    ap.add_argument("--gate", type=float, default=0.6)
    ap.add_argument("--codes", type=int, nargs="*", default=[17])
    ap.add_argument("--mode", default="vqvae")
    args = ap.parse_args(argv)

    start, end = read_contact_intervals(args.bag)[0]
    target = start + (end - start) // 3
    baseline = frame = None
    with AnyReader([args.bag]) as reader:
        conns = [c for c in reader.connections if c.topic == "/tactile/image_raw"]
        for conn, stamp, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            rgb = decode_image(msg.data, msg.encoding, msg.height, msg.width, msg.step)
            if baseline is None:
                baseline = rgb
            if stamp >= target:
                frame = rgb
                break
    if frame is None:
        print(f"no tactile frame in contact found in {args.bag}", file=sys.stderr)
        return 1
    level = normalised_logvar(args.logvar, -4.0, 2.0)
    text = summary_text(np.array(args.codes), args.logvar, args.gate, args.mode, True)
    head, _, tail = text.partition(" logvar ")
    lines = [head, "logvar " + tail]
    img = overlay(frame, baseline, level, lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
