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
    assert code == 0 and out.endswith(f"control period 0.05 s; its joints match {robot}")
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
