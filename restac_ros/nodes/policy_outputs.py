"""The policy node's output side: one chunk result -> every output message.

ActionChunk, JointTrajectory (joint spaces) or nav_msgs/Path (EE spaces),
TactileDiagnostics, logvar (Float32) and VQ codes (Int32MultiArray).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from nav_msgs.msg import Path
from rclpy.duration import Duration
from std_msgs.msg import Float32, Int32MultiArray
from trajectory_msgs.msg import JointTrajectory

from restac_ros.core.action_space import ActionSpace
from restac_ros.msg import ActionChunk, TactileDiagnostics
from restac_ros.nodes import conversions, qos


@dataclasses.dataclass(frozen=True)
class ChunkResult:
    """Everything published for one observation (plain data)."""

    stamp_ns: int
    chunk_id: int
    actions: np.ndarray  # float32 [H, robot_dim], robot units
    inference_ms: float
    codes: np.ndarray  # int32 [n_q] (-1 entries in placeholder mode)
    q_event: np.ndarray  # float32 [e_dim]
    logvar: float
    gate: float
    tactile_valid: bool


@dataclasses.dataclass(frozen=True)
class OutputTopics:
    action_chunk: str
    joint_trajectory: str
    ee_path: str
    tactile_diagnostics: str
    logvar: str
    vq_codes: str


class PolicyOutputs:
    """Owns the output publishers of a lifecycle node (created on configure)."""

    def __init__(
        self,
        node,
        topics: OutputTopics,
        action_space: ActionSpace,
        ee_frame_id: str,
        tactile_frame_id: str,
        tactile_mode: str,
    ) -> None:
        self.action_space = action_space
        self.ee_frame_id = ee_frame_id
        self.tactile_frame_id = tactile_frame_id
        self.tactile_mode = tactile_mode
        make = node.create_lifecycle_publisher
        self._chunk = make(ActionChunk, topics.action_chunk, qos.OUTPUT)
        if action_space.is_end_effector:
            self._plan = make(Path, topics.ee_path, qos.OUTPUT)
        else:
            self._plan = make(JointTrajectory, topics.joint_trajectory, qos.OUTPUT)
        self._tactile = make(TactileDiagnostics, topics.tactile_diagnostics, qos.OUTPUT)
        self._logvar = make(Float32, topics.logvar, qos.OUTPUT)
        self._codes = make(Int32MultiArray, topics.vq_codes, qos.OUTPUT)
        self._all = [self._chunk, self._plan, self._tactile, self._logvar, self._codes]

    def publish(self, r: ChunkResult) -> float:
        """Publish every output, the ActionChunk first (what the executor waits for);
        returns time.perf_counter() right after the ActionChunk went out."""
        space = self.action_space
        frame = self.ee_frame_id if space.is_end_effector else ""
        self._chunk.publish(
            conversions.action_chunk(
                stamp_ns=r.stamp_ns,
                frame_id=frame,
                chunk_id=r.chunk_id,
                names=space.names,
                actions=r.actions,
                dt_s=space.dt_s,
                inference_ms=r.inference_ms,
                logvar=r.logvar,
                gate=r.gate,
            )
        )
        chunk_sent = time.perf_counter()
        if space.is_end_effector:
            self._plan.publish(conversions.ee_path(r.actions, space.dt_s, r.stamp_ns, frame))
        else:
            self._plan.publish(
                conversions.joint_trajectory(space.names, r.actions, space.dt_s, r.stamp_ns)
            )
        self._tactile.publish(
            conversions.tactile_diagnostics(
                stamp_ns=r.stamp_ns,
                frame_id=self.tactile_frame_id,
                codes=r.codes,
                q_event=r.q_event,
                logvar=r.logvar,
                gate=r.gate,
                tactile_valid=r.tactile_valid,
                mode=self.tactile_mode,
            )
        )
        self._logvar.publish(Float32(data=float(r.logvar)))
        self._codes.publish(conversions.int32_array(r.codes, "vq_codes"))
        return chunk_sent

    def wait_for_all_acked(self, timeout_s: float) -> bool:
        """True once every reliable subscriber acknowledged every output (bounded)."""
        deadline = time.monotonic() + timeout_s
        acked = True
        for pub in self._all:
            left = max(0.0, deadline - time.monotonic())
            acked = pub.wait_for_all_acked(Duration(nanoseconds=round(left * 1e9))) and acked
        return acked

    def destroy(self, node) -> None:
        # the lifecycle variant: it also drops the publisher from the node's managed
        # entities (destroy_publisher alone leaves 5 behind per cleanup/configure cycle)
        for pub in self._all:
            node.destroy_lifecycle_publisher(pub)
        self._all = []
