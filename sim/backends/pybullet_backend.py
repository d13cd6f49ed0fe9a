"""PyBullet backend (``pybullet``, DIRECT mode: no GUI, no display).

Locomotion robots: the MJCF is compiled by MuJoCo's compiler and translated to a URDF
(:mod:`sim.description`) that PyBullet loads with the file's inertials
(:mod:`sim.backends.pybullet_build` builds the robot). What PyBullet lacks is
bridged here, per physics step: MJCF motors (``gear x ctrl``, clipped to ctrlrange) and joint
springs/dampers become joint torques; MuJoCo's friction combination (max of the two surfaces)
is reproduced with PyBullet's product rule by giving the floor friction 1 and each link the
larger of its own and the floor's; PyBullet's default link damping (0.04) and joint velocity
cap (100) are removed. The Panda loads Franka's URDF directly. docs/sim.md lists every
difference, bridged or not.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from sim._math import quat_to_mat, wxyz_to_xyzw, xyzw_to_wxyz
from sim.backends.base import PhysicsScales, RobotBackend
from sim.backends.pybullet_build import PybulletBuild, build_mjcf, build_panda
from sim.errors import SimError
from sim.robots import RobotSpec


def import_pybullet() -> Any:
    """``pybullet``, imported without its "pybullet build time: ..." line: the C extension prints it
    to file descriptor 2 on import, into the middle of a command's own output (``bremen bench``).
    An import error still raises (and is reported by whoever catches it, after fd 2 is back)."""
    if "pybullet" in sys.modules:
        return sys.modules["pybullet"]
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            import pybullet

            ctypes.CDLL(None).fflush(None)  # anything C stdio still holds goes to /dev/null too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return pybullet


class PybulletBackend(RobotBackend):
    """A robot in PyBullet."""

    engine = "pybullet"

    def __init__(self, spec: RobotSpec, asset: Path | None = None) -> None:
        super().__init__(spec)
        pybullet = import_pybullet()
        self.pb: Any = pybullet
        path = Path(asset) if asset is not None else spec.asset_path()
        if not path.is_file():
            raise SimError(
                f"robot asset '{path}' not found; reinstall the package that ships it or pass an existing "
                "file"
            )
        self.client = pybullet.connect(pybullet.DIRECT)
        try:
            build = build_mjcf if spec.kind == "mjcf" else build_panda
            self._adopt(build(pybullet, self.client, path))
        except BaseException:
            # close() forgets the id: pybullet reuses client ids, so a second disconnect from
            # __del__ would cut off whichever backend got this id next
            self.close()
            raise
        self.pb.setPhysicsEngineParameter(
            fixedTimeStep=self.timestep,
            numSubSteps=0,
            deterministicOverlappingPairs=1,
            physicsClientId=self.client,
        )
        for link in range(-1, self.pb.getNumJoints(self.robot, physicsClientId=self.client)):
            self.pb.changeDynamics(
                self.robot,
                link,
                linearDamping=0.0,
                angularDamping=0.0,
                maxJointVelocity=1000.0,
                physicsClientId=self.client,
            )
        self._command = np.zeros(len(self.actuated_joint_names))
        self._base_inertial: tuple[tuple[float, ...], tuple[float, ...]] | None = None
        # the last base quaternion set or reported: its sign picks the sign of the next one
        self._quat_ref: np.ndarray | None = None
        self._scales = self.nominal_scales()
        self.set_scales(self._scales)
        self._state_id = self.pb.saveState(physicsClientId=self.client)

    def _adopt(self, b: PybulletBuild) -> None:
        self.robot = b.robot
        self._rotors = b.rotors
        self.timestep = b.timestep
        self.floating_base = b.floating_base
        self.joint_names = b.joint_names
        self.actuated_joint_names = b.actuated_joint_names
        self._jidx = b.jidx
        self._act_pos = b.act_pos
        self._rotor_of = b.rotor_of
        self._limits = b.limits
        self._ref = b.ref
        self._stiffness = b.stiffness
        self._springref = b.springref
        self._damping_nominal = b.damping_nominal
        self._gear_nominal = b.gear_nominal
        self.command_low, self.command_high = b.command_low, b.command_high
        self.qpos0 = b.qpos0
        self.nv = b.nv
        self.body_names = b.body_names
        self._body_links = b.body_links
        self._link_offset = b.link_offset
        self._link_of_name = b.link_of_name
        self._body_friction = b.body_friction
        self._velocity_control = b.velocity_control
        self._hold = b.hold
        self.floor = b.floor
        self._goal = b.goal

    # ------------------------------------------------------------------ lifecycle
    def restore_initial(self) -> None:
        self.pb.restoreState(self._state_id, physicsClientId=self.client)
        self._quat_ref = None
        self._command = np.zeros(len(self.actuated_joint_names))
        if self._velocity_control:
            self._send_velocity()

    def _inertial_frame(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self._base_inertial is None:  # fixed by the URDF; changeDynamics does not move it
            info = self.pb.getDynamicsInfo(self.robot, -1, physicsClientId=self.client)
            self._base_inertial = (info[3], info[4])
        return self._base_inertial

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        pb, c = self.pb, self.client
        qpos, qvel = np.asarray(qpos, dtype=np.float64), np.asarray(qvel, dtype=np.float64)
        if qpos.shape != (self.nq,) or qvel.shape != (self.nv,):
            raise SimError(f"state must be qpos ({self.nq},) and qvel ({self.nv},)")
        off_q = off_v = 0
        if self.floating_base:
            quat = qpos[3:7] / np.linalg.norm(qpos[3:7])
            self._quat_ref = quat.copy()
            ipos, iorn = self._inertial_frame()
            com_pos, com_orn = pb.multiplyTransforms(list(qpos[0:3]), wxyz_to_xyzw(quat), ipos, iorn)
            pb.resetBasePositionAndOrientation(self.robot, com_pos, com_orn, physicsClientId=c)
            rot = quat_to_mat(quat)
            omega = rot @ qvel[3:6]
            v_com = qvel[0:3] + np.cross(omega, np.asarray(com_pos) - qpos[0:3])
            pb.resetBaseVelocity(self.robot, list(v_com), list(omega), physicsClientId=c)
            off_q, off_v = 7, 6
        # PyBullet freezes a joint that starts outside its limits (its limit constraint never
        # pushes it back, unlike MuJoCo's soft limit), so positions are clamped into the range
        q = np.clip(qpos[off_q:] - self._ref, self._limits[:, 0], self._limits[:, 1])
        qd = qvel[off_v:]
        for i, j in enumerate(self._jidx):
            pb.resetJointState(self.robot, int(j), float(q[i]), float(qd[i]), physicsClientId=c)
        for k, i in enumerate(self._rotor_of):
            pb.resetJointState(self._rotors, k, float(-q[i]), float(-qd[i]), physicsClientId=c)

    def _joint_states(self) -> tuple[np.ndarray, np.ndarray]:
        states = self.pb.getJointStates(self.robot, self._jidx, physicsClientId=self.client)
        q = np.array([s[0] for s in states]) + self._ref
        qd = np.array([s[1] for s in states])
        return q, qd

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        q, qd = self._joint_states()
        if not self.floating_base:
            return q, qd
        pose, twist = self.base_pose(), self.base_twist()
        assert pose is not None and twist is not None
        rot = quat_to_mat(pose[1])
        return np.concatenate([pose[0], pose[1], q]), np.concatenate([twist[0], rot.T @ twist[1], qd])

    def apply(self, command: np.ndarray) -> None:
        self._command = np.clip(np.asarray(command, dtype=np.float64), self.command_low, self.command_high)
        if self._velocity_control:
            self._send_velocity()

    def _send_velocity(self) -> None:
        self.pb.setJointMotorControlArray(
            self.robot,
            self._jidx,
            self.pb.VELOCITY_CONTROL,
            targetVelocities=list(self._command * self._scales.actuator_gain),
            forces=list(self._gear_nominal),
            physicsClientId=self.client,
        )

    def _actuator_torque(self) -> np.ndarray:
        return self._command * self._gear_nominal * self._scales.actuator_gain

    def step(self, period_scale: float = 1.0) -> None:
        pb, c = self.pb, self.client
        if period_scale != 1.0:
            pb.setTimeStep(self.timestep * period_scale, physicsClientId=c)
        passive = bool(np.any(self._stiffness) or np.any(self._damping))
        act = None if self._velocity_control else self._actuator_torque()
        for _ in range(self.frame_skip):
            if act is not None:
                tau = np.zeros(len(self._jidx))
                tau[self._act_pos] = act
                if passive:
                    q, qd = self._joint_states()
                    tau -= self._stiffness * (q - self._springref) + self._damping * qd
                pb.setJointMotorControlArray(
                    self.robot, self._jidx, pb.TORQUE_CONTROL, forces=list(tau), physicsClientId=c
                )
            pb.stepSimulation(physicsClientId=c)
        if period_scale != 1.0:
            pb.setTimeStep(self.timestep, physicsClientId=c)

    # ------------------------------------------------------------------ readings
    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self._joint_states()

    def joint_positions(self) -> np.ndarray:
        return self._joint_states()[0]

    def joint_velocities(self) -> np.ndarray:
        return self._joint_states()[1]

    def joint_efforts(self) -> np.ndarray:
        eff = np.zeros(len(self.joint_names))
        if self._velocity_control:
            states = self.pb.getJointStates(self.robot, self._jidx, physicsClientId=self.client)
            eff[:] = [s[3] for s in states]
        else:
            eff[self._act_pos] = self._actuator_torque()
        return eff

    def base_pose(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.floating_base:
            return None
        pb, c = self.pb, self.client
        com_pos, com_orn = pb.getBasePositionAndOrientation(self.robot, physicsClientId=c)
        ipos, iorn = self._inertial_frame()
        inv_pos, inv_orn = pb.invertTransform(ipos, iorn)
        pos, orn = pb.multiplyTransforms(com_pos, com_orn, inv_pos, inv_orn)
        quat = xyzw_to_wxyz(orn)
        quat /= np.linalg.norm(quat)
        # PyBullet hands back either sign of the quaternion (it turns w < 0 into w > 0), while
        # MuJoCo's integrated one moves continuously: past a half turn its w is negative. The
        # sign nearest the last quaternion keeps the observation continuous, as MuJoCo's is.
        ref = self._quat_ref
        if (ref is None and quat[0] < 0) or (ref is not None and float(quat @ ref) < 0):
            quat = -quat
        self._quat_ref = quat
        return np.array(pos), quat.copy()

    def base_twist(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.floating_base:
            return None
        pb, c = self.pb, self.client
        v_com, omega = (np.array(v) for v in pb.getBaseVelocity(self.robot, physicsClientId=c))
        ipos, iorn = self._inertial_frame()
        if not any(ipos):  # base origin at its centre of mass (the Ant)
            return v_com, omega
        com_pos = np.array(pb.getBasePositionAndOrientation(self.robot, physicsClientId=c)[0])
        pose = self.base_pose()
        assert pose is not None
        return v_com + np.cross(omega, pose[0] - com_pos), omega

    def point_position(self, name: str) -> np.ndarray:
        if name not in self._link_of_name:
            raise SimError(f"robot '{self.spec.name}' has no point '{name}'")
        link = self._link_of_name[name]
        pb, c = self.pb, self.client
        if link == -1:
            pose = self.base_pose()
            assert pose is not None
            return pose[0]
        state = pb.getLinkState(self.robot, link, computeForwardKinematics=1, physicsClientId=c)
        pos, orn = np.array(state[4]), xyzw_to_wxyz(state[5])
        offset = self._link_offset.get(name)
        return pos if offset is None else pos - quat_to_mat(orn) @ offset

    def set_marker(self, name: str, position: np.ndarray) -> None:
        if name == "goal" and self._goal is not None:
            self.pb.resetBasePositionAndOrientation(
                self._goal, list(position), [0, 0, 0, 1], physicsClientId=self.client
            )

    # ------------------------------------------------------------------ physics parameters
    @property
    def _damping(self) -> np.ndarray:
        return self._damping_nominal * self._scales.joint_damping

    def set_scales(self, scales: PhysicsScales) -> None:
        pb, c = self.pb, self.client
        if not hasattr(self, "_mass_nominal"):
            self._mass_nominal = [
                [pb.getDynamicsInfo(self.robot, lk, physicsClientId=c)[0] for lk in links]
                for links in self._body_links
            ]
            self._inertia_nominal = [
                [pb.getDynamicsInfo(self.robot, lk, physicsClientId=c)[2] for lk in links]
                for links in self._body_links
            ]
        for b, links in enumerate(self._body_links):
            s = float(scales.link_mass[b])
            for k, lk in enumerate(links):
                if self._mass_nominal[b][k] > 0:
                    pb.changeDynamics(
                        self.robot,
                        lk,
                        mass=self._mass_nominal[b][k] * s,
                        localInertiaDiagonal=[v * s for v in self._inertia_nominal[b][k]],
                        physicsClientId=c,
                    )
            if self._body_friction[b] > 0:
                pb.changeDynamics(
                    self.robot,
                    links[0],
                    lateralFriction=float(self._body_friction[b] * scales.friction),
                    physicsClientId=c,
                )
        self._scales = PhysicsScales(
            link_mass=np.asarray(scales.link_mass, dtype=np.float64).copy(),
            friction=float(scales.friction),
            joint_damping=np.asarray(scales.joint_damping, dtype=np.float64).copy(),
            actuator_gain=np.asarray(scales.actuator_gain, dtype=np.float64).copy(),
        )
        if self._velocity_control:
            self._send_velocity()

    def physics_params(self) -> dict[str, dict[str, float]]:
        pb, c = self.pb, self.client
        mass = {
            n: float(sum(pb.getDynamicsInfo(self.robot, lk, physicsClientId=c)[0] for lk in links))
            for n, links in zip(self.body_names, self._body_links, strict=True)
        }
        friction = {
            n: float(pb.getDynamicsInfo(self.robot, links[0], physicsClientId=c)[1])
            for n, links, mu in zip(self.body_names, self._body_links, self._body_friction, strict=True)
            if mu > 0
        }
        if self.floor is not None:
            friction["world"] = float(pb.getDynamicsInfo(self.floor, -1, physicsClientId=c)[1])
        return {
            "link_mass": mass,
            "friction": friction,
            "joint_damping": {n: float(d) for n, d in zip(self.joint_names, self._damping, strict=True)},
            "actuator_gain": {
                n: float(g)
                for n, g in zip(self.actuated_joint_names, self._scales.actuator_gain, strict=True)
            },
        }

    # ------------------------------------------------------------------ output
    def render(self, width: int, height: int) -> np.ndarray:
        pb, c = self.pb, self.client
        cam = self.spec.camera
        target = list(self.point_position(cam.track)) if cam.track is not None else list(cam.lookat)
        view = pb.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=target,
            distance=cam.distance,
            yaw=cam.azimuth - 90.0,
            pitch=cam.elevation,
            roll=0.0,
            upAxisIndex=2,
            physicsClientId=c,
        )
        proj = pb.computeProjectionMatrixFOV(
            fov=45.0, aspect=width / height, nearVal=0.05, farVal=50.0, physicsClientId=c
        )
        img = pb.getCameraImage(width, height, view, proj, renderer=pb.ER_TINY_RENDERER, physicsClientId=c)
        rgba = np.asarray(img[2], dtype=np.uint8).reshape(height, width, 4)
        return rgba[:, :, :3].copy()

    def __del__(self) -> None:  # each DIRECT client holds a whole physics world
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:
        if getattr(self, "client", None) is not None:
            with contextlib.suppress(self.pb.error):
                self.pb.disconnect(physicsClientId=self.client)
            self.client = None
