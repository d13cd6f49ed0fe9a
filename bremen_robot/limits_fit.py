"""Whether a limits file fits the robot beyond what ``safety.load_limits`` checks (units, the
robot config that uses it): ``bremen safety check`` and ``bremen collect``'s preflight."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

# Two full turns each way: wider than any revolute joint's range in radians, and than any
# prismatic joint's in metres. A bound past it is almost surely in degrees (±166 for ±2.9 rad).
MAX_PLAUSIBLE_POSITION = 4 * math.pi


def degrees_problem(limits: Any, source: object) -> str | None:
    """The first joint position bound that reads as degrees, as a one-line error; else None."""
    for name, joint in limits.joints.items():
        if joint.position is None:
            continue
        for key in ("min", "max"):
            value = getattr(joint.position, key)
            if abs(value) > MAX_PLAUSIBLE_POSITION:
                return (
                    f"{source}: joints.{name}.position.{key}: {value:g} is more than two turns (4π rad); "
                    f"positions are in radians (metres for prismatic joints), so this looks like degrees: "
                    f"convert every angle with x·π/180 ({value:g}° = {math.radians(value):.4f} rad)"
                )
    return None


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
    return None
