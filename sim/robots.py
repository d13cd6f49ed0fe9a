"""The robots ``sim`` knows: where their description lives and how they are driven.

Locomotion robots use Gymnasium's own MJCF files (the ones ``HalfCheetah-v5`` etc. load), with
Gymnasium v5's frame skip and reset noise. The arm is Franka Emika's Panda from the URDF that
ships inside the ``pybullet`` wheel (``pybullet_data/franka_panda/panda.urdf``, Apache-2.0),
loaded by both engines, so everything works offline.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from sim.errors import SimError


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SimError(
            f"package '{package}' is not installed, so its robot files are missing; "
            "install the simulation extra: pip install 'bremen-robot[sim]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class Camera:
    """Where renders look from: a free camera following ``track`` (a body) or fixed at ``lookat``."""

    distance: float
    azimuth: float  # degrees, MuJoCo convention (90 looks along +y, i.e. from the robot's side)
    elevation: float  # degrees, negative looks down
    lookat: tuple[float, float, float] = (0.0, 0.0, 0.0)
    track: str | None = None


@dataclass(frozen=True)
class RobotSpec:
    """A robot: its description file, control type and reset distribution.

    Attributes:
        name: registry key (``halfcheetah``, ``hopper``, ``walker2d``, ``ant``, ``panda``).
        default_task: task in :mod:`bremen_robot.tasks` used when none is given.
        package / relpath: the description file, inside an installed Python package.
        kind: ``mjcf`` or ``urdf``.
        frame_skip: physics steps per control step.
        control: ``torque`` (MJCF motors, command in [-1, 1] times gear) or ``velocity`` (rad/s).
        reset_noise: Gymnasium v5 ``reset_noise_scale``.
        qvel_noise_normal: qvel noise is ``scale * N(0, 1)`` (HalfCheetah, Ant) rather than uniform.
        gym_name: the Gymnasium env family, used for the ``bremen/<gym_name>-<backend>-v0`` ids.
    """

    name: str
    default_task: str
    package: str
    relpath: str
    kind: str
    frame_skip: int
    control: str
    reset_noise: float
    qvel_noise_normal: bool
    gym_name: str
    camera: Camera
    description: str

    def asset_path(self) -> Path:
        return _package_dir(self.package) / self.relpath


_GYM_ASSETS = "envs/mujoco/assets"

ROBOTS: dict[str, RobotSpec] = {
    r.name: r
    for r in (
        RobotSpec(
            name="halfcheetah",
            default_task="halfcheetah",
            package="gymnasium",
            relpath=f"{_GYM_ASSETS}/half_cheetah.xml",
            kind="mjcf",
            frame_skip=5,
            control="torque",
            reset_noise=0.1,
            qvel_noise_normal=True,
            gym_name="HalfCheetah",
            camera=Camera(distance=4.0, azimuth=90.0, elevation=-10.0, track="torso"),
            description="planar cheetah, 6 torque-driven hinges (Gymnasium half_cheetah.xml)",
        ),
        RobotSpec(
            name="hopper",
            default_task="hopper",
            package="gymnasium",
            relpath=f"{_GYM_ASSETS}/hopper.xml",
            kind="mjcf",
            frame_skip=4,
            control="torque",
            reset_noise=5e-3,
            qvel_noise_normal=False,
            gym_name="Hopper",
            camera=Camera(distance=4.0, azimuth=90.0, elevation=-10.0, track="torso"),
            description="planar one-legged hopper, 3 torque-driven hinges (Gymnasium hopper.xml)",
        ),
        RobotSpec(
            name="walker2d",
            default_task="walker2d",
            package="gymnasium",
            relpath=f"{_GYM_ASSETS}/walker2d_v5.xml",
            kind="mjcf",
            frame_skip=4,
            control="torque",
            reset_noise=5e-3,
            qvel_noise_normal=False,
            gym_name="Walker2d",
            camera=Camera(distance=4.0, azimuth=90.0, elevation=-10.0, track="torso"),
            description="planar biped, 6 torque-driven hinges (Gymnasium walker2d_v5.xml)",
        ),
        RobotSpec(
            name="ant",
            default_task="ant",
            package="gymnasium",
            relpath=f"{_GYM_ASSETS}/ant.xml",
            kind="mjcf",
            frame_skip=5,
            control="torque",
            reset_noise=0.1,
            qvel_noise_normal=True,
            gym_name="Ant",
            camera=Camera(distance=5.0, azimuth=90.0, elevation=-25.0, track="torso"),
            description="floating-base quadruped, 8 torque-driven hinges (Gymnasium ant.xml)",
        ),
        RobotSpec(
            name="panda",
            default_task="panda_reach",
            package="pybullet_data",
            relpath="franka_panda/panda.urdf",
            kind="urdf",
            frame_skip=25,
            control="velocity",
            reset_noise=0.0,
            qvel_noise_normal=False,
            gym_name="PandaReach",
            camera=Camera(distance=1.8, azimuth=135.0, elevation=-25.0, lookat=(0.3, 0.0, 0.4)),
            description="Franka Emika Panda, 7 joints, joint-velocity control (pybullet_data panda.urdf)",
        ),
    )
}

PANDA_ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
PANDA_EFFORT = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)  # N m, Franka's URDF <limit effort>
PANDA_TIMESTEP = 0.002


def robot_names() -> list[str]:
    return sorted(ROBOTS)


def get_robot(name: str) -> RobotSpec:
    key = name.lower().replace("-", "").replace("_", "")
    for spec in ROBOTS.values():
        if spec.name == key:
            return spec
    raise SimError(f"unknown robot '{name}'; valid robots: {', '.join(robot_names())}")
