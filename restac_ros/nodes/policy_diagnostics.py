"""policy_node's /diagnostics array: PolicyStatus's report plus what the node's parts report
(stream freshness and counters, image preparation, the stamp ticker, the backend).

The node passes each part explicitly; a part is None before configure and after cleanup.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray

from restac_ros.core.buffers import StreamBuffers
from restac_ros.core.observation import ObservationBuilder
from restac_ros.nodes import diagnostics, policy_params
from restac_ros.nodes.image_preparer import ImagePreparer
from restac_ros.nodes.policy_model import LoadedPolicy, RemotePolicy
from restac_ros.nodes.policy_status import PolicyStatus
from restac_ros.nodes.stamp_hold import StampHold


def stream_topics(p: dict) -> dict[str, str]:
    """Stream name -> the topic it is read from (policy_node's parameters)."""
    topics = dict(zip(p["camera_slots"], p["camera_topics"], strict=True))
    topics[policy_params.TACTILE_STREAM] = p["tactile_topic"]
    topics[policy_params.JOINT_STREAM] = p["joint_states_topic"]
    return topics


def prepared_values(
    builder: ObservationBuilder | None, preparer: ImagePreparer | None, stamps: StampHold | None
) -> dict[str, object]:
    """Image preparation on arrival (and how often a tick found its image ready), plus the
    ticks tick_on: stamps skipped for being far behind."""
    values: dict[str, object] = {
        "ticks_skipped_far_behind": 0 if stamps is None else stamps.ticker.skipped}
    if builder is not None:
        values["tactile_stretched"] = builder.tactile_stretched
    if preparer is None or builder is None:
        return {"images_prepared_on_arrival": False, **values}
    cache = builder.prepared
    return {"images_prepared_on_arrival": True, "images_prepared": preparer.prepared,
            "images_superseded_before_preparing": preparer.skipped,
            "tick_images_ready": cache.hits, "tick_images_converted_late": cache.misses,
            **values}


def part_values(
    builder: ObservationBuilder | None,
    preparer: ImagePreparer | None,
    stamps: StampHold | None,
    policy: LoadedPolicy | RemotePolicy | None,
    prompt_refusal: str | None,
) -> dict[str, object]:
    """The `extra` of policy_array: image preparation, ticker, prompt refusal, backend."""
    return {**prepared_values(builder, preparer, stamps),
            "prompt_refused": prompt_refusal or "<no>",
            **(policy.diagnostic_values() if policy is not None else {})}


def policy_array(
    now_ns: int,
    status: PolicyStatus,
    name: str,
    hardware_id: str,
    p: dict,
    buffers: StreamBuffers | None,
    extra: dict[str, object],
    prompt: str | None,
) -> DiagnosticArray:
    """The array stamped `now_ns` (the node clock: pipeline readers take it as proof that
    the node has seen that clock); `extra`: values of the node's other parts."""
    freshness = None if buffers is None else buffers.freshness(now_ns)
    counters = None if buffers is None else buffers.counters()
    statuses = status.diagnostics(
        name, hardware_id, freshness, counters, stream_topics(p), prompt, extra
    )
    return diagnostics.array(now_ns, statuses)
