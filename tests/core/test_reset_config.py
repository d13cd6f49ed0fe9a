"""The robot config's reset section: what it accepts, and one line with the fix for what it refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bremen_robot.errors import ConfigError
from bremen_robot.robot_config import load_robot_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def write_robot(tmp: Path, base: str = "panda", reset: dict[str, Any] | None = None, **limits: Any) -> Path:
    """configs/robots/<base>.yaml with ``reset`` merged into its reset section (Panda's, copied,
    for other robots) and ``limits`` (joint -> field -> value) changed in the reset limits."""
    data = yaml.safe_load((CONFIGS / "robots" / f"{base}.yaml").read_text())
    panda = yaml.safe_load((CONFIGS / "robots" / "panda.yaml").read_text())
    data["safety"] = str(CONFIGS / "safety" / f"{base}.yaml")
    lim = yaml.safe_load((CONFIGS / "safety" / "panda-reset.yaml").read_text())
    for joint, fields in limits.items():
        lim["joints"][joint].update(fields)
    (tmp / "reset-limits.yaml").write_text(yaml.safe_dump(lim))
    data["reset"] = {**panda["reset"], "limits": str(tmp / "reset-limits.yaml"), **(reset or {})}
    path = tmp / f"{base}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_robot_config(path)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_the_shipped_panda_reset_loads():
    robot = load_robot_config(CONFIGS / "robots" / "panda.yaml")
    r = robot.reset
    assert r is not None and r.max_speed == 0.5 and r.timeout_s == 20.0
    assert r.limits == (CONFIGS / "safety" / "panda-reset.yaml").resolve()
    assert r.box is not None and len(r.box.low) == 7


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("halfcheetah", "robot 'halfcheetah' has an unactuated base (rootz, rooty)"),
        ("hopper", "robot 'hopper' has an unactuated base (rootz, rooty)"),
        ("walker2d", "robot 'walker2d' has an unactuated base (rootz, rooty)"),
        ("ant", "robot 'ant' has a floating base"),
    ],
)
def test_robots_whose_base_is_not_actuated_refuse_a_reset(tmp_path, base, expected):
    msg = refusal(write_robot(tmp_path, base))
    assert f"reset: {expected}: its joints cannot move it back to a start pose" in msg
    assert msg.endswith(
        "remove the reset section (episodes start when the operator calls bremen/start_episode)"
    )


@pytest.mark.parametrize(
    ("reset", "limits", "expected"),
    [
        (
            {},
            {"panda_joint2": {"velocity": 3.0}},
            "reset: limits joints.panda_joint2.velocity 3.0 is not within the robot's 2.175; "
            "set it at most 2.175",
        ),
        (
            {},
            {"panda_joint3": {"command": {"min": -3.0, "max": 0.6}}},
            "reset: limits joints.panda_joint3.command [-3.0, 0.6] is outside the robot's "
            "[-2.175, 2.175]; narrow it",
        ),
        (
            {},
            {"panda_joint1": {"position": {"min": -3.0, "max": 2.8973}}},
            "reset: limits joints.panda_joint1.position is outside the robot's range; narrow it to within it",
        ),
        (
            {"max_speed": 0.7},
            {},
            "reset: max_speed 0.7 exceeds limits joints.panda_joint1.velocity 0.6; lower max_speed",
        ),
        (
            {"max_acceleration": 2.0},
            {},
            "reset: max_acceleration 2.0 exceeds limits joints.panda_joint1.acceleration 1.5; "
            "lower max_acceleration",
        ),
        (
            {"box": None, "home": [0.0, -0.7854, 0.0, -0.2, 0.0, 1.5708, 0.7854]},
            {},
            "reset: start pose panda_joint4 = -0.2 is outside the reset limits' soft range "
            "[-2.8218, -0.3198]; move the pose inside it",
        ),
    ],
)
def test_reset_limits_must_lie_within_the_robots(tmp_path, reset, limits, expected):
    path = write_robot(tmp_path, reset=reset, **limits)
    assert refusal(path) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        (
            {"box": None, "home": [0.0] * 6},
            "reset.home has 6 entries for 7 joints; give one per joint in the order of joints",
        ),
        ({"poses": [[0.0] * 7]}, "poses and box are both set; give one way to choose start poses"),
        ({"box": None, "poses": [[0.0] * 6]}, "poses[0] has 6 entries, home has 7; give one per joint"),
        ({"timeout_s": 0}, "timeout_s"),
        # a NaN corner once read "low nan > high 0.3; swap them", the wrong fix
        (
            {"box": {"low": [float("nan")] * 7, "high": [0.3] * 7}},
            "reset.box.low.0: Input should be a finite number (got nan); set reset.box.low.0 to a "
            "finite number",
        ),
        ({"retry": True}, "retry"),
    ],
)
def test_malformed_reset_sections_are_refused_in_one_line(tmp_path, reset, expected):
    msg = refusal(write_robot(tmp_path, reset=reset))
    assert expected in msg


def test_a_missing_reset_limits_file_names_it(tmp_path):
    path = write_robot(tmp_path, reset={"limits": "nowhere.yaml"})
    assert refusal(path).endswith("nowhere.yaml: file not found; pass an existing limits file")


def test_collect_refuses_a_bad_reset_with_one_line_and_exit_2(tmp_path):
    robot = write_robot(tmp_path, reset={"max_speed": 0.7})
    cfg = tmp_path / "collect.yaml"
    cfg.write_text(yaml.safe_dump({"robot": str(robot), "sim": "none", "mode": "realtime"}))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        "-m",
        "bremen_robot",
        "collect",
        "--config",
        str(cfg),
        "--random",
        "--episodes",
        "1",
    ]
    run = subprocess.run(
        [*cmd, "--out", str(tmp_path / "bag"), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: {robot}: reset: max_speed 0.7 exceeds limits joints.panda_joint1.velocity 0.6; "
        "lower max_speed"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda env: env["positions"].pop("panda_joint4"),
            "reset: limits envelope.positions.panda_joint4 is missing; the robot's is [-3.1218, -0.0198]: "
            "copy it or narrow it",
        ),
        (
            lambda env: env["velocities"].update(panda_joint2={"min": -3.0, "max": 1.0}),
            "reset: limits envelope.velocities.panda_joint2 [-3.0, 1.0] is not within the robot's "
            "[-2.72, 2.72]; narrow it",
        ),
    ],
)
def test_the_reset_envelope_must_lie_within_the_robots(tmp_path, change, expected):
    # the runner's shield is idle during a reset: only the reset's envelope can stop a pushed arm
    path = write_robot(tmp_path)
    lim_path = tmp_path / "reset-limits.yaml"
    lim = yaml.safe_load(lim_path.read_text())
    change(lim["envelope"])
    lim_path.write_text(yaml.safe_dump(lim))
    assert refusal(path) == f"{path}: {expected}"


def _panda_limits(name: str, **top: Any) -> Any:
    from safety.limits import parse_limits

    data = yaml.safe_load((CONFIGS / "safety" / f"{name}.yaml").read_text())
    return parse_limits({**data, **top}, name)


def _panda_reset(**fields: Any) -> Any:
    from bremen_robot.reset_config import ResetConfig

    panda = yaml.safe_load((CONFIGS / "robots" / "panda.yaml").read_text())
    return ResetConfig.model_validate({**panda["reset"], **fields})


@pytest.mark.parametrize(
    ("robot_step", "reset_step", "max_speed", "expected"),
    [
        # position interface, control period 0.05 s: max_speed 0.4 rad/s moves 0.02 per period
        (
            None,
            None,
            0.4,
            "limits max_step for panda_joint1 is missing; a position reset needs it: "
            "set it to at least max_speed x control_period = 0.02",
        ),
        (
            None,
            0.01,
            0.4,
            "max_speed 0.4 moves 0.02 per control period, more than limits max_step for "
            "panda_joint1 0.01; lower max_speed or raise max_step",
        ),
        (
            0.05,
            None,
            0.4,
            "limits max_step for panda_joint1 is missing; the robot's is 0.05: set it at most 0.05",
        ),
        (
            0.05,
            0.06,
            0.4,
            "limits max_step for panda_joint1 0.06 is not within the robot's 0.05; set it at most 0.05",
        ),
        (
            0.05,
            {"panda_joint1": 0.03},
            0.4,
            "limits max_step for panda_joint2 is missing; the robot's is 0.05: set it at most 0.05",
        ),
        (0.05, 0.025, 0.5, None),  # exactly one period's motion, 0.5 x 0.05 = 0.025: accepted
        (
            0.05,
            0.02,
            0.4,
            # 0.4 x 0.05 is 0.020000000000000004 in floats, past 0.02: until 2026-12-07 accepted,
            # and every such reset of an ideal robot then failed on the shield's max_step
            "max_speed 0.4 moves 0.020000000000000004 per control period, more than limits max_step "
            "for panda_joint1 0.02; lower max_speed or raise max_step",
        ),
        (None, 0.03, 0.4, None),
    ],
)
def test_a_position_reset_needs_a_step_limit_within_the_robots(robot_step, reset_step, max_speed, expected):
    """With a position interface the shield bounds a command by the box and the soft range only,
    unless max_step is set: a reset without it could command a jump across the range."""
    from bremen_robot.reset_config import check_reset_limits

    position = {"command_interface": "position", "safe_command": "hold"}
    robot = _panda_limits("panda", **position, max_step=robot_step)
    own = _panda_limits("panda-reset", **position, max_step=reset_step)
    reset = _panda_reset(max_speed=max_speed)
    if expected is None:
        check_reset_limits(reset, robot, own)
        return
    with pytest.raises(ValueError) as err:
        check_reset_limits(reset, robot, own)
    assert str(err.value) == f"reset: {expected}"


def test_a_velocity_reset_keeps_within_the_robots_step_limit():
    from bremen_robot.reset_config import check_reset_limits

    robot, own = _panda_limits("panda", max_step=0.1), _panda_limits("panda-reset", max_step=0.2)
    with pytest.raises(ValueError) as err:
        check_reset_limits(_panda_reset(), robot, own)
    assert str(err.value) == (
        "reset: limits max_step for panda_joint1 0.2 is not within the robot's 0.1; set it at most 0.1"
    )
    check_reset_limits(_panda_reset(), robot, _panda_limits("panda-reset", max_step=0.1))
    check_reset_limits(_panda_reset(), _panda_limits("panda"), own)  # the robot sets none: any
    # max_acceleration 0.4 rad/s^2 changes the velocity command by 0.02 per 0.05 s period
    tight = _panda_limits("panda-reset", max_step=0.01)
    with pytest.raises(ValueError) as err:
        check_reset_limits(_panda_reset(max_acceleration=0.4), _panda_limits("panda"), tight)
    assert str(err.value) == (
        "reset: max_acceleration 0.4 changes the command by 0.02 per control period, more than limits "
        "max_step for panda_joint1 0.01; lower max_acceleration or raise max_step"
    )
    # 0.2 x 0.05 is 0.010000000000000002, past 0.01 (accepted until 2026-12-07); 0.19 fits
    with pytest.raises(ValueError, match="changes the command by 0.010000000000000002 per control period"):
        check_reset_limits(_panda_reset(max_acceleration=0.2), _panda_limits("panda"), tight)
    check_reset_limits(_panda_reset(max_acceleration=0.19), _panda_limits("panda"), tight)


def test_a_position_reset_keeps_within_the_acceleration_limit():
    """The shield limits a position command's change of step by acceleration x period^2, so the
    reset's max_acceleration must fit it on a position interface too, not only on velocity."""
    from bremen_robot.reset_config import check_reset_limits

    position = {"command_interface": "position", "safe_command": "hold", "max_step": 0.05}
    robot, own = _panda_limits("panda", **position), _panda_limits("panda-reset", **position)
    with pytest.raises(ValueError) as err:
        check_reset_limits(_panda_reset(max_acceleration=5.0), robot, own)
    assert str(err.value) == (
        "reset: max_acceleration 5.0 exceeds limits joints.panda_joint1.acceleration 1.5; "
        "lower max_acceleration"
    )
    check_reset_limits(_panda_reset(max_acceleration=1.5), robot, own)


