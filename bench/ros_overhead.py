"""ROS overhead of policy_node, across processes over loopback DDS.

A publisher (this process) sends 3 cameras at 30 Hz (224x224 rgb8), tactile at
60 Hz (240x320 rgb8) and joints at 500 Hz to a policy_node child process and
receives its chunks. Per chunk: overhead = chunk received - publish time of the
last sensor message before the chunk's observation stamp - the model's
inference_ms. Dropped = published - received by the node (its /diagnostics).
Mode `echo` replaces policy_node by bench/echo_node.py (same subscriptions and QoS, an
empty chunk per joint message at 5 Hz): the floor of two DDS hops and the drops of
best-effort transport on this machine, with no model.

    .venv/bin/python bench/ros_overhead.py [--seconds 20] [--modes joints,timer]
        [--checkpoint DIR] [--write-results]
"""

from __future__ import annotations

import argparse
import bisect
import json
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

from results_md import write_section  # noqa: E402  (bench/ is on sys.path)

from restac_ros.dds_env import apply_loopback_env  # noqa: E402

STREAMS = {  # stream -> (topic, Hz, (h, w) or None for joints)
    "base_0_rgb": ("/camera/base/image_raw", 30.0, (224, 224)),
    "left_wrist_0_rgb": ("/camera/left_wrist/image_raw", 30.0, (224, 224)),
    "right_wrist_0_rgb": ("/camera/right_wrist/image_raw", 30.0, (224, 224)),
    "tactile": ("/tactile/image_raw", 60.0, (240, 320)),
    "joints": ("/joint_states", 500.0, None),
}
HEADING = "## ROS overhead (CPU, 2-core x86_64 dev machine)"
ECHO = "echo"  # mode: bench/echo_node.py instead of policy_node (the DDS floor, no model)


def make_params(checkpoint: Path, mode: str, dst: Path) -> Path:
    from restac_ros.paths import config_path

    data = yaml.safe_load(config_path("policy.yaml").read_text())
    data["policy_node"]["ros__parameters"].update(
        autostart=True,
        checkpoint_dir=str(checkpoint),
        tick_on=mode,
        rate_hz=5.0,
        diagnostics_period_s=0.5,
        default_prompt="pick up the cube",
    )
    dst.write_text(yaml.safe_dump(data))
    return dst


class Bench:
    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from restac_ros.msg import ActionChunk
        from sensor_msgs.msg import Image, JointState

        from restac_ros.nodes import qos

        self.node = rclpy.create_node("ros_overhead_bench")
        self.sent: dict[str, int] = {s: 0 for s in STREAMS}
        self.pub_times: list[tuple[int, float]] = []  # (stamp ns, wall s), all streams
        self.chunks: list[tuple[float, object]] = []
        self.status: dict[str, str] = {}
        self._pubs, self._msgs = {}, {}
        for stream, (topic, hz, shape) in STREAMS.items():
            if shape is None:
                msg = JointState(
                    name=[f"joint{i}" for i in range(1, 8)] + ["gripper"], position=[0.0] * 8
                )
                self._pubs[stream] = self.node.create_publisher(JointState, topic, qos.SENSOR)
            else:
                h, w = shape
                msg = Image(
                    height=h,
                    width=w,
                    encoding="rgb8",
                    step=w * 3,
                    data=np.random.default_rng(0).integers(0, 255, h * w * 3, np.uint8).tobytes(),
                )
                self._pubs[stream] = self.node.create_publisher(Image, topic, qos.SENSOR)
            self._msgs[stream] = msg
            self.node.create_timer(1.0 / hz, lambda s=stream: self._publish(s))
        self.node.create_subscription(
            ActionChunk,
            "/restac/action_chunk",
            lambda m: self.chunks.append((time.time(), m)),
            qos.OUTPUT,
        )
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diag, qos.DIAGNOSTICS
        )
        self.publishing = False

    def _publish(self, stream: str) -> None:
        if not self.publishing:
            return
        msg = self._msgs[stream]
        now = time.time()
        ns = int(now * 1e9)
        msg.header.stamp.sec, msg.header.stamp.nanosec = ns // 10**9, ns % 10**9
        if stream == "joints":
            msg.position = [0.1 * np.sin(now + i) for i in range(8)]
        self._pubs[stream].publish(msg)
        self.pub_times.append((ns, time.time()))
        self.sent[stream] += 1

    def _on_diag(self, msg) -> None:
        for s in msg.status:
            if s.name == "restac: policy_node":
                self.status = {kv.key: kv.value for kv in s.values}
                self.status["_message"] = s.message

    def overhead_ms(self) -> tuple[np.ndarray, np.ndarray]:
        stamps = [s for s, _ in self.pub_times]
        total, overhead = [], []
        for wall, chunk in self.chunks:
            obs_ns = chunk.header.stamp.sec * 10**9 + chunk.header.stamp.nanosec
            i = bisect.bisect_right(stamps, obs_ns) - 1
            if i < 0:
                continue
            latency = (wall - self.pub_times[i][1]) * 1e3
            total.append(latency)
            overhead.append(latency - chunk.inference_ms)
        return np.asarray(total), np.asarray(overhead)


def _start(mode: str, checkpoint: Path, work: Path):
    """The process under test: policy_node, or echo_node.py for the DDS floor."""
    if mode == ECHO:
        cmd = [sys.executable, str(ROOT / "bench" / "echo_node.py"), "--rate", "5"]
        return subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.PIPE, text=True)
    params = make_params(checkpoint, mode, work / f"params_{mode}.yaml")
    log = (work / f"policy_node_{mode}.log").open("w")
    cmd = [sys.executable, "-m", "restac_ros.nodes.policy_node", "--ros-args",
           "--params-file", str(params)]
    return subprocess.Popen(cmd, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)


