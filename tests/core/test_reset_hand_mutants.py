"""Hand mutation read of reset_motion.py and reset_config.py: each test pins one decision that a
one-line change (a flipped bound, a dropped check, a wrong argument) left unnoticed by the rest of
the suite. Every expected figure is worked out by hand in the comment beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import safety
from bremen_robot.reset_config import ResetConfig, StartBox, check_reset_limits
from bremen_robot.reset_motion import ResetMotion, arrived_and_still, plan_reset, track_command
from bremen_robot.robot_config import load_robot_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# configs/robots/panda.yaml reset.home
HOME = np.array([0.0, -0.7854, 0.0, -2.3562, 0.0, 1.5708, 0.7854])
JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
ZERO = np.zeros(7)


def _panda() -> tuple[Any, Any]:
    robot = load_robot_config(CONFIGS / "robots" / "panda.yaml")
    return robot.reset, safety.load_limits(robot.reset.limits, joint_names=list(robot.joints))


def _motion(started: float = 0.0, cfg: Any = None, target: np.ndarray = HOME) -> ResetMotion:
    reset, limits = _panda()
    return ResetMotion(cfg or reset, safety.SafetyShield(limits), JOINTS, target, 0.05, started)


# ---------------------------------------------------------------- plan_reset


def test_plan_refuses_matrices_of_equal_shape():
    # two (1, 2) arrays: equal shapes, but not vectors
    with pytest.raises(
        ValueError, match=r"^start \(1, 2\) and target \(1, 2\) must be vectors of one length$"
    ):
        plan_reset([[0.0, 1.0]], [[1.0, 2.0]], 0.5, 1.0, 0.05)


def test_plan_refuses_a_target_of_another_length():
    # (2,) against (1,) would broadcast: refused instead
    with pytest.raises(ValueError, match=r"^start \(2,\) and target \(1,\) must be vectors of one length$"):
        plan_reset([0.0, 0.0], [1.0], 0.5, 1.0, 0.05)


def test_plan_refuses_a_zero_control_period():
    with pytest.raises(ValueError, match=r"^max_speed, max_acceleration and dt must be > 0$"):
        plan_reset([0.0], [1.0], 0.5, 1.0, 0.0)


def test_a_move_far_shorter_than_one_period_is_still_one_step():
    # 1e-22 rad: triangle peak sqrt(1e-22 x 1) = 1e-11 rad/s, profile 2e-11 s long; 2e-11 / 0.05 =
    # 4e-10 periods, ceil(4e-10 - 1e-9) = 0, so max(1, .) = 1 step of 1e-22 / 0.05 = 2e-21 rad/s
    plan = plan_reset([0.0], [1e-22], 0.5, 1.0, 0.05)
    assert plan.steps == 1
    assert plan.positions.tolist() == [[0.0], [1e-22]]
    assert plan.velocities[0, 0] == pytest.approx(2e-21, rel=1e-12)


# ---------------------------------------------------------------- track_command


def test_tracking_at_the_plans_last_step_servos_on_the_target():
    # the by-hand trapezoid of test_reset_motion has 5 steps; k = 5 is the first step past it:
    # no feedforward, 2 x (target - q) = 2 x ([1, -0.5] - [0.9, -0.5]) = [0.2, 0.0]
    plan = plan_reset([0.0, 0.0], [1.0, -0.5], 0.5, 1.0, 0.5)
    kw = {"interface": "velocity", "gain": 2.0, "max_speed": 0.5, "max_acceleration": 1.0}
    cmd = track_command(plan, 5, np.array([0.9, -0.5]), np.zeros(2), **kw)
    np.testing.assert_allclose(cmd, [0.2, 0.0], atol=1e-12)


# ---------------------------------------------------------------- arrived_and_still


@pytest.mark.parametrize(
    ("q", "qd", "target", "expected"),
    [
        ([1.0, 2.0], [0.0], [1.0, 2.0], False),  # one velocity for two joints (would broadcast)
        ([1.0], [0.0, 0.0], [1.0, 1.0], False),  # one position for two joints (would broadcast)
        ([1.5, 2.0], [0.0, 0.0], [1.0, 2.0], True),  # |1.5 - 1| = 0.5 = tolerance: within
        ([1.0, 2.0], [0.5, 0.0], [1.0, 2.0], True),  # |0.5| = 0.5 = tolerance: still
        ([0.4, 2.0], [0.0, 0.0], [1.0, 2.0], False),  # 0.6 short of the target (below it)
        ([1.0, 2.0], [-0.6, 0.0], [1.0, 2.0], False),  # moving at 0.6 rad/s backwards
    ],
)
def test_arrival_needs_matching_lengths_and_both_tolerances_on_both_sides(q, qd, target, expected):
    # tolerances 0.5 rad and 0.5 rad/s: binary-exact, so the boundary cases are exact
    assert arrived_and_still(np.array(q), np.array(qd), np.array(target), 0.5, 0.5) is expected


# ---------------------------------------------------------------- ResetMotion

# Joint 1 starts 0.04 rad above home (0.0): with max_speed 0.5, max_acceleration 1.0 a triangle:
# peak sqrt(0.04 x 1) = 0.2 rad/s at 0.2 s, done at 0.4 s = 8 periods of 0.05 s. Distance covered
# at t = 0.05 k: 0.5 t^2 up to 0.2 s, then 0.04 - 0.5 (0.4 - t)^2:
# 0, 0.00125, 0.005, 0.01125, 0.02, 0.02875, 0.035, 0.03875, 0.04; velocities (differences / 0.05):
# 0.025, 0.075, 0.125, 0.175, 0.175, 0.125, 0.075, 0.025 (all downwards)
ON_PATH = [0.04, 0.03875, 0.035, 0.02875, 0.02, 0.01125, 0.005, 0.00125]
PLANNED = [-0.025, -0.075, -0.125, -0.175, -0.175, -0.125, -0.075, -0.025]


def _at(j1: float, dj2: float = 0.0) -> np.ndarray:
    """Home with joint 1 at ``j1`` and joint 2 moved by ``dj2``."""
    q = HOME.copy()
    q[0], q[1] = j1, q[1] + dj2
    return q


def test_on_the_path_each_command_is_the_planned_velocity_of_its_step():
    # on the path the feedback is 0 and each change is 0.05 = max_acceleration x dt at most: the
    # commands are the plan's velocities, one step per tick
    m = _motion()
    sent = []
    for k, j1 in enumerate(ON_PATH):
        qd = ZERO.copy()
        qd[0] = PLANNED[k - 1] if k else 0.0  # moving at the last command: never still
        cmd, out = m.step(JOINTS, _at(j1), qd, 0.05 * k, 0.05 * k)
        assert out is None
        sent.append(cmd.copy())
    sent_a = np.array(sent)
    np.testing.assert_allclose(sent_a[:, 0], PLANNED, atol=1e-12)
    np.testing.assert_allclose(sent_a[:, 1:], 0.0, atol=1e-12)
    assert m.plan is not None and m.plan.steps == 8


def test_off_the_path_the_feedback_pulls_with_the_configured_gain():
    # step 1: joint 2 measured 0.005 rad above its (unmoving) path: 2.0 x -0.005 = -0.01 rad/s;
    # joint 1 on the path: its planned -0.075
    m = _motion()
    m.step(JOINTS, _at(0.04), ZERO, 0.0, 0.0)
    cmd, out = m.step(JOINTS, _at(0.03875, dj2=0.005), ZERO, 0.05, 0.05)
    assert out is None
    np.testing.assert_allclose(cmd, [-0.075, -0.01, 0, 0, 0, 0, 0], atol=1e-12)


def test_the_duration_counts_from_the_resets_start_not_from_time_zero():
    # started at 100 s, still at home from 100.0 to 100.2: arrived after settle_s 0.2, duration 0.2
    m = _motion(started=100.0)
    outs = [m.step(JOINTS, HOME, ZERO, t, t)[1] for t in (100.0, 100.05, 100.1, 100.15)]
    assert outs == [None] * 4
    _, out = m.step(JOINTS, HOME, ZERO, 100.2, 100.2)
    assert out is not None and out.success
    assert out.duration_s == pytest.approx(0.2, abs=1e-9)


def test_the_timeout_fails_only_once_it_has_passed():
    # timeout_s 20: at exactly 20 s not yet; at 20.05 s the failure, with no states ever seen
    m = _motion()
    assert m.timed_out(20.0) is None
    res = m.timed_out(20.05)
    assert res is not None
    assert res[1].reason == (
        "did not reach the start pose within timeout_s 20 s (no joint_states arrived; max_speed 0.5 rad/s)"
    )


def test_after_a_failure_every_step_sends_the_safe_command_and_the_same_outcome():
    # step 0 moves (-0.025 on joint 1); step 1 is 1 s old: stale, failed; step 2 is fresh and on the
    # path again, but the reset stays failed: zero (panda-reset's safe command) and the same outcome
    m = _motion()
    cmd, _ = m.step(JOINTS, _at(0.04), ZERO, 0.0, 0.0)
    assert cmd[0] == pytest.approx(-0.025, abs=1e-12)
    _, failed = m.step(JOINTS, _at(0.04), ZERO, 0.0, 1.0)
    assert failed is not None and not failed.success
    cmd, again = m.step(JOINTS, _at(0.03875), ZERO, 1.05, 1.05)
    assert again is failed
    assert cmd.tolist() == [0.0] * 7


def test_a_stale_state_fails_with_the_shields_words_and_no_joint():
    # the stale observation is a whole-command event (joint None): nothing like " on None"
    m = _motion()
    _, out = m.step(JOINTS, HOME, ZERO, 0.0, 1.0)
    assert out is not None
    assert out.reason == (
        "the reset's shield intervened (stale_observation: observation 1 s old > max_observation_age 0.25)"
    )


@pytest.mark.parametrize(
    ("position", "velocity"),
    [
        (HOME, np.array([np.nan, 0, 0, 0, 0, 0, 0])),  # a NaN velocity
        (HOME, np.zeros(8)),  # eight velocities for seven names
    ],
)
def test_a_joint_state_the_reset_cannot_read_fails_it_naming_the_joints(position, velocity):
    m = _motion()
    _, out = m.step(JOINTS, position, velocity, 0.0, 0.0)
    assert out is not None and not out.success
    assert out.reason == f"joint_states do not carry finite values for {list(JOINTS)}"


def test_joint_states_in_another_order_are_read_by_name():
    # names and positions reversed: at home all the same, so with settle_s 0 arrived at once, error 0
    reset, _ = _panda()
    m = _motion(cfg=reset.model_copy(update={"settle_s": 0.0}))
    _, out = m.step(JOINTS[::-1], HOME[::-1], ZERO, 0.0, 0.0)
    assert out is not None and out.success and out.reason == "arrived"
    assert out.error == 0.0


def test_the_error_is_the_distance_on_either_side_of_the_target():
    # joint 1 at -0.3, target 0.0: 0.3 rad away (below the target)
    m = _motion()
    m.step(JOINTS, _at(-0.3), ZERO, 0.0, 0.0)
    assert m.error == pytest.approx(0.3, abs=1e-15)


def test_settling_counts_from_the_first_still_states_arrival_not_from_the_tick():
    # states arrive 0.1 s before each tick (fresh: 0.1 <= 0.25); still from arrival 0.0: at arrival
    # 0.2 (tick 0.3) settle_s 0.2 has passed: arrived, duration 0.3
    m = _motion()
    ticks = [(0.0, 0.1), (0.05, 0.15), (0.1, 0.2), (0.15, 0.25)]
    assert [m.step(JOINTS, HOME, ZERO, a, t)[1] for a, t in ticks] == [None] * 4
    _, out = m.step(JOINTS, HOME, ZERO, 0.2, 0.3)
    assert out is not None and out.success and out.duration_s == pytest.approx(0.3, abs=1e-12)


def test_a_state_exactly_max_observation_age_old_still_counts_as_fresh():
    # panda-reset's max_observation_age is 0.25: a state from 0.0 read at 0.25 is fresh (the shield
    # takes it too), so with settle_s 0 the reset has arrived
    reset, _ = _panda()
    m = _motion(cfg=reset.model_copy(update={"settle_s": 0.0}))
    _, out = m.step(JOINTS, HOME, ZERO, 0.0, 0.25)
    assert out is not None and out.success and out.reason == "arrived"


def test_leaving_the_pose_restarts_the_settle_time():
    # binary-exact times: at home at 0.0, pushed 0.03 rad off (> 0.02) at 0.125, back from 0.25:
    # settled 0.25 s after 0.25, at 0.5 (and not at 0.25, which is 0.25 s after the first arrival)
    m = _motion()
    seq = [(0.0, HOME), (0.125, _at(0.03)), (0.25, HOME), (0.375, HOME)]
    assert [m.step(JOINTS, q, ZERO, t, t)[1] for t, q in seq] == [None] * 4
    _, out = m.step(JOINTS, HOME, ZERO, 0.5, 0.5)
    assert out is not None and out.success and out.duration_s == 0.5


class _TwoInterventions:
    """A shield stand-in that corrects two joints in one step."""

    def __init__(self) -> None:
        limits = _panda()[1]
        self.limits = limits
        self.state = safety.SafetyShield(limits).state

    def safe_command(self) -> np.ndarray:
        return np.zeros(7)

    def note_measurement(self, js: Any) -> None:
        pass

    def hold_is_a_guess(self) -> bool:
        return False

    def filter(self, js: Any, cmd: Any, now: float) -> Any:
        from safety.types import Intervention

        ivs = (
            Intervention("position_limit", "panda_joint2", 0.1, 0.0, "first"),
            Intervention("velocity_limit", "panda_joint5", 0.1, 0.0, "second"),
        )
        return type("Out", (), {"interventions": ivs, "command": np.zeros(7)})()


def test_a_shield_correction_is_reported_by_its_first_intervention():
    reset, _ = _panda()
    m = ResetMotion(reset, _TwoInterventions(), JOINTS, HOME, 0.05, 0.0)
    _, out = m.step(JOINTS, _at(0.04), ZERO, 0.0, 0.0)
    assert out is not None
    assert out.reason == "the reset's shield intervened (position_limit on panda_joint2: first)"


# ---------------------------------------------------------------- reset_config


def test_a_box_may_pin_a_joint_with_equal_corners():
    assert StartBox(low=[0.1, -0.2], high=[0.1, 0.3]).low == [0.1, -0.2]


def test_a_box_with_sides_of_different_lengths_names_both():
    with pytest.raises(ValueError, match=r"low has 2 entries but high has 1; give one per joint"):
        StartBox(low=[0.0, 0.0], high=[1.0])


def _reset(**fields: Any) -> ResetConfig:
    panda = yaml.safe_load((CONFIGS / "robots" / "panda.yaml").read_text())
    return ResetConfig.model_validate({**panda["reset"], **fields})


def test_a_box_of_another_length_than_home_is_refused():
    with pytest.raises(ValueError, match=r"box has 6 entries per side, home has 7; give one per joint"):
        _reset(box={"low": [0.0] * 6, "high": [0.1] * 6})


def _limits(name: str, edit: Any = None, **top: Any) -> Any:
    """configs/safety/<name>.yaml with top-level keys replaced and ``edit`` applied to the data."""
    from safety.limits import parse_limits

    data = yaml.safe_load((CONFIGS / "safety" / f"{name}.yaml").read_text())
    data.update(top)
    if edit is not None:
        edit(data)
    return parse_limits(data, name)


def _joint(joint: str, **fields: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        for k, v in fields.items():
            if v is None:
                data["joints"][joint].pop(k)
            else:
                data["joints"][joint][k] = v

    return edit


def _envelope(kind: str, joint: str, bound: dict[str, float]) -> Any:
    def edit(data: dict[str, Any]) -> None:
        data["envelope"][kind][joint] = bound

    return edit


def _refusal(reset: ResetConfig, robot: Any, own: Any) -> str:
    with pytest.raises(ValueError) as err:
        check_reset_limits(reset, robot, own)
    return str(err.value)


P1 = {"min": -2.8973, "max": 2.8973, "soft_min": -2.6473, "soft_max": 2.6473}  # panda_joint1's range


@pytest.mark.parametrize(
    ("reset", "robot", "own", "expected"),
    [
        # the robot's joints in another order
        (
            {},
            {},
            {"edit": lambda d: d.update(joints=dict(reversed(list(d["joints"].items()))))},
            "limits list joints ['panda_joint7', 'panda_joint6', 'panda_joint5', 'panda_joint4', "
            "'panda_joint3', 'panda_joint2', 'panda_joint1'], the robot's limits ['panda_joint1', "
            "'panda_joint2', 'panda_joint3', 'panda_joint4', 'panda_joint5', 'panda_joint6', "
            "'panda_joint7']; list the same joints",
        ),
        (
            {},
            {},
            {"command_interface": "position", "safe_command": "hold", "max_step": 0.05},
            "limits command_interface 'position' differs from the robot's 'velocity'; use the same",
        ),
        (
            {},
            {"command_interface": "effort"},
            {"command_interface": "effort"},
            "a reset needs command_interface velocity or position (effort has no position servo); "
            "remove the reset section",
        ),
        (
            {},
            {},
            {"timing": {"control_period": 0.1, "max_observation_age": 0.25, "max_clock_skew": 0.0005}},
            "limits timing.control_period 0.1 differs from the robot's 0.05; use the same",
        ),
        (
            {},
            {},
            {"timing": {"control_period": 0.05, "max_observation_age": 0.5, "max_clock_skew": 0.0005}},
            "limits timing.max_observation_age exceeds the robot's; make it at most the robot's",
        ),
        (
            {"box": None, "home": [0.0] * 6},
            {},
            {},
            "home has 6 entries for 7 joints; give one per joint",
        ),
        # robot panda_joint1 acceleration 15.0
        (
            {},
            {},
            {"edit": _joint("panda_joint1", acceleration=16.0)},
            "limits joints.panda_joint1.acceleration 16.0 is not within the robot's 15.0; "
            "set it at most 15.0",
        ),
        # robot panda_joint1 velocity 2.175; the reset's own file sets none
        (
            {},
            {},
            {"edit": _joint("panda_joint1", velocity=None)},
            "limits joints.panda_joint1.velocity None is not within the robot's 2.175; set it at most 2.175",
        ),
        # robot command box [-2.175, 2.175]: the upper side wider
        (
            {},
            {},
            {"edit": _joint("panda_joint3", command={"min": -0.6, "max": 3.0})},
            "limits joints.panda_joint3.command [-0.6, 3.0] is outside the robot's [-2.175, 2.175]; "
            "narrow it",
        ),
        (
            {},
            {},
            {"edit": _joint("panda_joint1", position=None)},
            "limits joints.panda_joint1.position is missing; copy the robot's range or narrow it",
        ),
        (
            {},
            {},
            {"edit": _joint("panda_joint1", position={**P1, "max": 3.0})},
            "limits joints.panda_joint1.position is outside the robot's range; narrow it to within it",
        ),
        (
            {},
            {},
            {"edit": _joint("panda_joint1", position={**P1, "soft_min": -2.7})},
            "limits joints.panda_joint1.position is outside the robot's range; narrow it to within it",
        ),
        (
            {},
            {},
            {"edit": _joint("panda_joint1", position={**P1, "soft_max": 2.7})},
            "limits joints.panda_joint1.position is outside the robot's range; narrow it to within it",
        ),
        # max_speed 0.5 against a command box whose lower side only reaches -0.4
        (
            {},
            {},
            {"edit": _joint("panda_joint1", command={"min": -0.4, "max": 0.6})},
            "max_speed 0.5 exceeds limits joints.panda_joint1.command [-0.4, 0.6]; lower max_speed",
        ),
        # ... and whose upper side only reaches 0.4
        (
            {},
            {},
            {"edit": _joint("panda_joint1", command={"min": -0.6, "max": 0.4})},
            "max_speed 0.5 exceeds limits joints.panda_joint1.command [-0.6, 0.4]; lower max_speed",
        ),
        # the reset's envelope without a lower side where the robot's has one
        (
            {},
            {},
            {"edit": _envelope("positions", "panda_joint1", {"max": 2.9473})},
            "limits envelope.positions.panda_joint1 [None, 2.9473] is not within the robot's "
            "[-2.9473, 2.9473]; narrow it",
        ),
        # ... with a wider upper side (robot's [-2.72, 2.72])
        (
            {},
            {},
            {"edit": _envelope("velocities", "panda_joint2", {"min": -1.0, "max": 3.0})},
            "limits envelope.velocities.panda_joint2 [-1.0, 3.0] is not within the robot's [-2.72, 2.72]; "
            "narrow it",
        ),
        # the box's high corner of joint 4 (-0.2) past the soft range's upper end -0.3198
        (
            {"box": {"low": HOME.tolist(), "high": [*HOME[:3].tolist(), -0.2, *HOME[4:].tolist()]}},
            {},
            {},
            "start pose panda_joint4 = -0.2 is outside the reset limits' soft range [-2.8218, -0.3198]; "
            "move the pose inside it",
        ),
        # home outside the soft range refuses even when a box chooses the start poses
        (
            {"home": [*HOME[:3].tolist(), -0.2, *HOME[4:].tolist()]},
            {},
            {},
            "start pose panda_joint4 = -0.2 is outside the reset limits' soft range [-2.8218, -0.3198]; "
            "move the pose inside it",
        ),
        # a joint without a position range (joint 1, on both) does not end the check of the others
        (
            {"box": None, "home": [*HOME[:3].tolist(), -0.2, *HOME[4:].tolist()]},
            {"edit": _joint("panda_joint1", position=None)},
            {"edit": _joint("panda_joint1", position=None)},
            "start pose panda_joint4 = -0.2 is outside the reset limits' soft range [-2.8218, -0.3198]; "
            "move the pose inside it",
        ),
    ],
)
def test_reset_limits_outside_the_robots_are_refused_with_the_fix(reset, robot, own, expected):
    assert _refusal(_reset(**reset), _limits("panda", **robot), _limits("panda-reset", **own)) == (
        f"reset: {expected}"
    )


@pytest.mark.parametrize(
    ("reset", "robot", "own"),
    [
        # the reset's velocity limit equal to the robot's 2.175 (max_speed 0.5 within both)
        ({}, {}, {"edit": _joint("panda_joint1", velocity=2.175)}),
        # max_step equal to the robot's 0.05; max_acceleration 1.0 x 0.05 = 0.05 fits it exactly
        ({}, {"max_step": 0.05}, {"max_step": 0.05}),
        # max_speed 0.6 equal to the reset's velocity limit and command box [-0.6, 0.6]
        ({"max_speed": 0.6}, {}, {}),
        # home exactly on joint 4's soft upper end -0.3198
        ({"box": None, "home": [*HOME[:3].tolist(), -0.3198, *HOME[4:].tolist()]}, {}, {}),
    ],
)
def test_reset_limits_on_the_robots_bounds_are_accepted(reset, robot, own):
    assert (
        check_reset_limits(_reset(**reset), _limits("panda", **robot), _limits("panda-reset", **own)) is None
    )
