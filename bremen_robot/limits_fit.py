"""Whether a limits file fits the robot beyond what ``safety.load_limits`` checks (units, the
robot config that uses it): ``bremen safety check`` and ``bremen collect``'s preflight."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

# Two full turns each way: wider than any revolute joint's range in radians. A bound past it is
# almost surely in degrees (±166 for ±2.9 rad). Prismatic joints say ``unit: m`` and are not
# checked (a linear track may run for tens of metres).
MAX_PLAUSIBLE_POSITION = 4 * math.pi


def _as_degrees(field: str, value: float, source: object) -> str:
    return (
        f"{source}: {field}: {value:g} is more than two turns (4π rad); positions are in radians, so "
        f"this looks like degrees: convert every angle with x·π/180 ({value:g}° = "
        f"{math.radians(value):.4f} rad), or, for a prismatic joint in metres, set unit: m in its "
        "position limits"
    )


def degrees_problem(limits: Any, source: object) -> str | None:
    """The first revolute joint position bound that reads as degrees, as a one-line error; else
    None. Checked: each joint's ``position`` limits, and the ``envelope.positions`` bounds of the
    joints those limits say are revolute (other envelope entries, e.g. a base's ``rootz`` in
    metres, have no unit to go by)."""
    revolute = set()
    for name, joint in limits.joints.items():
        if joint.position is None or joint.position.unit != "rad":
            continue
        revolute.add(name)
        for key in ("min", "max"):
            value = getattr(joint.position, key)
            if abs(value) > MAX_PLAUSIBLE_POSITION:
                return _as_degrees(f"joints.{name}.position.{key}", value, source)
    for name, bound in limits.envelope.positions.items():
        if name not in revolute:
            continue
        for key in ("min", "max"):
            value = getattr(bound, key)
            if value is not None and abs(value) > MAX_PLAUSIBLE_POSITION:
                return _as_degrees(f"envelope.positions.{name}.{key}", value, source)
    return None


def ood_problem(limits: Any, source: object) -> str | None:
    """An ``ood`` section, which nothing of bremen's can honour, as a one-line error; else None.

    The gate needs a scorer injected through the Python API (``safety.SafetyShield(limits,
    ood_score=...)``); policy_runner, reset_node and the evaluations have none to give (a policy
    artifact does not carry the dynamics ensemble), so on a robot the section would be a gate the
    file promises and nobody runs."""
    if limits.ood is None:
        return None
    return (
        f"{source}: ood: policy_runner, reset_node and the evaluations inject no OOD scorer (a policy "
        "artifact carries no dynamics ensemble), so this gate would never run; remove the ood section "
        "(every other limit still applies) or use it through the Python API with an ood_score"
    )


def robot_problem(limits: Any, path: Path, robot: Any, robot_path: Path) -> str | None:
    """What ``--robot`` shows the limits do not fit beyond their joints: the robot config loads
    another file (or none), names another robot, or runs at another rate; else None."""
    rel = os.path.relpath(Path(path).resolve(), Path(robot_path).resolve().parent)
    if robot.safety is None:
        return (
            f"{robot_path}: safety: not set, so the robot would run without these limits; add safety: {rel}"
        )
    reset = getattr(robot, "reset", None)  # the scripted reset's own limits fit the robot too
    if reset is not None and Path(reset.limits).resolve() == Path(path).resolve():
        pass
    elif Path(robot.safety).resolve() != Path(path).resolve():
        return (
            f"{robot_path}: safety: is {robot.safety}, not {path}: the robot runs with the other file; "
            f"set safety: {rel} there, or check {robot.safety}"
        )
    if limits.robot != robot.name:
        return (
            f"{path}: robot: '{limits.robot}' but the robot config is '{robot.name}'; set robot: {robot.name}"
        )
    period = 1.0 / robot.control_rate_hz
    if not math.isclose(limits.timing.control_period, period, rel_tol=1e-6):
        return (
            f"{path}: timing.control_period: {limits.timing.control_period:g} s but {robot_path} runs "
            f"at {robot.control_rate_hz:g} Hz; set control_period: {period:.12g} (1 / control_rate_hz)"
        )
    return ood_problem(limits, path) or unit_problem(limits, path, robot.sim_model)


def joint_kinds(sim_model: str) -> dict[str, str]:
    """``{joint: 'rad' | 'm'}`` from the sim model's description file (MJCF hinge/slide, URDF
    revolute/continuous/prismatic); empty when it cannot be read (nothing to check against)."""
    from sim.robots import get_robot

    try:
        spec = get_robot(sim_model)
        if spec.kind == "urdf":  # read as XML: MuJoCo needs the meshes of a URDF to compile it
            import xml.etree.ElementTree as ET

            kinds = {"revolute": "rad", "continuous": "rad", "prismatic": "m"}
            root = ET.parse(spec.asset_path()).getroot()
            return {
                j.get("name", ""): kinds[j.get("type", "")]
                for j in root.iter("joint")
                if j.get("type") in kinds
            }
        from sim.description import load_description

        kinds = {"hinge": "rad", "slide": "m"}
        return {j.name: kinds[j.type] for j in load_description(spec.asset_path()).joints if j.type in kinds}
    except Exception:  # no model, an unreadable file: the unit is the file's word alone
        return {}


def unit_problem(limits: Any, path: Path, sim_model: str | None) -> str | None:
    """A joint whose ``position.unit`` contradicts the robot's sim model (``unit: m`` on a hinge
    would silence the degrees check on an angle); else None."""
    kinds = joint_kinds(sim_model) if sim_model else {}
    for name, joint in limits.joints.items():
        if joint.position is None or name not in kinds or joint.position.unit == kinds[name]:
            continue
        what = "revolute (an angle, in rad)" if kinds[name] == "rad" else "prismatic (a length, in m)"
        return (
            f"{path}: joints.{name}.position.unit: {joint.position.unit} but the sim model "
            f"'{sim_model}' has {name} {what}; set unit: {kinds[name]}"
        )
    return None
