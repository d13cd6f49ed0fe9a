"""Physics backends. Engines are imported only when a backend is created."""

from __future__ import annotations

from pathlib import Path

from sim.backends.base import PhysicsScales, RobotBackend
from sim.errors import SimError
from sim.robots import get_robot

BACKENDS = ("mujoco", "pybullet")


def backend_names() -> list[str]:
    return list(BACKENDS)


def create_backend(robot: str, backend: str = "mujoco", asset: Path | str | None = None) -> RobotBackend:
    """Load ``robot`` in ``backend`` (``mujoco`` or ``pybullet``); ``asset`` overrides its file."""
    spec = get_robot(robot)
    key = backend.lower()
    path = Path(asset) if asset is not None else None
    if key == "mujoco":
        from sim.backends.mujoco_backend import MujocoBackend

        return MujocoBackend(spec, path)
    if key == "pybullet":
        from sim.backends.pybullet_backend import PybulletBackend

        return PybulletBackend(spec, path)
    raise SimError(f"unknown backend '{backend}'; valid backends: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "PhysicsScales", "RobotBackend", "backend_names", "create_backend"]
