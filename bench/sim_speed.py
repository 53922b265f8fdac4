#!/usr/bin/env python3
"""restac_sim speed: ms per part of a 15 Hz tick, and the sim's real-time factor.

A tick (1/15 s of sim time) is 20 base steps (40 physics steps + contact ground
truth), 3 RGB renders (224x224) and 2 tactile frames (30 Hz: depth render +
GelSight shading). Measured during a scripted grasp (contacts active), median of
repeated runs. `MUJOCO_GL=osmesa python bench/sim_speed.py` measures the fallback.

    python bench/sim_speed.py [--ticks 60] [--tactile-shape 240x320]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restac_ros.sim.cli import parse_shape  # noqa: E402  (sets MUJOCO_GL first)
from restac_ros.sim.env import BASE_RATE_HZ, SUBSTEPS, SimConfig, SimEnv  # noqa: E402
from restac_ros.sim.expert import TICK_HZ, ScriptedExpert  # noqa: E402
from restac_ros.sim.ik import ArmIK  # noqa: E402
from restac_ros.sim.tactile import TactileConfig, indentation_from_depth  # noqa: E402

STEPS_PER_TICK = BASE_RATE_HZ // TICK_HZ


def ms(f) -> float:
    t0 = time.perf_counter()
    f()
    return (time.perf_counter() - t0) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--tactile-shape", type=parse_shape, default=(128, 160))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = SimConfig(tactile=TactileConfig(shape=args.tactile_shape))
    rows: dict[str, list[float]] = {
        k: [] for k in ("physics", "rgb3", "tactile_depth", "tactile_image", "expert", "tick")
    }
    with SimEnv(config) as env:
        task = env.reset(args.seed)
        expert = ScriptedExpert(ArmIK(env.model), task.obj)
        for _ in range(40):  # to the closing phase: the bench runs with contacts
            cmd = expert.act(env.tcp_pose()[0], env.joint_positions()[7], env.contact())
            for _ in range(STEPS_PER_TICK):
                env.step(cmd)
        for _ in range(args.ticks):
            t_tick = time.perf_counter()
            t0 = time.perf_counter()
            cmd = expert.act(env.tcp_pose()[0], env.joint_positions()[7], env.contact())
            t_exp = (time.perf_counter() - t0) * 1e3
            phys = depth_ms = shade_ms = 0.0
            rgb_ms = ms(env.render_cameras)
            for j in range(STEPS_PER_TICK):
                if j % (STEPS_PER_TICK // 2) == 0:
                    t0 = time.perf_counter()
                    depth = env.tactile_depth()
                    t1 = time.perf_counter()
                    env._shader.render(indentation_from_depth(depth), env.contact().shear_n)
                    t2 = time.perf_counter()
                    depth_ms += (t1 - t0) * 1e3
                    shade_ms += (t2 - t1) * 1e3
                phys += ms(lambda: env.step(cmd))  # noqa: B023 (called at once)
            rows["physics"].append(phys)
            rows["rgb3"].append(rgb_ms)
            rows["tactile_depth"].append(depth_ms)
            rows["tactile_image"].append(shade_ms)
            rows["expert"].append(t_exp)
            rows["tick"].append((time.perf_counter() - t_tick) * 1e3 - t_exp)
        phase = expert.state.phase
    med = {k: statistics.median(v) for k, v in rows.items()}
    shape = "x".join(map(str, args.tactile_shape))
    print(f"# restac_sim speed, MUJOCO_GL={os.environ.get('MUJOCO_GL')}, tactile {shape}, "
          f"{args.ticks} ticks from the closing phase (ended in '{phase}'), "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print("| part of one 15 Hz tick | ms (median) |")
    print("|---|---|")
    print(f"| physics: {STEPS_PER_TICK * SUBSTEPS} mj_step + {STEPS_PER_TICK} contact reads "
          f"| {med['physics']:.2f} |")
    print(f"| 3 RGB renders 224x224 | {med['rgb3']:.2f} |")
    print(f"| tactile depth render x2 ({shape}) | {med['tactile_depth']:.2f} |")
    print(f"| tactile GelSight image x2 ({shape}) | {med['tactile_image']:.2f} |")
    print(f"| whole tick (sim only) | {med['tick']:.2f} |")
    print(f"| scripted expert (IK) per tick, not in the tick row | {med['expert']:.2f} |")
    print(f"real-time factor (sim only): {1000 / TICK_HZ / med['tick']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
