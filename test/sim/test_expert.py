"""The scripted expert: touch-driven grasp-and-lift succeeds; touch-blind grip fails."""

from __future__ import annotations

from restac_ros.sim.env import SimConfig, SimEnv
from restac_ros.sim.expert import TICK_HZ, ScriptedExpert
from restac_ros.sim.ik import ArmIK


def run(seed: int, squeeze_step_m: float | None = None, seconds: float = 8.0):
    with SimEnv(SimConfig(render=False)) as env:
        task = env.reset(seed)
        kwargs = {} if squeeze_step_m is None else {"squeeze_step_m": squeeze_step_m}
        expert = ScriptedExpert(ArmIK(env.model), task.obj, **kwargs)
        peak = 0.0
        for _ in range(int(seconds * TICK_HZ)):
            cmd = expert.act(env.tcp_pose()[0], env.joint_positions()[7], env.contact())
            for _ in range(20):
                env.step(cmd)
                peak = max(peak, env.contact().normal_force_n)
        return env.success, expert, peak, env.object_pose()[0]


def test_expert_lifts_the_box() -> None:
    success, expert, peak, pos = run(3)
    assert success
    assert [p for p, _ in expert.events] == [
        "approach", "descend", "close", "squeeze", "lift", "hold"
    ]
    assert pos[2] > 0.08 and 0.2 < peak < 25.0


def test_touch_decides_heavy_slippery_box_needs_the_slip_reaction() -> None:
    # seed 0: 0.32 kg at friction 0.51: the light first grip slips
    touch, expert, _, _ = run(0)
    blind, blind_expert, _, _ = run(0, squeeze_step_m=0.0)
    assert touch and expert.state.slip_ticks > 0
    assert not blind and blind_expert.state.slip_ticks > expert.state.slip_ticks
