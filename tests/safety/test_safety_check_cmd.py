"""``bremen safety check``: the one-line check docs/hardware.md tells a new robot's owner to run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bremen_robot.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["safety", "check", *argv])
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_a_good_file_gets_a_one_line_summary(capsys: pytest.CaptureFixture[str]) -> None:
    path = CONFIGS / "safety" / "halfcheetah.yaml"
    assert _run(capsys, str(path)) == (
        0,
        f"{path}: ok: robot halfcheetah, 6 joint(s) (bthigh, bshin, bfoot, fthigh, fshin, ffoot), "
        "effort commands, safe command zero, control period 0.05 s",
        "",
    )


def test_with_the_robot_config_its_joints_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    robot = CONFIGS / "robots" / "panda.yaml"
    code, out, _ = _run(capsys, str(CONFIGS / "safety" / "panda.yaml"), "--robot", str(robot))
    assert code == 0 and out.endswith(
        f"control period 0.05 s; its joints, name and rate match {robot}, which uses this file"
    )
    ant = CONFIGS / "safety" / "ant.yaml"
    assert _run(capsys, str(ant), "--robot", str(robot)) == (
        2,
        "",
        f"error: {ant}: joints.hip_4: unknown joint for this robot (its joints are panda_joint1, "
        "panda_joint2, panda_joint3, panda_joint4, panda_joint5, panda_joint6, panda_joint7); "
        "fix the name or remove it",
    )


def test_a_missing_file_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`python -c "...safety.load_limits('configs/safety/myarm.yaml')"` (the old docs) printed a traceback."""
    path = tmp_path / "myarm.yaml"
    assert _run(capsys, str(path)) == (
        2,
        "",
        f"error: {path}: file not found; pass an existing limits file",
    )


