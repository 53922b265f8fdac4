"""policy_node: sensor topics -> ActionChunk (lifecycle node).

configure: load RestacPolicy, build the core's ObservationBuilder, compile
(warm-up), create publishers/subscriptions. activate: start ticking. Each
tick asks the core for a fresh synchronized sample (StreamBuffers +
ObservationBuilder.sample_from_buffers); the inference worker thread builds
the Observation, runs the policy and publishes. Callbacks only convert
messages into core types; every refusal is counted and shown on /diagnostics.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import deque

import numpy as np
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String

from restac_ros.core import ticks
from restac_ros.core.images import RawCompressedImage, RawImage
from restac_ros.core.observation import InvalidActions, InvalidObservation, ObservationBuilder
from restac_ros.core.observation_spec import delta_action_mask_from_meta
from restac_ros.nodes import conversions, diagnostics, policy_params, qos
from restac_ros.nodes.image_preparer import ImagePreparer
from restac_ros.nodes.params import declare
from restac_ros.nodes.policy_model import LoadedPolicy, load_policy
from restac_ros.nodes.policy_outputs import ChunkResult, PolicyOutputs
from restac_ros.nodes.policy_status import PolicyStatus
from restac_ros.nodes.spin import run_nodes
from restac_ros.nodes.worker import Worker

NODE_NAME = "policy_node"
BACKLOG = 8  # tick_on: stamps: ticks that may wait for the worker before one is skipped


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.p = declare(self, policy_params.PARAMETERS)
        self.policy: LoadedPolicy | None = None
        self.builder: ObservationBuilder | None = None
        self.buffers = None
        self.outputs: PolicyOutputs | None = None
        self.worker: Worker | None = None
        self.preparer: ImagePreparer | None = None
        self.status = PolicyStatus()
        self._prompt: str | None = None
        self._subs = []
        self._tick_timer = None
        self._active = False
        self._next_chunk_id = 0
        self._last_tick_ns = 0
        self._ticker: ticks.StampTicker | None = None  # tick_on: stamps
        self._held: dict[str, deque] = {}  # tick_on: stamps, messages not yet buffered
        self._backlog: deque = deque()  # tick_on: stamps, samples waiting for the worker
        self._diag_pub = self.create_publisher(
            diagnostics.DiagnosticArray, self.p["diagnostics_topic"], qos.DIAGNOSTICS
        )
        # /diagnostics on the steady clock: it must flow before /clock starts (use_sim_time)
        self.create_timer(
            self.p["diagnostics_period_s"],
            self._publish_diagnostics,
            clock=diagnostics.steady_clock(),
        )

    # -- lifecycle -----------------------------------------------------------
    @property
    def lifecycle_state(self) -> str:
        """unconfigured | inactive | active | finalized (as the transitions left it)."""
        return self.status.lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.p = {name: self.get_parameter(name).value for name in self.p}
            policy_params.validate(self.p)
            t0 = time.monotonic()
            self.policy = load_policy(self.p)
            space = policy_params.action_space(self.p, self.policy.horizon)
            spec = policy_params.observation_spec(
                self.p, space, self.policy.action_dim, self.policy.quantile_norm
            )
            mask = delta_action_mask_from_meta(self.policy.meta or {}, space.dim)
            spec = dataclasses.replace(spec, delta_action_mask=mask)
            self.builder = ObservationBuilder(spec, self.policy.norm_stats, self.policy.tokenizer)
            self.buffers = self.builder.make_buffers(self.p["unstamped_policy"])
            warm_ms = self.policy.warmup()
            self.outputs = PolicyOutputs(
                self,
                policy_params.output_topics(self.p),
                space,
                self.p["ee_frame_id"],
                self.p["tactile_frame_id"],
                self.policy.tactile_mode,
            )
        except Exception as exc:  # configure fails with the reason; the node stays up
            self.status.set_error(f"configure failed: {exc}")
            self.get_logger().error(f"configure failed: {exc!r}")
            return TransitionCallbackReturn.FAILURE
        if self.p["prepare_images_on_arrival"]:
            self.preparer = ImagePreparer(self.builder.prepare_image, self._on_preparer_error)
        self._create_subscriptions()
        self.worker = Worker("policy-inference", self._infer, self._on_worker_error)
        self.status.configured(self.policy.describe(), warm_ms)
        self.get_logger().info(
            f"configured in {time.monotonic() - t0:.1f}s ({self.policy.describe()}, "
            f"warm-up {warm_ms:.0f} ms)"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = True
        if self.p["tick_on"] == "timer":
            self._tick_timer = self.create_timer(1.0 / self.p["rate_hz"], self._on_tick)
        elif self.p["tick_on"] == "stamps":
            required = tuple(s.name for s in self.builder.spec.stream_specs() if s.required)
            self._ticker = ticks.StampTicker(
                int(self.p["tick_origin_ns"]), self.p["rate_hz"], required
            )
            self._held = {s.name: deque() for s in self.builder.spec.stream_specs()}
        self.status.lifecycle = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        if self._tick_timer is not None:
            self.destroy_timer(self._tick_timer)
            self._tick_timer = None
        self._ticker, self._held = None, {}
        self._backlog.clear()
        self.buffers.clear()
        self.builder.prepared.clear()
        self.status.lifecycle = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.status.lifecycle = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._release()
        self.status.lifecycle = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        if self._tick_timer is not None:
            self.destroy_timer(self._tick_timer)
            self._tick_timer = None
        if self.worker is not None and not self.worker.stop():
            self.get_logger().error("inference worker did not stop in time")
        self.worker = None
        if self.preparer is not None and not self.preparer.stop():
            self.get_logger().error("image preparer did not stop in time")
        self.preparer = None
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self.outputs is not None:
            self.outputs.destroy(self)
        self.outputs, self.builder, self.policy, self.buffers = None, None, None, None

    # -- inputs --------------------------------------------------------------
    def _create_subscriptions(self) -> None:
        sensor_qos = qos.SENSOR_RELIABLE if self.p["reliable_inputs"] else qos.SENSOR_INPUT
        compressed = self.p["camera_transport"] == "compressed"
        image_type = CompressedImage if compressed else Image
        for topic, slot in zip(self.p["camera_topics"], self.p["camera_slots"], strict=True):
            self._subs.append(
                self.create_subscription(
                    image_type, topic, lambda m, s=slot: self._on_image(s, m), sensor_qos
                )
            )
        if self.p["tactile_topic"]:
            self._subs.append(
                self.create_subscription(
                    Image,
                    self.p["tactile_topic"],
                    lambda m: self._on_image(policy_params.TACTILE_STREAM, m),
                    sensor_qos,
                )
            )
        self._subs.append(
            self.create_subscription(
                JointState, self.p["joint_states_topic"], self._on_joints, sensor_qos
            )
        )
        self._subs.append(
            self.create_subscription(String, self.p["prompt_topic"], self._on_prompt, qos.PROMPT)
        )

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _push(self, stream: str, header, value) -> None:
        stamp_ns, now_ns = conversions.stamp_to_ns(header.stamp), self._now_ns()
        self.status.received(stream)
        if self._ticker is not None:
            self._hold(stream, stamp_ns, value, now_ns)
        elif self._buffer(stream, stamp_ns, value, now_ns) and self.p["tick_on"] == stream:
            self._on_tick()

    def _buffer(self, stream: str, stamp_ns: int, value, receipt_ns: int) -> bool:
        reason = self.buffers.push(stream, stamp_ns, value, receipt_ns)
        if reason is not None:
            self.status.reject(f"{stream}.{reason.value}", f"{stream}: message {reason.value}")
        return reason is None

    def _hold(self, stream: str, stamp_ns: int, value, receipt_ns: int) -> None:
        """tick_on: stamps. Hold the message back until the ticks before its stamp are done.

        Tick T is assembled, at T, from exactly the messages stamped <= T, once every
        required stream has delivered one stamped >= T (restac_ros.core.ticks).
        """
        effective = stamp_ns or receipt_ns  # unstamped: the buffers stamp on receipt
        self._held[stream].append((effective, stamp_ns, value, receipt_ns))
        self._ticker.offer(stream, effective)
        for tick_ns in self._ticker.due():
            for name, held in self._held.items():
                while held and held[0][0] <= tick_ns:
                    _, stamp, val, receipt = held.popleft()
                    self._buffer(name, stamp, val, receipt)
            self._assemble(tick_ns)

    def _on_image(self, stream: str, msg) -> None:
        if isinstance(msg, CompressedImage):
            value = RawCompressedImage(np.frombuffer(msg.data, np.uint8), msg.format)
        else:
            value = RawImage(
                np.frombuffer(msg.data, np.uint8),
                msg.encoding,
                int(msg.height),
                int(msg.width),
                int(msg.step),
                bool(msg.is_bigendian),
            )
        self._push(stream, msg.header, value)
        if self.preparer is not None:
            self.preparer.offer(stream, value)

    def _on_joints(self, msg: JointState) -> None:
        self._push(policy_params.JOINT_STREAM, msg.header, conversions.joint_sample(msg))

    def _on_prompt(self, msg: String) -> None:
        self._prompt = msg.data
        self.get_logger().info(f"prompt: {msg.data!r}")

    # -- observation tick and inference --------------------------------------
    def _on_tick(self) -> None:
        now_ns = self._now_ns()
        if self.p["tick_on"] != "timer" and now_ns - self._last_tick_ns < 1e9 / self.p["rate_hz"]:
            return
        self._assemble(now_ns)

    def _assemble(self, now_ns: int) -> None:
        """Sample the buffers at now_ns and hand the sample to the inference worker."""
        if not self._active or self.worker is None:
            return
        stamps = self._ticker is not None
        if self.worker.busy and (not stamps or len(self._backlog) >= BACKLOG):
            self.status.skipped_busy()
            return
        self._last_tick_ns = now_ns
        tick = time.perf_counter()
        try:
            sample = self.builder.sample_from_buffers(self.buffers, now_ns, self._prompt)
        except InvalidObservation as exc:
            self.status.reject(exc.reason.value, exc.message)
            return
        if stamps:  # every tick of the grid is inferred, in order (the worker drains)
            self._backlog.append((sample, tick))
            self.worker.submit(None)
        else:
            self.worker.submit((sample, tick))

    def _infer(self, job) -> None:
        if job is not None:
            self._infer_one(job)
        while self._backlog and self._active:
            self._infer_one(self._backlog.popleft())

    def _infer_one(self, job) -> None:
        sample, tick = job
        t0 = time.perf_counter()
        try:
            obs = self.builder.build(sample)
        except InvalidObservation as exc:
            self.status.reject(exc.reason.value, exc.message)
            return
        build_ms = (time.perf_counter() - t0) * 1e3
        # The seed depends on the tick stamp only: restac-eval uses the same for the same tick.
        result = self.policy.infer(obs, ticks.tick_seed(self.p["seed"], sample.stamp_ns))
        try:
            actions = self.builder.postprocess_actions(
                result.actions_norm, self.builder.state_vector(sample.joints))
        except InvalidActions as exc:
            self.status.reject("invalid_actions", str(exc))
            return
        chunk = ChunkResult(
            stamp_ns=sample.stamp_ns,
            chunk_id=self._next_chunk_id,
            actions=actions,
            inference_ms=result.inference_ms,
            codes=result.codes,
            q_event=result.q_event,
            logvar=result.logvar,
            gate=result.gate,
            tactile_valid=sample.tactile is not None,
        )
        if not self._active:  # deactivated while inferring: drop, never publish late
            return
        chunk_sent = self.outputs.publish(chunk)
        self._next_chunk_id += 1
        # tick -> ActionChunk published, minus the model call
        overhead_ms = (chunk_sent - tick) * 1e3 - result.inference_ms
        self.status.published(
            result.inference_ms, build_ms, overhead_ms, result.logvar, result.gate
        )

    def _on_preparer_error(self, exc: BaseException) -> None:
        self.status.reject("image_preparer_error", f"{type(exc).__name__}: {exc}")
        self.get_logger().error(f"image preparation failed: {exc!r}")

    def _on_worker_error(self, exc: BaseException) -> None:
        self.status.reject("inference_error", f"{type(exc).__name__}: {exc}")
        self.get_logger().error(f"inference failed: {exc!r}")

    # -- diagnostics -----------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        now_ns = self._now_ns()
        freshness = None if self.buffers is None else self.buffers.freshness(now_ns)
        counters = None if self.buffers is None else self.buffers.counters()
        topics = dict(zip(self.p["camera_slots"], self.p["camera_topics"], strict=True))
        topics[policy_params.TACTILE_STREAM] = self.p["tactile_topic"]
        topics[policy_params.JOINT_STREAM] = self.p["joint_states_topic"]
        statuses = self.status.diagnostics(
            f"restac: {NODE_NAME}",
            self.get_fully_qualified_name(),
            freshness,
            counters,
            topics,
            self._prompt,
            self._prepared_values(),
        )
        self._diag_pub.publish(diagnostics.array(now_ns, statuses))

    def _prepared_values(self) -> dict[str, object]:
        if self.preparer is None or self.builder is None:
            return {"images_prepared_on_arrival": False}
        cache = self.builder.prepared
        return {"images_prepared_on_arrival": True, "images_prepared": self.preparer.prepared,
                "images_superseded_before_preparing": self.preparer.skipped,
                "tick_images_ready": cache.hits, "tick_images_converted_late": cache.misses}


def main(args: list[str] | None = None) -> int:
    made: list[PolicyNode] = []

    def make():
        made.append(PolicyNode())
        return made

    def start(nodes) -> None:
        # Standalone: configure and activate (launch files and bringup drive it instead).
        node = nodes[0]
        if node.p["autostart"] and node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()

    def stop() -> None:
        # stop the inference worker before the node is destroyed
        for node in made:
            if node.lifecycle_state == "active":
                node.trigger_deactivate()
            node.trigger_shutdown()

    return run_nodes(make, args=sys.argv if args is None else args, after_start=start, on_stop=stop)


if __name__ == "__main__":
    sys.exit(main())