def _ready(mode: str, bench: Bench) -> bool:
    if mode == ECHO:  # every sensor topic and the chunk topic matched
        node = bench.node
        return node.count_publishers("/restac/action_chunk") > 0 and all(
            node.count_subscribers(topic) > 0 for topic, _, _ in STREAMS.values())
    return bench.status.get("lifecycle") == "active"


def run_mode(mode: str, checkpoint: Path, seconds: float, work: Path) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    proc = _start(mode, checkpoint, work)
    rclpy.init()
    bench = Bench()
    executor = SingleThreadedExecutor()
    executor.add_node(bench.node)
    try:
        deadline = time.monotonic() + 600
        while not _ready(mode, bench):
            executor.spin_once(timeout_sec=0.1)
            failed = "configure failed" in bench.status.get("_message", "")
            if failed or proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{mode}: the node under test did not start (logs in {work})")
        time.sleep(0.5)
        bench.publishing = True
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
        bench.publishing = False
        end = time.monotonic() + 2.0  # in-flight chunk + one more diagnostics period
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        total, overhead = bench.overhead_ms()
        if mode == ECHO:
            proc.terminate()
            counts = json.loads(proc.communicate(timeout=30)[0].strip().splitlines()[-1])
            received = {s: counts[topic] for s, (topic, _, _) in STREAMS.items()}
        else:
            received = {s: int(bench.status.get(f"stream.{s}.received", 0)) for s in STREAMS}
        node_p50 = float(bench.status.get("node_overhead_ms_p50", "nan"))
        node_p99 = float(bench.status.get("node_overhead_ms_p99", "nan"))
        return dict(
            mode=mode,
            chunks=len(bench.chunks),
            total=total,
            overhead=overhead,
            sent=dict(bench.sent),
            received=received,
            preprocess_ms=bench.status.get("preprocess_ms_mean", "nan"),
            node_p50=node_p50,
            node_p99=node_p99,
            inference_ms=float(np.mean([c.inference_ms for _, c in bench.chunks]))
            if bench.chunks
            else float("nan"),
            seconds=seconds,
            status=dict(bench.status),
        )
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        executor.shutdown(timeout_sec=2.0)
        bench.node.destroy_node()
        rclpy.try_shutdown()


def table(results: list[dict]) -> str:
    lines = [
        "| tick_on | chunks | overhead p50 / p99 / max (ms) | in-node tick->chunk published "
        "p50 / p99 (ms) | build mean (ms) | model mean (ms) | dropped in node (cams / tactile / "
        "joints) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        o = r["overhead"]
        pct = (
            f"{np.percentile(o, 50):.2f} / {np.percentile(o, 99):.2f} / {o.max():.2f}"
            if o.size
            else "n/a"
        )
        drop = {s: r["sent"][s] - r["received"][s] for s in STREAMS}
        cams = sum(drop[s] for s in ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"))
        sent_cams = sum(
            r["sent"][s] for s in ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
        )
        node = ("n/a" if np.isnan(r["node_p50"])
                else f"{r['node_p50']:.2f} / {r['node_p99']:.2f}")
        build = float(r["preprocess_ms"])
        lines.append(
            f"| {r['mode']} | {r['chunks']} | {pct} | {node} "
            f"| {'n/a' if np.isnan(build) else f'{build:.2f}'} "
            f"| {r['inference_ms']:.1f} | {cams}/{sent_cams} / {drop['tactile']}/"
            f"{r['sent']['tactile']} / {drop['joints']}/{r['sent']['joints']} |"
        )
    return "\n".join(lines)


def default_checkpoint(work: Path) -> Path:
    demo = ROOT / ".cache" / "demo_policy"
    if (demo / "restac_config.json").is_file():
        return demo
    from test.nodes.checkpoints import make_tiny_checkpoint

    return make_tiny_checkpoint(work / "tiny_policy" / "ckpt")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--modes", default="echo,joints,timer",
                    help="tick_on values to measure; echo: bench/echo_node.py, no policy")
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--show-status", action="store_true",
                    help="print policy_node's last /diagnostics values per mode")
    args = ap.parse_args(argv)
    apply_loopback_env()
    sys.setswitchinterval(0.0005)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    work = Path(tempfile.mkdtemp(prefix="restac_ros_overhead_"))
    checkpoint = args.checkpoint or default_checkpoint(work)
    results = [run_mode(m, checkpoint, args.seconds, work) for m in args.modes.split(",")]
    if args.show_status:
        for r in results:
            print(f"--- {r['mode']}: policy_node /diagnostics")
            for k, v in sorted(r["status"].items()):
                if not k.startswith("stream."):
                    print(f"  {k} = {v}")
    text = table(results)
    notes = (
        f"\n{args.seconds:g} s per mode; publisher and listener in one process, policy_node "
        f"in another (loopback UDP, Fast DDS); checkpoint `{checkpoint.name}`. overhead = "
        "chunk received - publish of the last sensor message before the observation stamp "
        "- inference_ms (the model call: upload, sampling, download); it includes the wait "
        "for the tick (timer mode), assembling the observation (images converted on arrival, "
        "`prepare_images_on_arrival`) and both DDS hops. Dropped = published - received by the "
        "node."
    )
    print(text + "\n" + notes)
    if args.write_results:
        write_section(HEADING, text + "\n" + notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
