"""Limits files: messages and boundary cases of the loader, by value.

Written against one-line mutants applied by hand to safety/limits.py that every other test let
through (docs/testing.md, "Mutations the suite catches"). Each expected message is written out
from the code's wording and the values in the test, never read back from the loader.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from safety import JointState, SafetyConfigError, SafetyShield, load_limits, parse_limits

BASE: dict[str, Any] = {
    "robot": "mut",
    "command_interface": "effort",
    "safe_command": "zero",
    "command_box": {"min": -1.0, "max": 1.0},
    "joints": {"a": {"position": {"min": -1.0, "max": 1.0}}, "b": {}},
    "timing": {"control_period": 0.01, "max_observation_age": 0.05},
}


def _with(**top: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(top)
    return data


def _joint_a(**fields: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["joints"]["a"].update(fields)
    return data


def _message(data: Any) -> str:
    with pytest.raises(SafetyConfigError) as err:
        parse_limits(data, "lim.yaml")
    return str(err.value)


# --- contradictions named with the right fix -------------------------------------------------


def test_a_command_box_of_one_point_says_so_instead_of_asking_to_swap():
    """Mutant: `min >= max` in the first check, so min == max got 'swap them' (which changes
    nothing)."""
    assert _message(_with(command_box={"min": 0.5, "max": 0.5})) == (
        "lim.yaml: command_box: min equals max (0.5); give a range with min < max"
    )
    assert _message(_joint_a(command={"min": -0.25, "max": -0.25})) == (
        "lim.yaml: joints.a.command: min equals max (-0.25); give a range with min < max"
    )


def test_a_soft_range_of_one_point_is_refused():
    """Mutant: `soft_lo > soft_hi`, so soft_min == soft_max passed and the whole soft range was
    one position."""
    pos = {"min": -1.0, "max": 1.0, "soft_min": 0.2, "soft_max": 0.2}
    assert _message(_joint_a(position=pos)) == (
        "lim.yaml: joints.a.position: soft_min 0.2 >= soft_max 0.2; lower soft_min or raise soft_max"
    )


@pytest.mark.parametrize(("step", "where"), [(0, "max_step"), ({"a": 0.0}, "max_step.a")])
def test_a_max_step_of_zero_is_refused(step: Any, where: str):
    """Mutant: `step >= 0`, so max_step 0 passed and froze every command at the last one."""
    assert _message(_with(max_step=step)) == (
        f"lim.yaml: {where}: must be a finite number > 0, got 0.0; give a positive step"
    )


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [("effort", 10.0, "only enforced for"), ("effort_per_command", 2.0, "only used for")],
)
def test_effort_fields_are_refused_on_the_position_interface(field: str, value: float, what: str):
    """Mutant: the check ran for `velocity` only, so a position-interface file kept an effort
    limit that nothing enforces."""
    data = _joint_a(**{field: value})
    data.update(command_interface="position", safe_command="hold")
    data["joints"]["b"] = {"position": {"min": -1.0, "max": 1.0}}
    assert _message(data) == (f"lim.yaml: joints.a.{field}: {what} command_interface 'effort'; remove it")


def test_an_envelope_bound_of_one_point_is_a_closed_interval():
    """Mutant: Bound refused min == max. An extra that must equal 1 (a drive-enabled flag) is a
    closed interval [1, 1]: exactly 1 is inside, 0 is outside and latches the e-stop."""
    limits = parse_limits(_with(envelope={"extras": {"enabled": {"min": 1.0, "max": 1.0}}}))
    sh = SafetyShield(limits)
    js = JointState(("a", "b"), np.zeros(2), np.zeros(2), 0.0)
    out = sh.filter(js, [0.5, 0.5], 0.0, extras={"enabled": 1.0})
    assert out.command.tolist() == [0.5, 0.5] and out.interventions == ()
    js = JointState(("a", "b"), np.zeros(2), np.zeros(2), 0.01)
    out = sh.filter(js, [0.5, 0.5], 0.01, extras={"enabled": 0.0})
    assert out.safe and out.interventions[0].detail == "enabled 0 < min 1"
    assert sh.state.estop_latched


# --- the file and its messages ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["limits.JSON", "limits.Json"])
def test_a_json_suffix_in_capitals_is_read_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
):
    """Mutant: the suffix compared without lower(), so 'limits.JSON' went to PyYAML (a robot that
    keeps its limits as JSON need not have it)."""
    path = tmp_path / name
    path.write_text(json.dumps(BASE))
    monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` now raises ImportError
    limits = load_limits(path)
    assert limits.joint_names == ["a", "b"] and limits.timing.control_period == 0.01


@pytest.mark.parametrize("text", ["", "# nothing here yet\n"])
def test_an_empty_file_is_named_empty(tmp_path: Path, text: str):
    """Mutant: the empty-file check dropped, so an empty file got 'top level must be a mapping'.
    (test_safety_limits' `match="empty"` also matched the test's own tmp_path, '..._empty_0'.)"""
    path = tmp_path / "limits.yaml"
    path.write_text(text)
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    assert str(err.value) == f"{path}: file is empty; write the limits (see docs/safety.md)"


def test_a_yaml_syntax_error_names_its_line_counted_from_one(tmp_path: Path):
    """Mutant: PyYAML's 0-based line printed as it is. The tab that starts the file's 2nd line
    cannot start a YAML token: line 2."""
    path = tmp_path / "limits.yaml"
    path.write_text("robot: mut\n\tcommand_interface: effort\n")
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    assert str(err.value) == f"{path}: line 2 is not valid YAML; fix the syntax"


def test_a_long_bad_value_is_cut_to_forty_characters():
    """Mutant: cut at 40 then '...' (43 characters). repr of 50 x's is 52 characters: the first
    37 ("'" and 36 x's) and '...'; a repr of exactly 40 (38 x's) is kept whole."""
    long_msg = _message(_joint_a(velocity="x" * 50))
    assert long_msg == (
        "lim.yaml: joints.a.velocity: must be a number, got '" + "x" * 36 + "...; write a number such as 0.5"
    )
    kept = _message(_joint_a(velocity="x" * 38))
    assert (
        kept
        == "lim.yaml: joints.a.velocity: must be a number, got '" + "x" * 38 + "'; write a number such as 0.5"
    )
