"""MuJoCo and PyBullet backends for the same robots, Gymnasium envs, domain randomization.

``import sim`` is cheap: engines (mujoco, pybullet) load only when a backend is created, and
:mod:`sim.observation` needs neither, so robot-side code can map joint states to observations
without a simulator installed.

    env = sim.make("halfcheetah", backend="pybullet", randomization="configs/sim/randomization-default.yaml")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim._gl import configure_mujoco_gl
from sim.errors import SimError
from sim.robots import RobotSpec, get_robot, robot_names

configure_mujoco_gl()  # headless: pick EGL/OSMesa now, in case something imports mujoco before a backend

if TYPE_CHECKING:
    from sim.backends.base import PhysicsScales, RobotBackend
    from sim.env import BremenSimEnv, make, tasks_for_robot
    from sim.observation import ObservationBuilder, build_observation
    from sim.randomization import Randomization, load_randomization
    from sim.render import render_episode

BACKENDS = ("mujoco", "pybullet")

_LAZY = {
    "make": "sim.env",
    "BremenSimEnv": "sim.env",
    "tasks_for_robot": "sim.env",
    "create_backend": "sim.backends",
    "RobotBackend": "sim.backends.base",
    "PhysicsScales": "sim.backends.base",
    "build_observation": "sim.observation",
    "ObservationBuilder": "sim.observation",
    "Randomization": "sim.randomization",
    "load_randomization": "sim.randomization",
    "render_episode": "sim.render",
}


def backend_names() -> list[str]:
    return list(BACKENDS)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sim' has no attribute '{name}'")


def gym_id(robot: str, backend: str) -> str:
    """The Gymnasium id of a robot in a backend, e.g. ``bremen/HalfCheetah-mujoco-v0``."""
    return f"bremen/{get_robot(robot).gym_name}-{backend}-v0"


def _register_gym_ids() -> None:
    try:
        import gymnasium
    except ImportError:  # robot-side installs use sim.observation without gymnasium
        return
    for name in robot_names():
        for backend in BACKENDS:
            env_id = gym_id(name, backend)
            if env_id not in gymnasium.registry:
                gymnasium.register(
                    id=env_id,
                    entry_point="sim.env:BremenSimEnv",
                    kwargs={"robot": name, "backend": backend},
                )


_register_gym_ids()

__all__ = [
    "BACKENDS",
    "BremenSimEnv",
    "ObservationBuilder",
    "PhysicsScales",
    "Randomization",
    "RobotBackend",
    "RobotSpec",
    "SimError",
    "backend_names",
    "build_observation",
    "get_robot",
    "gym_id",
    "load_randomization",
    "make",
    "render_episode",
    "robot_names",
    "tasks_for_robot",
]