def test_the_reset_nodes_limits_follow_its_control_rate():
    """Until 2026-12-07 reset_node's shield applied panda-reset.yaml's per-second limits per the
    file's 0.05 s whatever rate it commanded at: at 100 Hz it let the velocity command change by
    1.5 x 0.05 = 0.075 rad/s per 0.01 s, 5x the acceleration limit (7.5 rad/s^2 against 1.5);
    now 1.5 x 0.01 = 0.015 per step."""
    import numpy as np

    import safety
    from bremen_robot.ros.runner_wiring import reset_limits

    robot = load_robot_config(CONFIGS / "robots" / "panda.yaml")
    assert reset_limits(robot, 20.0).timing.control_period == 0.05  # the file's own rate
    limits = reset_limits(robot, 100.0)
    assert limits.timing.control_period == 0.01
    shield = safety.SafetyShield(limits)
    names = tuple(robot.joints)
    still = safety.JointState(names, np.array(robot.reset.home), np.zeros(7), 0.0)
    out = shield.filter(still, np.full(7, 0.075), 0.0)
    np.testing.assert_allclose(out.command, np.full(7, 0.015), rtol=1e-12)
    assert {iv.reason for iv in out.interventions} == {"rate_limit"}


def test_a_reset_that_no_longer_fits_its_step_limit_at_the_control_rate_is_refused(tmp_path):
    """max_step 0.05 holds max_acceleration 1.0 x 0.05 s at the file's 20 Hz; at 10 Hz a step
    changes the velocity command by 0.1: every reset would fail on its first correction."""
    from bremen_robot.ros.runner_wiring import reset_limits

    lim = yaml.safe_load((CONFIGS / "safety" / "panda-reset.yaml").read_text())
    lim["max_step"] = 0.05
    (tmp_path / "reset-limits.yaml").write_text(yaml.safe_dump(lim))
    data = yaml.safe_load((CONFIGS / "robots" / "panda.yaml").read_text())
    data["safety"] = str(CONFIGS / "safety" / "panda.yaml")
    data["reset"]["limits"] = str(tmp_path / "reset-limits.yaml")
    path = tmp_path / "panda.yaml"
    path.write_text(yaml.safe_dump(data))
    robot = load_robot_config(path)
    assert reset_limits(robot, 20.0).max_step == 0.05
    with pytest.raises(ConfigError) as err:
        reset_limits(robot, 10.0)
    assert str(err.value) == (
        f"{path}: reset at control_rate_hz 10: max_acceleration 1.0 changes the command by 0.1 per "
        "control period, more than limits max_step for panda_joint1 0.05; lower max_acceleration or "
        "raise max_step"
    )