def test_a_bad_field_names_the_field_and_the_fix(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = yaml.safe_load((CONFIGS / "safety" / "halfcheetah.yaml").read_text())
    data["safe_comand"] = data.pop("safe_command")
    path = tmp_path / "myarm.yaml"
    path.write_text(yaml.safe_dump(data))
    assert _run(capsys, str(path)) == (
        2,
        "",
        f"error: {path}: safe_comand: unknown field (did you mean 'safe_command'?); "
        "rename it to safe_command",
    )


def test_the_hardware_guide_runs_the_check_not_python() -> None:
    guide = (ROOT / "docs" / "hardware.md").read_text()
    assert "bremen safety check configs/safety/myarm.yaml --robot configs/robots/myarm.yaml" in guide
    assert "safety.load_limits(" not in guide


def _myarm(tmp_path: Path, limits: dict | None = None, **robot_fields: object) -> tuple[Path, Path]:
    """A robot folder as docs/hardware.md builds it: configs/robots/myarm.yaml (a copy of the
    Panda's, without its reset) and configs/safety/myarm.yaml (``limits``, default the Panda's)."""
    (tmp_path / "robots").mkdir(exist_ok=True)
    (tmp_path / "safety").mkdir(exist_ok=True)
    data = limits or yaml.safe_load((CONFIGS / "safety" / "panda.yaml").read_text())
    data["robot"] = data.get("robot") if limits else "myarm"
    lim = tmp_path / "safety" / "myarm.yaml"
    lim.write_text(yaml.safe_dump(data))
    robot = yaml.safe_load((CONFIGS / "robots" / "panda.yaml").read_text())
    robot.pop("reset")
    robot.update(name="myarm", simulated=False, safety="../safety/myarm.yaml")
    robot.update(robot_fields)
    robot = {k: v for k, v in robot.items() if v is not None}
    path = tmp_path / "robots" / "myarm.yaml"
    path.write_text(yaml.safe_dump(robot))
    return lim, path


def test_limits_in_degrees_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Docs: units are radians. Datasheets give degrees; ±166 loaded as ±166 rad (26 turns), so
    the position limits and the envelope never acted, and the check said ok."""
    data = yaml.safe_load((CONFIGS / "safety" / "panda.yaml").read_text())
    for joint in data["joints"].values():
        joint["position"] = {k: round(v * 180 / 3.141592653589793, 1) for k, v in joint["position"].items()}
    lim, robot = _myarm(tmp_path, {**data, "robot": "myarm"})
    assert _run(capsys, str(lim), "--robot", str(robot)) == (
        2,
        "",
        f"error: {lim}: joints.panda_joint1.position.min: -166 is more than two turns (4π rad); "
        "positions are in radians, so this looks like degrees: convert every angle with x·π/180 "
        "(-166° = -2.8972 rad), or, for a prismatic joint in metres, set unit: m in its position limits",
    )
    assert _run(capsys, str(lim))[0] == 2  # without --robot too


def test_a_long_prismatic_axis_in_metres_passes_and_an_envelope_in_degrees_does_not(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A linear track of 20 m was refused as degrees, with no way to say it is in metres; an
    envelope bound in degrees on a revolute joint passed (it would never latch the e-stop)."""
    data = yaml.safe_load((CONFIGS / "safety" / "panda.yaml").read_text())
    data["joints"]["panda_joint1"]["position"] = {"min": 0.0, "max": 20.0, "unit": "m"}
    data["joints"]["panda_joint1"]["command"] = {"min": 0.0, "max": 20.0}
    # a robot of its own (no sim model: the Panda's joint 1 is revolute, see the next test)
    lim, robot = _myarm(tmp_path, {**data, "robot": "myarm"}, sim_model=None)
    code, out, err = _run(capsys, str(lim), "--robot", str(robot))
    assert (code, err) == (0, "") and out.startswith(f"{lim}: ok: robot myarm, 7 joint(s)")
    # a 20 m envelope on the track is metres too; 170 on revolute joint 2 is degrees
    data["envelope"] = {"positions": {"panda_joint1": {"max": 20.0}, "panda_joint2": {"min": -170.0}}}
    lim, robot = _myarm(tmp_path, {**data, "robot": "myarm"}, sim_model=None)
    assert _run(capsys, str(lim), "--robot", str(robot)) == (
        2,
        "",
        f"error: {lim}: envelope.positions.panda_joint2.min: -170 is more than two turns (4π rad); "
        "positions are in radians, so this looks like degrees: convert every angle with x·π/180 "
        "(-170° = -2.9671 rad), or, for a prismatic joint in metres, set unit: m in its position limits",
    )


def test_the_robot_config_must_use_the_file_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`cp configs/robots/panda.yaml configs/robots/myarm.yaml` and forgetting to edit `safety:`
    left the robot on the Panda's limits, while the check of myarm's file said its joints match."""
    panda = CONFIGS / "safety" / "panda.yaml"
    lim, robot = _myarm(tmp_path, safety=str(panda))
    assert _run(capsys, str(lim), "--robot", str(robot)) == (
        2,
        "",
        f"error: {robot}: safety: is {panda}, not {lim}: the robot runs "
        f"with the other file; set safety: ../safety/myarm.yaml there, or check {panda}",
    )
    lim, robot = _myarm(tmp_path, safety=None)
    assert _run(capsys, str(lim), "--robot", str(robot)) == (
        2,
        "",
        f"error: {robot}: safety: not set, so the robot would run without these limits; "
        "add safety: ../safety/myarm.yaml",
    )


def test_the_limits_must_name_the_robot_and_its_rate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """docs/hardware.md: timing.control_period = 1 / control_rate_hz; the copied `robot: panda`."""
    panda = yaml.safe_load((CONFIGS / "safety" / "panda.yaml").read_text())
    lim, robot = _myarm(tmp_path, panda)
    assert _run(capsys, str(lim), "--robot", str(robot)) == (
        2,
        "",
        f"error: {lim}: robot: 'panda' but the robot config is 'myarm'; set robot: myarm",
    )
    lim, robot = _myarm(tmp_path, control_rate_hz=100)
    assert _run(capsys, str(lim), "--robot", str(robot)) == (
        2,
        "",
        f"error: {lim}: timing.control_period: 0.05 s but {robot} runs at 100 Hz; "
        "set control_period: 0.01 (1 / control_rate_hz)",
    )
    lim, robot = _myarm(tmp_path)
    code, out, err = _run(capsys, str(lim), "--robot", str(robot))
    assert (code, err) == (0, "") and out.endswith(
        f"its joints, name and rate match {robot}, which uses this file"
    )


@pytest.mark.parametrize("rate", [6, 60, 7.5])
def test_the_control_period_the_error_suggests_is_accepted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rate: float
) -> None:
    """At 60 Hz the error said 'set control_period: 0.0166667', which was refused again."""
    lim, robot = _myarm(tmp_path, control_rate_hz=rate)
    code, _, err = _run(capsys, str(lim), "--robot", str(robot))
    suggested = err.split("set control_period: ")[1].split(" ")[0]
    assert code == 2 and abs(float(suggested) - 1 / rate) < 1e-9
    data = yaml.safe_load(lim.read_text())
    data["timing"]["control_period"] = float(suggested)
    lim.write_text(yaml.safe_dump(data))
    assert _run(capsys, str(lim), "--robot", str(robot))[0] == 0


def test_the_robots_reset_limits_check_against_it(capsys: pytest.CaptureFixture[str]) -> None:
    """configs/robots/panda.yaml uses panda-reset.yaml as reset.limits: not 'another file' to
    put in safety: (the advice was to point the robot's own limits at the reset's)."""
    code, out, err = _run(
        capsys,
        str(CONFIGS / "safety" / "panda-reset.yaml"),
        "--robot",
        str(CONFIGS / "robots" / "panda.yaml"),
    )
    assert (code, err) == (0, ""), err


def test_a_unit_that_contradicts_the_sim_model_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """'unit: m' silences the degrees check, so on a revolute joint (the Panda's URDF says
    panda_joint2 is one) it would let ±170 through as 170 m."""
    data = yaml.safe_load((CONFIGS / "safety" / "panda.yaml").read_text())
    data["joints"]["panda_joint2"]["position"]["unit"] = "m"
    lim, robot = _myarm(tmp_path, {**data, "robot": "myarm"}, sim_model="panda")
    assert _run(capsys, str(lim), "--robot", str(robot)) == (
        2,
        "",
        f"error: {lim}: joints.panda_joint2.position.unit: m but the sim model 'panda' has "
        "panda_joint2 revolute (an angle, in rad); set unit: rad",
    )
    data["joints"]["panda_joint2"]["position"]["unit"] = "rad"
    lim, robot = _myarm(tmp_path, {**data, "robot": "myarm"}, sim_model="panda")
    assert _run(capsys, str(lim), "--robot", str(robot))[0] == 0


def test_an_ood_section_is_refused_for_a_robot_and_named_for_the_python_api(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The shield built by policy_runner got no ood_score, so a robot file's ood gate was off
    and the check said ok."""
    data = yaml.safe_load((CONFIGS / "safety" / "panda.yaml").read_text())
    lim, robot = _myarm(tmp_path, {**data, "robot": "myarm", "ood": {"threshold": 2.0, "fallback": "safe"}})
    assert _run(capsys, str(lim), "--robot", str(robot)) == (
        2,
        "",
        f"error: {lim}: ood: policy_runner, reset_node and the evaluations inject no OOD scorer (a policy "
        "artifact carries no dynamics ensemble), so this gate would never run; remove the ood section "
        "(every other limit still applies) or use it through the Python API with an ood_score",
    )
    code, out, err = _run(capsys, str(lim))
    assert (code, err) == (0, "") and out.endswith(
        "control period 0.05 s; its ood gate (threshold 2, fallback safe) runs only through the Python "
        "API with an ood_score: bremen's nodes refuse the file"
    )
