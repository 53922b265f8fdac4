"""policy_node: sensor topics -> ActionChunk (lifecycle node).

configure: load RestacPolicy, build the core's ObservationBuilder, compile
(warm-up), create publishers/subscriptions. activate: start ticking. Each
tick asks the core for a fresh synchronized sample (StreamBuffers +
ObservationBuilder.sample_from_buffers); the inference worker thread builds
the Observation, runs the policy and publishes. Callbacks only convert
messages into core types; every refusal is counted and shown on /diagnostics.

Fail closed: every callback is guarded (diagnostics.guarded); image fields / compressed
headers are checked before a message is buffered; stamps outside a window around the
node clock are refused before they reach the buffers or the tick bookkeeping; held-back
messages are bounded by count and time; the node clock is watched against the steady
clock, and a jump back (bag loop) or a stall (timer ticks) drops every buffered input.
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

from restac_ros.core import input_checks, messages, ticks
from restac_ros.core.clock_watch import ClockEvent, ClockWatch
from restac_ros.core.images import ImageDecodeError, RawCompressedImage, RawImage, check_image_input
from restac_ros.core.observation import InvalidActions, InvalidObservation, ObservationBuilder
from restac_ros.core.observation_spec import delta_action_mask_from_meta
from restac_ros.core.restac_preset import resolve_delta_mask
from restac_ros.nodes import conversions, diagnostics, policy_diagnostics, policy_params, qos
from restac_ros.nodes.image_preparer import ImagePreparer
from restac_ros.nodes.lifecycle_autostart import LifecycleAutostart
from restac_ros.nodes.params import declare
from restac_ros.nodes.policy_model import LoadedPolicy, PolicyDropped, RemotePolicy, load_policy
from restac_ros.nodes.policy_outputs import ChunkResult, PolicyOutputs
from restac_ros.nodes.policy_status import PolicyStatus
from restac_ros.nodes.spin import run_nodes
from restac_ros.nodes.stamp_hold import HELD_MAX, StampHold
from restac_ros.nodes.worker import Worker

NODE_NAME = "policy_node"
BACKLOG = 8  # tick_on: stamps: ticks that may wait for the worker before one is skipped


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.p = declare(self, policy_params.PARAMETERS)
        self.policy: LoadedPolicy | RemotePolicy | None = None
        self.builder: ObservationBuilder | None = None
        self.buffers = None
        self.outputs: PolicyOutputs | None = None
        self.worker: Worker | None = None
        self.preparer: ImagePreparer | None = None
        self.status = PolicyStatus()
        self._prompt: str | None = None
        self._prompt_refusal: str | None = None  # why the last prompt was refused
        self._subs = []
        self._tick_timer = None
        self._active = False
        self._next_chunk_id = 0
        self._last_tick_ns = 0
        self._stamps: StampHold | None = None  # tick_on: stamps
        self._awaiting_prompt_noted = False  # tick_on: stamps, reported once
        self._backlog: deque = deque()  # tick_on: stamps, samples waiting for the worker
        self._clock_watch: ClockWatch | None = None  # created on configure (its parameters)
        self._diag_pub = self.create_publisher(
            diagnostics.DiagnosticArray, self.p["diagnostics_topic"], qos.DIAGNOSTICS
        )
        # /diagnostics and the clock watch on the steady clock: they run when /clock does not
        steady = diagnostics.steady_clock()
        self.create_timer(self.p["diagnostics_period_s"], self._publish_diagnostics, clock=steady)
        self.create_timer(0.25, self._watch_clock, clock=steady)

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
            mask = resolve_delta_mask(spec.pipeline, space.dim, mask)
            spec = dataclasses.replace(spec, delta_action_mask=mask)
            self.builder = self.policy.make_builder(spec)  # local: full; remote: validation
            self.buffers = self.builder.make_buffers(
                self.p["unstamped_policy"], self.p["max_stamp_lead_s"], self.p["max_stamp_age_s"]
            )
            self._clock_watch = ClockWatch(self.p["clock_jump_tolerance_s"],
                                           self.p["clock_stall_s"])
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
        # remote backend: the server converts the images; converting here would be wasted
        if self.p["prepare_images_on_arrival"] and self.p["backend"] == "local":
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
            specs = self.builder.spec.stream_specs()
            self._stamps = StampHold(int(self.p["tick_origin_ns"]), self.p["rate_hz"],
                                     tuple(s.name for s in specs),
                                     tuple(s.name for s in specs if s.required))
        self.status.lifecycle = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        if self._tick_timer is not None:
            self.destroy_timer(self._tick_timer)
            self._tick_timer = None
        self._stamps = None
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
            self.create_subscription(String, self.p["prompt_topic"], self._on_prompt, qos.PROMPT,
                                     raw=True)
        )

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def callback_failed(self, key: str, exc: BaseException) -> None:
        self.status.reject(key, diagnostics.exception_text(exc))
        self.get_logger().error(f"callback failed ({key}): {diagnostics.exception_text(exc)}")

    @diagnostics.guarded("callback_error")
    def _watch_clock(self) -> None:
        self._clock_now()

    def _clock_now(self) -> int:
        """The node clock, checked against the steady clock: a jump back or a stall drops
        every buffered input (it belongs to another timeline) and is reported."""
        now_ns = self._now_ns()
        watch = self._clock_watch
        if watch is None:
            return now_ns
        event = watch.observe(now_ns, time.monotonic_ns())
        self.status.clock = watch.state
        if event in (ClockEvent.JUMP_BACK, ClockEvent.STALLED):
            # tick_on: stamps decides on stamps alone: a stall only delays its ticks
            dropped = event is ClockEvent.JUMP_BACK or self._stamps is None
            if dropped:
                self._reset_inputs()
            detail = (f"node clock went back {watch.last_jump_s:.3f}s"
                      if event is ClockEvent.JUMP_BACK
                      else f"node clock stalled for > {self.p['clock_stall_s']}s (no /clock?)")
            self.status.reject(event.value, detail + ("; buffered inputs dropped" if dropped
                                                      else "; ticks wait for the stamps"))
            self.get_logger().warning(f"{event.value}: {detail}")
        return now_ns

    def _reset_inputs(self) -> None:
        if self.buffers is not None:
            self.buffers.clear()
        if self.builder is not None:
            self.builder.prepared.clear()
        if self._stamps is not None:
            self._stamps.reset()
        self._backlog.clear()
        self._last_tick_ns = 0

    def _push(self, stream: str, header, value) -> None:
        stamp_ns, now_ns = conversions.stamp_to_ns(header.stamp), self._clock_now()
        self.status.received(stream)
        if self._stamps is not None:
            # the window (and unstamped policy) before the tick bookkeeping sees the stamp
            reason = self.buffers.screen(stream, stamp_ns, now_ns)
            if reason is not None:
                self.status.reject(f"{stream}.{reason.value}",
                                   f"{stream}: message {reason.value} (stamp {stamp_ns} ns, "
                                   f"node clock {now_ns} ns)")
                return
            self._hold(stream, stamp_ns, value, now_ns)
        elif self._buffer(stream, stamp_ns, value, now_ns) and self.p["tick_on"] == stream:
            self._on_tick()

    def _buffer(self, stream: str, stamp_ns: int, value, receipt_ns: int) -> bool:
        reason = self.buffers.push(stream, stamp_ns, value, receipt_ns)
        if reason is not None:
            self.status.reject(f"{stream}.{reason.value}", f"{stream}: message {reason.value}")
        return reason is None

    def _hold(self, stream: str, stamp_ns: int, value, receipt_ns: int) -> None:
        """tick_on: stamps. Hold the message back until the ticks before its stamp are done
        (nodes.stamp_hold)."""
        if not self._stamps.hold(stream, stamp_ns, value, receipt_ns):
            self.status.reject(f"{stream}.held_overflow",
                               f"{stream}: more than {HELD_MAX} messages held back")
        self._release_due_ticks()

    def _release_due_ticks(self) -> None:
        """Buffer the held messages of every complete tick and assemble it, oldest first.
        No tick is due before the first prompt (unless a default is configured): offline
        evaluation knows the bag's prompt from tick one, live replay gets it on its own
        latched topic, which may match after the sensor topics."""
        if self._prompt is None and self._prompt_refusal is None \
                and self.builder.spec.default_prompt is None:
            if not self._awaiting_prompt_noted:
                self._awaiting_prompt_noted = True
                self.status.reject("awaiting_prompt",
                                   "tick_on: stamps: ticks wait for the first prompt")
            return
        for tick_ns, batch in self._stamps.release():
            for name, stamp, value, receipt in batch:
                self._buffer(name, stamp, value, receipt)
            self._assemble(tick_ns)

    @diagnostics.guarded("bad_image_message")
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
        try:  # fields / header against the limits before anything is buffered or copied
            check_image_input(value, self.builder.spec.max_image_pixels)
        except ImageDecodeError as exc:
            self.status.received(stream)
            self.status.reject(f"{stream}.bad_image", f"{stream}: {exc}")
            return
        self._push(stream, msg.header, value)
        if self.preparer is not None:
            self.preparer.offer(stream, value)

    @diagnostics.guarded("bad_joint_message")
    def _on_joints(self, msg: JointState) -> None:
        self._push(policy_params.JOINT_STREAM, msg.header, conversions.joint_sample(msg))

    @diagnostics.guarded("bad_prompt")
    def _on_prompt(self, raw: bytes) -> None:
        """The prompt arrives serialized (raw subscription): deserializing would silently
        cut it at a NUL. A refused prompt stops the old task too: no chunk until a valid
        prompt comes (the operator meant to change the task)."""
        try:
            text = messages.string_from_cdr(raw)
            error = input_checks.prompt_error(text, int(self.p["max_prompt_chars"]))
        except ValueError as exc:
            text, error = None, str(exc)
        if error is not None:
            self._prompt, self._prompt_refusal = None, error
            self.status.reject("bad_prompt", error)
            self.get_logger().warning(f"prompt refused: {error}")
            return
        self._prompt, self._prompt_refusal = text, None
        self.get_logger().info(f"prompt: {input_checks.prompt_summary(text)}")
        if self._stamps is not None:
            self._release_due_ticks()

    # -- observation tick and inference --------------------------------------
    @diagnostics.guarded("callback_error")
    def _on_tick(self) -> None:
        now_ns = self._clock_now()
        if self.p["tick_on"] != "timer" and now_ns - self._last_tick_ns < 1e9 / self.p["rate_hz"]:
            return
        self._assemble(now_ns)

    def _assemble(self, now_ns: int) -> None:
        """Sample the buffers at now_ns and hand the sample to the inference worker."""
        if not self._active or self.worker is None:
            return
        stamps = self._stamps is not None
        if self.worker.busy and (not stamps or len(self._backlog) >= BACKLOG):
            self.status.skipped_busy()
            return
        if self._prompt_refusal is not None:
            self.status.reject("bad_prompt", f"prompt refused: {self._prompt_refusal}")
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
            self.worker.kick()  # a drain that just found the backlog empty runs again
        else:
            self.worker.submit((sample, tick))

    def _infer(self, job) -> None:
        if job is not None:
            self._infer_one(job)
        while self._active:
            try:
                job = self._backlog.popleft()
            except IndexError:  # drained (or cleared on a clock jump)
                return
            self._infer_one(job)

    def _infer_one(self, job) -> None:
        sample, tick = job
        # The seed depends on the tick stamp only: restac-eval uses the same for the same tick.
        seed = ticks.tick_seed(self.p["seed"], sample.stamp_ns)
        try:
            step = self.policy.step(self.builder, sample, seed)  # local or remote backend
        except InvalidObservation as exc:
            self.status.reject(exc.reason.value, exc.message)
            return
        except InvalidActions as exc:
            self.status.reject("invalid_actions", str(exc))
            return
        except PolicyDropped as exc:  # remote: lost / late / refused reply, counted by reason
            self.status.reject(exc.reason, exc.message)
            return
        result, actions, build_ms = step.inference, step.actions, step.build_ms
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

    def drained(self, published_by_topic: dict[str, int]) -> bool:
        """True once every message published on our input topics (a player's counts) was
        taken and every tick it completed is inferred and published (bag replay's end)."""
        topics = dict(zip(self.p["camera_topics"], self.p["camera_slots"], strict=True))
        topics[self.p["tactile_topic"]] = policy_params.TACTILE_STREAM
        topics[self.p["joint_states_topic"]] = policy_params.JOINT_STREAM
        for topic, count in published_by_topic.items():
            stream = topics.get(topic)
            if stream is not None and self.status.received_count(stream) < count:
                return False
        return not self._backlog and (self.worker is None or not self.worker.busy)

    # -- diagnostics (assembled by nodes.policy_diagnostics) ------------------
    @diagnostics.guarded("callback_error")
    def _publish_diagnostics(self) -> None:
        now_ns = self._clock_now()
        extra = policy_diagnostics.part_values(self.builder, self.preparer, self._stamps,
                                               self.policy, self._prompt_refusal)
        self._diag_pub.publish(policy_diagnostics.policy_array(
            now_ns, self.status, f"restac: {NODE_NAME}", self.get_fully_qualified_name(),
            self.p, self.buffers, extra, self._prompt))


def main(args: list[str] | None = None) -> int:
    autostart = LifecycleAutostart(NODE_NAME)  # standalone; launch files drive it instead
    return run_nodes(lambda: [PolicyNode()], args=sys.argv if args is None else args,
                     after_start=lambda nodes: autostart.start(nodes[0], nodes[0].p["autostart"]),
                     on_stop=autostart.stop)


if __name__ == "__main__":
    sys.exit(main())
