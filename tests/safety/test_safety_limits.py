"""Limits files: the shipped ones load and match their robots; contradictions are rejected
with one line naming the joint and field."""

from __future__ import annotations

import ast
import copy
import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from safety import JointState, SafetyConfigError, SafetyShield, load_limits, parse_limits

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "safety"

GOOD: dict[str, Any] = {
    "robot": "cheetah",
    "command_interface": "effort",
    "safe_command": "zero",
    "command_box": {"min": -1.0, "max": 1.0},
    "joints": {
        "bthigh": {"position": {"min": -0.52, "max": 1.05}, "velocity": 30.0},
        "bshin": {"position": {"min": -0.785, "max": 0.785, "soft_min": -0.7, "soft_max": 0.7}},
    },
    "timing": {"control_period": 0.05, "max_observation_age": 0.15},
}


def write(tmp_path: Path, data: Any, name: str = "limits.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def edited(**changes: Any) -> dict[str, Any]:
    """GOOD with dotted-path changes; a value of ... deletes the key."""
    data = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


# --- shipped files ---------------------------------------------------------------------------


@pytest.mark.parametrize("robot", ["halfcheetah", "hopper", "walker2d", "ant", "panda"])
def test_shipped_limits_load_and_build_a_shield(robot: str) -> None:
    limits = load_limits(CONFIGS / f"{robot}.yaml")
    assert limits.robot == robot
    shield = SafetyShield(limits)
    assert shield.n == len(limits.joint_names) > 0


def test_panda_limits_are_frankas_published_joint_limits() -> None:
    limits = load_limits(CONFIGS / "panda.yaml", joint_names=[f"panda_joint{i}" for i in range(1, 8)])
    assert limits.command_interface == "velocity" and limits.safe_command == "zero"
    q_min = [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]
    q_max = [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]
    dq_max = [2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61]
    ddq_max = [15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0]
    for i, name in enumerate(limits.joint_names):
        jl = limits.joints[name]
        assert jl.position is not None
        assert (jl.position.min, jl.position.max) == (q_min[i], q_max[i])
        assert jl.position.min < jl.position.soft_lo < jl.position.soft_hi < jl.position.max
        assert jl.velocity == dq_max[i] and jl.acceleration == ddq_max[i]
        assert (limits.box(name).min, limits.box(name).max) == (-dq_max[i], dq_max[i])


@pytest.mark.parametrize(
    ("robot", "xml"),
    [
        ("halfcheetah", "half_cheetah.xml"),
        ("hopper", "hopper.xml"),
        ("walker2d", "walker2d_v5.xml"),
        ("ant", "ant.xml"),
    ],
)
def test_mujoco_limits_match_the_gymnasium_model(robot: str, xml: str) -> None:
    """Joint order = actuator order, ranges = MJCF joint ranges, box = ctrlrange, effort = gear."""
    gym = pytest.importorskip("gymnasium")
    root = ET.parse(Path(gym.__file__).parent / "envs" / "mujoco" / "assets" / xml).getroot()
    compiler = root.find("compiler")
    degrees = compiler is None or compiler.get("angle", "degree") == "degree"
    ranges = {}
    for j in root.iter("joint"):
        if j.get("name") and j.get("range"):
            lo, hi = (float(x) for x in j.get("range", "").split())
            ranges[j.get("name")] = (math.radians(lo), math.radians(hi)) if degrees else (lo, hi)
    motors = [m for m in root.iter("motor") if m.get("joint")]
    order = [m.get("joint") for m in motors]
    limits = load_limits(CONFIGS / f"{robot}.yaml", joint_names=order)  # also checks names and order
    assert limits.joint_names == order
    with open(CONFIGS / f"{robot}.yaml") as f:
        assert list(yaml.safe_load(f)["joints"]) == order, "file must list joints in actuator order"
    for m in motors:
        name = m.get("joint")
        jl = limits.joints[name]
        assert jl.position is not None
        assert jl.position.min == pytest.approx(ranges[name][0], abs=1e-6)
        assert jl.position.max == pytest.approx(ranges[name][1], abs=1e-6)
        assert jl.effort_per_command == float(m.get("gear", "1"))
        box = limits.box(name)
        assert (box.min, box.max) == (-1.0, 1.0)


def test_limits_from_a_robot_joint_list_are_put_in_its_order() -> None:
    limits = parse_limits(GOOD, joint_names=["bshin", "bthigh"])
    assert limits.joint_names == ["bshin", "bthigh"]


def test_json_limits_load_without_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "limits.json"
    path.write_text(json.dumps(GOOD))
    monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` now raises ImportError
    limits = load_limits(path)
    assert limits.joint_names == ["bthigh", "bshin"]
    assert limits.joints["bthigh"].velocity == 30.0
    assert limits.joints["bshin"].position is not None and limits.joints["bshin"].position.soft_max == 0.7
    assert limits.timing.control_period == 0.05


def test_a_json_file_is_read_as_json_not_yaml(tmp_path: Path) -> None:
    """YAML would read this file (and JSON's superset rules hide the difference for valid JSON)."""
    path = tmp_path / "limits.json"
    path.write_text(yaml.safe_dump(GOOD))
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    assert str(err.value) == f"{path}: line 1 is not valid JSON; fix the syntax"


# --- rejections ----------------------------------------------------------------------------


def test_the_headline_error_names_file_joint_field_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, edited(joints__bthigh__position={"min": 1.0, "max": 0.5}))
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    assert str(err.value) == f"{path}: joints.bthigh.position: min 1.0 > max 0.5; swap them"
    assert isinstance(err.value, ValueError)


BAD = [
    (
        edited(joints__bshin__position={"min": -0.7, "max": 0.7, "soft_max": 0.9}),
        "joints.bshin.position",
        "soft_max",
    ),
    (
        edited(joints__bshin__position={"min": -0.7, "max": 0.7, "soft_min": -0.9}),
        "joints.bshin.position",
        "outside",
    ),
    (
        edited(joints__bshin__position={"min": -0.7, "max": 0.7, "soft_min": 0.5, "soft_max": 0.4}),
        "joints.bshin.position",
        "soft_min",
    ),
    (edited(joints__bshin__position={"min": 0.5, "max": 0.5}), "joints.bshin.position", "min equals max"),
    (edited(joints__bthigh__velocity=-3.0), "joints.bthigh.velocity", "> 0"),
    (edited(joints__bthigh__velocity=0.0), "joints.bthigh.velocity", "> 0"),
    (edited(joints__bthigh__acceleration=-1.0), "joints.bthigh.acceleration", "> 0"),
    (edited(joints__bthigh__effort=-5.0), "joints.bthigh.effort", "> 0"),
    (edited(joints__bthigh__velocity=float("inf")), "joints.bthigh.velocity", "finite"),
    (edited(joints__bthigh__velocity="fast"), "joints.bthigh.velocity", "number"),
    (edited(joints__bthigh__velocty=3.0), "joints.bthigh.velocty", "unknown field"),
    (edited(joints__bthigh__command={"min": 0.2, "max": 1.0}), "joints.bthigh.command", "safe command 0"),
    (edited(command_box={"min": 1.0, "max": -1.0}), "command_box", "swap them"),
    (edited(command_box=...), "joints.bthigh.command", "no command box"),
    (edited(timing__control_period=0.0), "timing.control_period", "> 0"),
    (edited(timing__max_observation_age=...), "timing.max_observation_age", "missing"),
    (edited(timing__max_clock_skew=-0.1), "timing.max_clock_skew", ">= 0"),
    (edited(safe_command="hold"), "safe_command", "use 'zero'"),
    (edited(command_interface="torque"), "command_interface", "torque"),
    (edited(max_step=-0.1), "max_step", "> 0"),
    (edited(max_step={"bthigh": 0.1, "knee": 0.2}), "max_step.knee", "unknown joint"),
    (edited(max_step={"bthigh": float("nan")}), "max_step.bthigh", "finite"),
    (edited(max_step={"bthigh": "big"}), "max_step", "must be a number"),
    (edited(envelope={"extras": {"tilt": {"min": 1.0, "max": 0.5}}}), "envelope.extras.tilt", "swap them"),
    (edited(envelope={"extras": {"tilt": {}}}), "envelope.extras.tilt", "neither min nor max"),
    (edited(joints={}), "joints", "at least 1"),
    (edited(robot=""), "robot", "must not be empty"),
    (edited(ood={"threshold": -1.0}), "ood.threshold", "> 0"),
    (edited(ood={"threshold": 1.0, "fallback": "bc"}), "ood.fallback", "'policy'"),
]


@pytest.mark.parametrize(("data", "where", "what"), BAD, ids=[f"{w}:{x}" for _, w, x in BAD])
def test_bad_limits_are_rejected_with_one_line(tmp_path: Path, data: dict, where: str, what: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {where}: ") or msg.startswith(f"{path}: {where}"), msg
    assert what in msg, msg


def test_effort_fields_are_rejected_for_other_interfaces(tmp_path: Path) -> None:
    data = edited(
        command_interface="velocity", command_box={"min": -2.0, "max": 2.0}, joints__bthigh__effort=10.0
    )
    with pytest.raises(
        SafetyConfigError, match=r"joints\.bthigh\.effort: only enforced for command_interface"
    ):
        load_limits(write(tmp_path, data))


def test_position_interface_needs_position_limits_and_hold(tmp_path: Path) -> None:
    data = edited(command_interface="position", safe_command="hold", joints__bthigh__position=...)
    with pytest.raises(SafetyConfigError, match=r"joints\.bthigh\.position: required"):
        load_limits(write(tmp_path, data))
    data = edited(command_interface="position", safe_command="hold", command_box={"min": 2.0, "max": 3.0})
    with pytest.raises(SafetyConfigError, match=r"joints\.bthigh\.command: box .* does not overlap"):
        load_limits(write(tmp_path, data))


def test_unknown_and_missing_joints_versus_the_robot(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path, joint_names=["bthigh", "bshin_joint"])
    assert str(err.value).startswith(f"{path}: joints.bshin: unknown joint for this robot")
    assert "bshin_joint" in str(err.value)
    with pytest.raises(
        SafetyConfigError, match=r"joints: no limits for robot joint 'bfoot'; add joints.bfoot"
    ):
        load_limits(path, joint_names=["bthigh", "bshin", "bfoot"])
    with pytest.raises(SafetyConfigError, match="listed twice"):
        load_limits(path, joint_names=["bthigh", "bshin", "bshin"])


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("robot: [unclosed\n", "not valid YAML"),
        ("", "empty"),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
)
def test_unreadable_files(tmp_path: Path, text: str, what: str) -> None:
    with pytest.raises(SafetyConfigError, match=what):
        load_limits(write(tmp_path, text))


# bthigh's limits given twice: YAML and JSON both keep the last silently, which drops its
# velocity limit and position range
_TWICE_YAML = """robot: cheetah
command_interface: effort
safe_command: zero
command_box: {min: -1.0, max: 1.0}
joints:
  bthigh: {position: {min: -0.52, max: 1.05}, velocity: 30.0}
  bshin: {position: {min: -0.785, max: 0.785}}
  bthigh: {}
timing: {control_period: 0.05, max_observation_age: 0.15}
"""


def test_a_key_given_twice_is_refused_naming_it_and_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, _TWICE_YAML)
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    assert str(err.value) == f"{path}: line 8: key 'bthigh' is given twice in one mapping; keep one of them"
    text = json.dumps(GOOD).replace('"bshin":', '"bthigh": {}, "bshin":')
    path = write(tmp_path, text, "limits.json")
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    assert str(err.value) == f"{path}: key 'bthigh' is given twice in one mapping; keep one of them"


def test_a_merge_key_may_be_overridden_by_a_key_written_out(tmp_path: Path) -> None:
    """YAML's merge (``<<``) is not a duplicate: bshin takes bthigh's limits, then its own range."""
    text = (
        _TWICE_YAML.replace("  bthigh: {}\n", "")
        .replace("  bthigh: {position", "  bthigh: &thigh {position")
        .replace("  bshin: {position", "  bshin: {<<: *thigh, position")
    )
    limits = load_limits(write(tmp_path, text))
    assert limits.joints["bshin"].velocity == 30.0
    assert limits.joints["bshin"].position is not None and limits.joints["bshin"].position.max == 0.785


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SafetyConfigError, match="file not found"):
        load_limits(tmp_path / "nope.yaml")


def test_only_the_first_error_is_spelled_out_with_a_count(tmp_path: Path) -> None:
    data = edited(joints__bthigh__velocity=-1.0, joints__bshin__velocity=-2.0)
    with pytest.raises(SafetyConfigError, match=r"\(\+1 more\)$"):
        load_limits(write(tmp_path, data))


def test_a_misspelled_required_field_is_named_with_its_likely_meaning(tmp_path: Path) -> None:
    """Was "safe_command: required field is missing; add it (+1 more)": the typo was the "+1"."""
    data = edited(safe_command=...)
    data["safe_comand"] = "zero"
    path = write(tmp_path, data)
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    assert str(err.value) == (
        f"{path}: safe_comand: unknown field (did you mean 'safe_command'?); rename it to safe_command"
    )
    data["timng"] = data.pop("timing")  # two typos: the first one named, the other counted once
    with pytest.raises(SafetyConfigError) as err:
        load_limits(write(tmp_path, data))
    assert str(err.value).endswith(
        ": safe_comand: unknown field (did you mean 'safe_command'?); rename it to safe_command (+1 more)"
    )


# --- the dependency rule -------------------------------------------------------------------


def test_safety_imports_only_numpy_pydantic_and_the_stdlib() -> None:
    allowed = {"numpy", "pydantic", "safety", "__future__"} | set(sys.stdlib_module_names)
    for path in sorted((ROOT / "safety").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top == "yaml":  # only inside load_limits, for YAML files
                    assert node.col_offset > 0, f"{path.name}: yaml imported at module level"
                    continue
                assert top in allowed, f"{path.name} imports {mod}"
    banned = ("torch", "rclpy", "bremen_robot", "yaml")
    code = f"import sys, safety; print(sorted(m for m in {banned!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# --- every message names a fix; files that are not text ---------------------------------------

MORE_BAD = [
    edited(joints__bthigh__velocity=True),  # YAML's `yes`: pydantic alone would read 1.0
    edited(joints__bthigh__position=3.0),
    edited(joints=[1, 2]),
    edited(robot=5),
    edited(robot=None),
    edited(joints__bthigh__command={"min": 1.0, "max": 1.0}),
    edited(timing="fast"),
    edited(envelope={"positions": {"x": {"min": "a"}}}),
    edited(envelope={"positions": [1]}),
    edited(ood=True),
    edited(max_step=True),
    edited(joints={"a": None}),
    edited(command_interface=None),
    edited(timing__control_period="1e-3x"),
    edited(joints__bthigh__velocity=10**400),
    edited(max_step=10**400),  # float() overflows: pydantic let OverflowError through
    edited(max_step={"bthigh": 10**400}),
    edited(max_step={"": 0.1}),  # the empty name skipped the unknown-joint check
]


@pytest.mark.parametrize("data", [b[0] for b in BAD] + MORE_BAD)
def test_every_limits_message_is_one_line_ending_in_a_fix(tmp_path: Path, data: dict) -> None:
    path = write(tmp_path, data)
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    msg = str(err.value).removesuffix(" (+1 more)")
    assert "\n" not in msg and msg.startswith(f"{path}: "), msg
    problem, sep, fix = msg.rpartition("; ")
    assert sep and problem and len(fix.split()) >= 2, f"no '; <fix>' tail: {msg}"
    assert "Input should" not in msg, msg  # pydantic's wording, not ours


def test_a_yes_no_value_is_not_a_number(tmp_path: Path) -> None:
    with pytest.raises(SafetyConfigError) as err:
        load_limits(write(tmp_path, yaml.safe_dump(edited(joints__bthigh__velocity=True))))
    assert "joints.bthigh.velocity: must be a number, got True (a yes/no value); write a number" in str(
        err.value
    )


@pytest.mark.parametrize(
    ("data", "where"),
    [(edited(robot=""), "robot"), (edited(max_step={"bthigh": 0.1, "knee": 0.2}), "max_step.knee")],
)
def test_messages_that_used_to_lack_a_fix(tmp_path: Path, data: dict, where: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    fixes = {"robot": "must not be empty; write a name", "max_step.knee": "; fix the name or remove it"}
    assert str(err.value).startswith(f"{path}: {where}: ") and fixes[where] in str(err.value)


@pytest.mark.parametrize("name", ["limits.yaml", "limits.json"])
def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"robot: caf\xe9\n")  # Latin-1
    with pytest.raises(SafetyConfigError) as err:
        load_limits(path)
    assert str(err.value) == f"{path}: is not UTF-8 text (byte 10); save it as UTF-8"


@pytest.mark.parametrize("name", ["limits.yaml", "limits.json"])
def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    text = json.dumps(GOOD) if name.endswith(".json") else yaml.safe_dump(GOOD, sort_keys=False)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_limits(path).joint_names == ["bthigh", "bshin"]


def test_a_directory_or_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SafetyConfigError, match=r"is a directory; pass a limits file$"):
        load_limits(tmp_path)
    path = write(tmp_path, GOOD)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who can read any file")
        with pytest.raises(
            SafetyConfigError, match=r"cannot be read \(Permission denied\); check its permissions$"
        ):
            load_limits(path)
    finally:
        path.chmod(0o644)


# --- the Panda soft-limit ramp versus the one-period crossing bound -----------------------------


@pytest.mark.parametrize("j", range(7))
def test_panda_soft_ramp_governs_inside_the_soft_margin(j: int) -> None:
    """Speed toward a hard limit, halfway into and 0.05 rad into the soft margin: the ramp
    (dq_max scaled by the fraction of the margin left) must be the binding limit, not the
    crossing bound (distance / control period). With the 0.1 rad margin shipped before, the
    crossing bound was tighter everywhere and the ramp never acted."""
    limits = load_limits(CONFIGS / "panda.yaml")
    name = limits.joint_names[j]
    P = limits.joints[name].position
    assert P is not None
    dq_max = [2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61][j]
    T = 0.05
    margin = P.max - P.soft_hi
    for left in (0.5 * margin, 0.05):
        q = [0.0] * 7
        q[j] = P.max - left
        for k in range(7):
            if k != j:
                Pk = limits.joints[limits.joint_names[k]].position
                assert Pk is not None
                q[k] = 0.5 * (Pk.soft_lo + Pk.soft_hi)
        shield = SafetyShield(limits)
        shield.state.last_command = [0.0] * 7
        shield.state.last_command[j] = dq_max  # already moving at full speed: no rate limit
        action = np.zeros(7)
        action[j] = dq_max
        out = shield.filter(JointState(tuple(limits.joint_names), np.array(q), np.zeros(7), 1.0), action, 1.0)
        ramp, cross = dq_max * left / margin, left / T
        assert ramp < cross
        assert out.command[j] == pytest.approx(ramp, rel=1e-9)
        # the ramp binds first and last (a rate limit between them loses to it: safety first)
        reasons = [iv.reason for iv in out.interventions]
        assert reasons[0] == reasons[-1] == "soft_limit" and "position_limit" not in reasons, reasons
