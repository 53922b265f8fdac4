"""Soak: policy_node + chunk_executor under full sensor load for --minutes (default 60).

This process publishes 3 cameras at 30 Hz (224x224 rgb8), tactile at 60 Hz (240x320
rgb8) and joints at 500 Hz over loopback DDS to a policy_node and a chunk_executor, each
in its own child process, and listens to their chunks, commands and /diagnostics. Every
--report-s (default 60) it prints one row: per child process RSS (MB), threads and open
fds (from /proc), the chunk and command rates of that interval, non-finite or
out-of-limit values seen in chunks/commands, and both nodes' /diagnostics level. At the
end: RSS growth after the first interval and the totals.

    .venv/bin/python bench/soak.py [--minutes 60] [--report-s 60] [--checkpoint DIR]
        [--write-results]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from restac_ros.dds_env import apply_loopback_env  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from results_md import write_section  # noqa: E402  (bench/ is on sys.path)
from ros_overhead import STREAMS  # noqa: E402  (the same sensor load as the overhead bench)

JOINTS = [f"joint{i}" for i in range(1, 8)] + ["gripper"]
HEADING = "## Soak: policy_node + chunk_executor under full sensor load"
NODES = ("policy_node", "chunk_executor")
LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}


def write_params(checkpoint: Path, dst: Path) -> tuple[Path, dict]:
    from restac_ros.paths import config_path

    data = yaml.safe_load(config_path("policy.yaml").read_text())
    data["policy_node"]["ros__parameters"].update(
        autostart=True, checkpoint_dir=str(checkpoint), tick_on="timer", rate_hz=5.0,
        default_prompt="pick up the cube",
    )
    dst.write_text(yaml.safe_dump(data))
    return dst, data["chunk_executor"]["ros__parameters"]


def proc_stats(pid: int) -> tuple[float, int, int]:
    """(RSS MB, threads, open fds) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    rss_mb = int(fields["VmRSS"].split()[0]) / 1024
    threads = int(fields["Threads"])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_mb, threads, fds


class Load:
    """Sensor publisher + listener of chunks, commands and /diagnostics."""

    def __init__(self, limits: dict) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from restac_ros.msg import ActionChunk
        from sensor_msgs.msg import Image, JointState

        from restac_ros.nodes import qos

        self.node = rclpy.create_node("restac_soak")
        self.lo = np.asarray(limits["position_min"], float)
        self.hi = np.asarray(limits["position_max"], float)
        self.sent = dict.fromkeys(STREAMS, 0)
        self.chunks = self.commands = self.bad_chunks = self.bad_commands = 0
        self.levels: dict[str, str] = {}
        self.policy_values: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.publishing = False
        self._pubs, self._msgs = {}, {}
        rng = np.random.default_rng(0)
        for stream, (topic, hz, shape) in STREAMS.items():
            if shape is None:
                msg, kind = JointState(name=JOINTS, position=[0.0] * 8), JointState
            else:
                h, w = shape
                msg = Image(height=h, width=w, encoding="rgb8", step=w * 3,
                            data=rng.integers(0, 255, h * w * 3, np.uint8).tobytes())
                kind = Image
            self._pubs[stream] = self.node.create_publisher(kind, topic, qos.SENSOR)
            self._msgs[stream] = msg
            self.node.create_timer(1.0 / hz, lambda s=stream: self._publish(s))
        self.node.create_subscription(ActionChunk, "/restac/action_chunk", self._on_chunk,
                                      qos.OUTPUT)
        self.node.create_subscription(JointState, "/restac/command", self._on_command,
                                      qos.COMMAND)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag,
                                      qos.DIAGNOSTICS)

    def _publish(self, stream: str) -> None:
        if not self.publishing:
            return
        msg = self._msgs[stream]
        now = time.time()
        ns = int(now * 1e9)
        msg.header.stamp.sec, msg.header.stamp.nanosec = ns // 10**9, ns % 10**9
        if stream == "joints":
            msg.position = [0.1 * math.sin(0.5 * now + i) for i in range(7)] + [0.04]
        self._pubs[stream].publish(msg)
        self.sent[stream] += 1

    def _on_chunk(self, msg) -> None:
        self.chunks += 1
        self.bad_chunks += int(not np.all(np.isfinite(np.asarray(msg.actions))))

    def _on_command(self, msg) -> None:
        self.commands += 1
        p = np.asarray(msg.position, float)
        ok = p.shape == self.lo.shape and np.all(np.isfinite(p)) and np.all(
            (p >= self.lo - 1e-9) & (p <= self.hi + 1e-9))
        self.bad_commands += int(not ok)

    def _on_diag(self, msg) -> None:
        for s in msg.status:
            name = s.name.removeprefix("restac: ")
            if name in NODES:
                level = s.level[0] if isinstance(s.level, bytes | bytearray) else int(s.level)
                self.levels[name] = LEVELS.get(level, str(level))
                self.messages[name] = s.message[:80]
                if name == "policy_node":
                    self.policy_values = {kv.key: kv.value for kv in s.values}


