"""The :class:`RobotBackend` interface every physics engine implements.

State conventions (the same in every engine, MuJoCo's):

* ``joint_names``: every joint except a floating base's free joint, in description order; the
  planar robots' root slides/hinge (``rootx``, ``rootz``, ``rooty``) are joints. Positions are
  MuJoCo's (a slide joint with ``ref=1.25`` reads 1.25 where the file puts the body).
* ``actuated_joint_names``: the joints ``apply`` commands, in command order: the order of the
  description's ``<actuator>`` list, which is Gymnasium's action order (Ant: ``hip_4`` first).
  Torque robots take commands in the actuator's ctrlrange (times gear = N m); velocity robots
  take rad/s. Envs map the task's action entries to commands by joint name.
* ``get_state``/``set_state``: MuJoCo's ``qpos``/``qvel`` layout, so one reset sampler and one
  determinism test serve both engines. A free joint is ``(x, y, z, qw, qx, qy, qz)`` /
  ``(vx, vy, vz)`` world frame + ``(wx, wy, wz)`` body frame.
* ``base_pose``: position and unit quaternion ``(w, x, y, z)`` of the base link frame (world);
  ``base_twist``: linear velocity of the base link origin and angular velocity, both in the
  world frame. ``None`` for fixed-base robots.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from sim.robots import RobotSpec


@dataclass
class PhysicsScales:
    """Multipliers on the nominal physics, as drawn by domain randomization (1 = nominal).

    ``link_mass`` is per body in ``body_names`` order (inertia scales with the mass),
    ``friction`` one factor for every contact surface, ``joint_damping`` per joint in
    ``joint_names`` order, ``actuator_gain`` per actuated joint in command order.
    """

    link_mass: np.ndarray
    friction: float
    joint_damping: np.ndarray
    actuator_gain: np.ndarray


class RobotBackend(ABC):
    """One robot in one physics engine, stepped at a fixed control period."""

    engine: str = ""

    def __init__(self, spec: RobotSpec) -> None:
        self.spec = spec
        self.joint_names: tuple[str, ...] = ()
        self.actuated_joint_names: tuple[str, ...] = ()
        self.body_names: tuple[str, ...] = ()
        self.floating_base = False
        self.timestep = 0.0
        self.frame_skip = spec.frame_skip
        self.qpos0 = np.zeros(0)
        self.nv = 0
        self.command_low = np.zeros(0)
        self.command_high = np.zeros(0)
        # whether the last step blew up: MuJoCo then resets the state on its own, so the
        # numbers that follow look sane; PyBullet's NaNs show in the observation instead
        self.diverged = False

    # ------------------------------------------------------------------ layout
    @property
    def control_period(self) -> float:
        """Seconds of simulated time per :meth:`step` (timestep x frame_skip)."""
        return self.timestep * self.frame_skip

    @property
    def nq(self) -> int:
        return int(self.qpos0.shape[0])

    # ------------------------------------------------------------------ lifecycle
    def reset(self, seed: int | None = None) -> None:
        """Back to the description's pose plus Gymnasium v5 reset noise drawn from ``seed``."""
        from sim.resets import sample_initial_state

        qpos, qvel = sample_initial_state(self, np.random.default_rng(seed))
        self.restore_initial()
        self.set_state(qpos, qvel)

    @abstractmethod
    def restore_initial(self) -> None:
        """Forget dynamic history (contacts, warm starts, command) before a new episode."""

    @abstractmethod
    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None: ...

    @abstractmethod
    def get_state(self) -> tuple[np.ndarray, np.ndarray]: ...

    @abstractmethod
    def apply(self, command: np.ndarray) -> None:
        """Set the command held until the next ``apply`` (clipped to the command bounds)."""

    @abstractmethod
    def step(self, period_scale: float = 1.0) -> None:
        """Advance one control period; ``period_scale`` stretches it (control-period jitter)."""

    # ------------------------------------------------------------------ readings
    @abstractmethod
    def joint_positions(self) -> np.ndarray: ...

    @abstractmethod
    def joint_velocities(self) -> np.ndarray: ...

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities together (one engine query where the engine allows)."""
        return self.joint_positions(), self.joint_velocities()

    @abstractmethod
    def joint_efforts(self) -> np.ndarray:
        """Actuator effort per joint in ``joint_names`` order (0 for unactuated joints)."""

    @abstractmethod
    def base_pose(self) -> tuple[np.ndarray, np.ndarray] | None: ...

    @abstractmethod
    def base_twist(self) -> tuple[np.ndarray, np.ndarray] | None: ...

    @abstractmethod
    def point_position(self, name: str) -> np.ndarray:
        """World position of a named point of the robot (``ee`` for the arm)."""

    def set_marker(self, name: str, position: np.ndarray) -> None:  # noqa: B027 - optional
        """Move a visual-only marker (the reach goal); no effect on physics."""

    # ------------------------------------------------------------------ physics parameters
    @abstractmethod
    def set_scales(self, scales: PhysicsScales) -> None:
        """Set the physics to nominal x ``scales`` (takes effect from the next step)."""

    @abstractmethod
    def physics_params(self) -> dict[str, dict[str, float]]:
        """Current values: ``link_mass`` (kg), ``friction``, ``joint_damping``, ``actuator_gain``."""

    def nominal_scales(self) -> PhysicsScales:
        return PhysicsScales(
            link_mass=np.ones(len(self.body_names)),
            friction=1.0,
            joint_damping=np.ones(len(self.joint_names)),
            actuator_gain=np.ones(len(self.actuated_joint_names)),
        )

    # ------------------------------------------------------------------ output
    @abstractmethod
    def render(self, width: int, height: int) -> np.ndarray:
        """RGB image ``height x width x 3`` (uint8) from the robot's camera."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release engine resources."""
