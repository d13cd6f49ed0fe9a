"""The shield counted in the campaign's simulation evaluation, in observe mode: the interventions it
would make, by reason code, with the simulator's actions unchanged.

Expectations come from configs/safety/panda.yaml by hand: panda_joint1's hard range is
±2.8973 rad, its envelope ±2.9473 rad, its acceleration 15 rad/s² at a 0.05 s period, so a
velocity command may change by at most 15 x 0.05 = 0.75 rad/s per step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import safety
from bremen_robot.campaign.eval_shield import ObservedEnv, observe, observe_step
from bremen_robot.robot_config import load_robot_config
from bremen_robot.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
PANDA_LIMITS = ROOT / "configs" / "safety" / "panda.yaml"
JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
# every joint well inside its soft range (joint 4's range is [-3.07, -0.07], joint 6's [-0.02, 3.75])
MID = np.array([0.0, 0.0, 0.0, -1.5, 0.0, 1.5, 0.0])


def _shield() -> Any:
    return safety.SafetyShield(safety.load_limits(PANDA_LIMITS, joint_names=list(JOINTS)))


def _state(q: np.ndarray, now: float) -> Any:
    return safety.JointState(JOINTS, q, np.zeros(7), now)


def _push(j1: float) -> np.ndarray:
    a = np.zeros(7)
    a[0] = j1
    return a


def test_a_push_past_the_hard_limit_is_counted_and_the_rate_limit_compares_with_the_applied_action() -> None:
    shield = _shield()
    at_max = MID.copy()
    at_max[0] = 2.8973  # joint 1 exactly at its hard upper limit
    # +1 rad/s outward at the hard limit: the shield would set it to 0
    assert observe_step(shield, _state(at_max, 0.0), _push(1.0), 0.0) == ["position_limit"]
    # observe mode: +1 was applied, so asking +1 again changes nothing (the shield's own command
    # was 0, against which +1 would be a rate_limit: 1 > 0.75)
    assert observe_step(shield, _state(MID, 0.05), _push(1.0), 0.05) == []
    # from the applied +1 to -1 is a change of 2 > 0.75 in one period
    assert observe_step(shield, _state(MID, 0.1), _push(-1.0), 0.1) == ["rate_limit"]
    # within 0.75 of the applied -1
    assert observe_step(shield, _state(MID, 0.15), _push(-0.5), 0.15) == []


def test_observe_mode_counts_the_first_steps_movement_from_rest_against_the_acceleration_limit() -> None:
    """Position interface, acceleration 100 at T = 0.01: the displacement may change by 0.01 per
    step. From measured 0, the applied 0.01 is a displacement of +0.01; going back to 0 next is
    a displacement of -0.01, a change of 0.02: the robot's shield would clip it (rate_limit).
    Until 2026-12-07 observe mode forgot where the first step started, and counted nothing."""
    limits = safety.parse_limits(
        {
            "robot": "arm",
            "command_interface": "position",
            "safe_command": "hold",
            "command_box": {"min": -1.0, "max": 1.0},
            "joints": {"j": {"position": {"min": -1.0, "max": 1.0}, "acceleration": 100.0}},
            "timing": {"control_period": 0.01, "max_observation_age": 0.05},
        }
    )
    shield = safety.SafetyShield(limits)
    at = [safety.JointState(("j",), np.zeros(1), np.zeros(1), 0.01 * k) for k in range(2)]
    assert observe_step(shield, at[0], np.array([0.01]), 0.0) == []
    assert observe_step(shield, at[1], np.array([0.0]), 0.01) == ["rate_limit"]


class _Backend:
    joint_names = JOINTS

    def __init__(self) -> None:
        self.q = MID.copy()

    def joint_positions(self) -> np.ndarray:
        return self.q.copy()

    def joint_velocities(self) -> np.ndarray:
        return np.zeros(7)

    def base_pose(self) -> None:
        return None


class _Env:
    """Replays joint-1 positions per step; records the actions it receives."""

    def __init__(self, j1_per_step: list[list[float]]) -> None:
        self.backend = _Backend()
        self.episodes = iter(j1_per_step)
        self.path: list[float] = []
        self.received: list[np.ndarray] = []

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self.path, self.t = next(self.episodes), 0
        self.backend.q[0] = self.path[0]
        return np.zeros(3), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.received.append(np.array(action))
        self.t += 1
        if self.t < len(self.path):
            self.backend.q[0] = self.path[self.t]
        return np.zeros(3), 0.0, False, self.t >= len(self.path), {}


def test_an_envelope_stop_is_counted_once_and_the_rest_of_its_episode_is_not_judged() -> None:
    # episode 1: joint 1 at 0, then at 3.0 (past the 2.9473 envelope: e-stop), then at 0 again;
    # episode 2: at 0 throughout
    inner = _Env([[0.0, 3.0, 0.0], [0.0, 0.0]])
    env = ObservedEnv(inner, _shield, 0.05, PANDA_LIMITS)
    actions = [_push(0.5), _push(0.5), _push(-0.9)]  # the last would be a rate_limit (1.4 > 0.75)
    env.reset(seed=0)
    for a in actions:
        env.step(a)
    env.reset(seed=1)
    env.step(_push(0.2))
    env.step(_push(0.2))
    assert env.summary() == {
        "mode": "observe",
        "limits": str(PANDA_LIMITS),
        "episodes": 2,
        "total": 1,
        "per_episode": 0.5,
        "by_reason": {"envelope": 1},
        "episodes_estopped": 1,
    }
    # the simulator received every action as asked
    sent = [*actions, _push(0.2), _push(0.2)]
    assert all(np.array_equal(r, s) for r, s in zip(inner.received, sent, strict=True))
    assert len(inner.received) == 5


def test_where_nothing_can_be_measured_the_record_says_why() -> None:
    panda = load_robot_config(ROOT / "configs" / "robots" / "panda.yaml")
    task = get_task("panda_reach")
    _, why = observe(object(), task, panda)
    assert why == {
        "mode": "observe",
        "not_measured": "the evaluation env (object) exposes no joint states to the shield; "
        "evaluate in 'sim:<robot>/mujoco' to count interventions",
    }
    _, why = observe(_Env([[0.0]]), task, panda.model_copy(update={"safety": None}))
    assert why == {
        "mode": "observe",
        "not_measured": "robot 'panda' has no safety limits file (robot config: safety)",
    }


def test_limits_with_an_ood_gate_are_not_counted_as_if_the_gate_ran(tmp_path: Path) -> None:
    """The evaluation's shield gets no ood_score; it built one anyway and counted without the gate."""
    gated = tmp_path / "gated.yaml"
    gated.write_text(PANDA_LIMITS.read_text() + "\nood: {threshold: 2.0, fallback: safe}\n")
    panda = load_robot_config(ROOT / "configs" / "robots" / "panda.yaml")
    env = _Env([[0.0]])
    observed, why = observe(env, get_task("panda_reach"), panda.model_copy(update={"safety": gated}))
    assert observed is env and why == {
        "mode": "observe",
        "not_measured": f"{gated}: ood: policy_runner, reset_node and the evaluations inject no OOD scorer "
        "(a policy artifact carries no dynamics ensemble), so this gate would never run; remove the ood "
        "section (every other limit still applies) or use it through the Python API with an ood_score",
    }


def test_evaluation_returns_are_bit_identical_with_the_counting_on() -> None:
    pytest.importorskip("mujoco")
    from bremen_robot.campaign.runner import evaluate_policy

    panda = load_robot_config(ROOT / "configs" / "robots" / "panda.yaml")
    plain = evaluate_policy(None, "sim:panda/mujoco", 2, 3)
    counted = evaluate_policy(None, "sim:panda/mujoco", 2, 3, robot=panda)
    assert counted["returns"] == plain["returns"]  # exact float equality
    assert "interventions" not in plain
    iv = counted["interventions"]
    assert (iv["mode"], iv["episodes"]) == ("observe", 2)
    # uniform random velocity commands in [-1, 1] change by more than 0.75 in most steps
    assert iv["by_reason"]["rate_limit"] > 50
    assert iv["total"] == sum(iv["by_reason"].values()) and iv["per_episode"] == iv["total"] / 2