def start(module: str, params: Path, log_dir: Path) -> subprocess.Popen:
    log = (log_dir / f"{module}.log").open("w")
    cmd = [sys.executable, "-m", f"restac_ros.nodes.{module}", "--ros-args",
           "--params-file", str(params)]
    return subprocess.Popen(cmd, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)


HEADER = ("| min | policy_node RSS MB / threads / fds | chunk_executor RSS MB / threads / fds "
          "| chunks/s | commands/s | joints sent/s | bad chunks / commands | diagnostics |")


def run(minutes: float, report_s: float, checkpoint: Path, work: Path) -> list[dict]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    params, executor_params = write_params(checkpoint, work / "params.yaml")
    procs = {name: start(name, params, work) for name in NODES}
    rclpy.init()
    load = Load(executor_params)
    executor = SingleThreadedExecutor()
    executor.add_node(load.node)
    rows: list[dict] = []
    try:
        deadline = time.monotonic() + 600
        while load.policy_values.get("lifecycle") != "active":
            executor.spin_once(timeout_sec=0.1)
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise SystemExit(f"{dead or 'policy_node'} did not start (logs in {work})")
        load.publishing = True
        print(HEADER + "\n|---|---|---|---|---|---|---|---|", flush=True)
        start_t = time.monotonic()
        last = dict(t=start_t, chunks=0, commands=0, joints=0)
        for k in range(1, math.ceil(minutes * 60 / report_s) + 1):
            end = start_t + k * report_s
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.01)
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead:
                raise SystemExit(f"{dead} exited during the soak (logs in {work})")
            now = time.monotonic()
            span = now - last["t"]
            row = dict(minute=(now - start_t) / 60,
                       stats={n: proc_stats(p.pid) for n, p in procs.items()},
                       chunk_rate=(load.chunks - last["chunks"]) / span,
                       command_rate=(load.commands - last["commands"]) / span,
                       joint_rate=(load.sent["joints"] - last["joints"]) / span,
                       bad=(load.bad_chunks, load.bad_commands),
                       levels=dict(load.levels), messages=dict(load.messages))
            last = dict(t=now, chunks=load.chunks, commands=load.commands,
                        joints=load.sent["joints"])
            rows.append(row)
            print(format_row(row), flush=True)
        return rows
    finally:
        load.publishing = False
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        executor.shutdown(timeout_sec=2.0)
        load.node.destroy_node()
        rclpy.try_shutdown()


def format_row(r: dict) -> str:
    cells = [f"{r['minute']:.1f}"]
    for name in NODES:
        rss, threads, fds = r["stats"][name]
        cells.append(f"{rss:.0f} / {threads} / {fds}")
    cells += [f"{r['chunk_rate']:.2f}", f"{r['command_rate']:.0f}", f"{r['joint_rate']:.0f}",
              f"{r['bad'][0]} / {r['bad'][1]}",
              ", ".join(f"{n}: {r['levels'].get(n, '?')}" for n in NODES)]
    return "| " + " | ".join(cells) + " |"


def summary(rows: list[dict]) -> str:
    if not rows:
        return "no rows"
    parts = []
    for name in NODES:
        first, final = rows[0]["stats"][name], rows[-1]["stats"][name]
        parts.append(f"{name}: RSS {first[0]:.0f} -> {final[0]:.0f} MB "
                     f"({final[0] - first[0]:+.1f} MB after the first interval), threads "
                     f"{first[1]} -> {final[1]}, fds {first[2]} -> {final[2]}")
    rates = [r["chunk_rate"] for r in rows]
    parts.append(f"chunk rate {min(rates):.2f}..{max(rates):.2f}/s; bad chunks / commands "
                 f"{rows[-1]['bad'][0]} / {rows[-1]['bad'][1]}; last messages: "
                 + "; ".join(f"{n}: {m}" for n, m in rows[-1]["messages"].items()))
    return "\n".join(f"- {p}" for p in parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--report-s", type=float, default=60.0, help="seconds between rows")
    ap.add_argument("--checkpoint", type=Path, default=ROOT / ".cache" / "demo_policy")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    if not (args.checkpoint / "restac_config.json").is_file():
        raise SystemExit(f"no checkpoint in {args.checkpoint} (make demo-policy builds one)")
    apply_loopback_env()
    sys.setswitchinterval(0.0005)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    work = Path(tempfile.mkdtemp(prefix="restac_ros_soak_"))
    rows = run(args.minutes, args.report_s, args.checkpoint, work)
    text = "\n".join([HEADER, "|---|---|---|---|---|---|---|---|",
                      *(format_row(r) for r in rows)])
    notes = (f"\n{args.minutes:g} min, a row every {args.report_s:g} s; 3 cameras 30 Hz "
             "224x224 rgb8 + tactile 60 Hz 240x320 rgb8 + joints 500 Hz from this process, "
             "policy_node (tick_on timer, 5 Hz, config/policy.yaml) and chunk_executor "
             f"(100 Hz) in their own processes; checkpoint `{args.checkpoint.name}`; logs in "
             f"{work}.\n\n" + summary(rows))
    print(notes)
    if args.write_results:
        write_section(HEADING, text + "\n" + notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
