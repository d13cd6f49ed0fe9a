"""PyBullet backend (``pybullet``, DIRECT mode: no GUI, no display).

Locomotion robots: the MJCF is compiled by MuJoCo's compiler and translated to a URDF
(:mod:`sim.description`) that PyBullet loads with the file's inertials. What PyBullet lacks is
bridged here, per physics step: MJCF motors (``gear x ctrl``, clipped to ctrlrange) and joint
springs/dampers become joint torques; MuJoCo's friction combination (max of the two surfaces)
is reproduced with PyBullet's product rule by giving the floor friction 1 and each link the
larger of its own and the floor's; PyBullet's default link damping (0.04) and joint velocity
cap (100) are removed. The Panda loads Franka's URDF directly. docs/sim.md lists every
difference, bridged or not.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sim._math import quat_to_mat, wxyz_to_xyzw, xyzw_to_wxyz
from sim.backends.base import PhysicsScales, RobotBackend
from sim.description import load_description, mjcf_to_urdf, rotor_urdf
from sim.errors import SimError
from sim.robots import PANDA_ARM_JOINTS, PANDA_EFFORT, PANDA_TIMESTEP, RobotSpec

FLOOR_FRICTION = 1.0
_PANDA_LINK7_GROUP = ("panda_link7", "panda_link8", "panda_hand", "panda_leftfinger", "panda_rightfinger")


class PybulletBackend(RobotBackend):
    """A robot in PyBullet."""

    engine = "pybullet"

    def __init__(self, spec: RobotSpec, asset: Path | None = None) -> None:
        super().__init__(spec)
        import pybullet

        self.pb: Any = pybullet
        path = Path(asset) if asset is not None else spec.asset_path()
        if not path.is_file():
            raise SimError(
                f"robot asset '{path}' not found; reinstall the package that ships it or pass an existing "
                "file"
            )
        self.client = pybullet.connect(pybullet.DIRECT)
        try:
            if spec.kind == "mjcf":
                self._load_mjcf(path)
            else:
                self._load_panda(path)
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
        self._scales = self.nominal_scales()
        self.set_scales(self._scales)
        self._state_id = self.pb.saveState(physicsClientId=self.client)

    # ------------------------------------------------------------------ loading
    def _load_mjcf(self, path: Path) -> None:
        pb, c = self.pb, self.client
        desc = load_description(path)
        export = mjcf_to_urdf(desc)
        flags = pb.URDF_USE_INERTIA_FROM_FILE
        if export.self_collision:  # MuJoCo excludes parent-child pairs; so does this flag
            flags |= pb.URDF_USE_SELF_COLLISION | pb.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT
        armatured = [jd for jd in desc.joints if jd.type in ("hinge", "slide") and jd.armature > 0]
        with tempfile.TemporaryDirectory(prefix="bremen-urdf-") as tmp:
            urdf = Path(tmp) / f"{path.stem}.urdf"
            urdf.write_text(export.text)
            rotors = Path(tmp) / "rotors.urdf"
            rotors.write_text(rotor_urdf(armatured))
            try:
                self.robot = pb.loadURDF(
                    str(urdf), useFixedBase=export.fixed_base, flags=flags, physicsClientId=c
                )
                self._rotors = pb.loadURDF(
                    str(rotors),
                    basePosition=[0, 0, -50],
                    useFixedBase=True,
                    flags=pb.URDF_USE_INERTIA_FROM_FILE,
                    physicsClientId=c,
                )
            except pb.error as exc:
                raise SimError(f"PyBullet cannot load the translation of '{path}': {exc}") from None
        self.timestep = desc.timestep
        pb.setGravity(*desc.gravity, physicsClientId=c)
        self.floating_base = desc.floating_base
        link_index = {"world": -1}
        joint_index = {}
        for j in range(pb.getNumJoints(self.robot, physicsClientId=c)):
            info = pb.getJointInfo(self.robot, j, physicsClientId=c)
            joint_index[info[1].decode()] = j
            link_index[info[12].decode()] = j
        if self.floating_base:
            link_index[desc.bodies[1].name] = -1
        moving = [jd for jd in desc.joints if jd.type in ("hinge", "slide")]
        self.joint_names = tuple(jd.name for jd in moving)
        self._jidx = np.array([joint_index[jd.name] for jd in moving], dtype=int)
        # armature: rotor k geared 1:1 (opposite sense) to joint rotor_of[k]
        self._rotor_of = [self.joint_names.index(jd.name) for jd in armatured]
        for k, jd in enumerate(armatured):
            pb.changeDynamics(
                self._rotors,
                k,
                linearDamping=0.0,
                angularDamping=0.0,
                maxJointVelocity=1000.0,
                physicsClientId=c,
            )
            gear = pb.createConstraint(
                self.robot,
                joint_index[jd.name],
                self._rotors,
                k,
                jointType=pb.JOINT_GEAR,
                jointAxis=[0, 0, 1],
                parentFramePosition=[0, 0, 0],
                childFramePosition=[0, 0, 0],
                physicsClientId=c,
            )
            pb.changeConstraint(gear, gearRatio=1.0, maxForce=1e9, erp=0.0, physicsClientId=c)
        if armatured:
            pb.setJointMotorControlArray(
                self._rotors,
                list(range(len(armatured))),
                pb.VELOCITY_CONTROL,
                forces=[0.0] * len(armatured),
                physicsClientId=c,
            )
        self._limits = np.array(
            [(jd.range[0] - jd.ref, jd.range[1] - jd.ref) if jd.range else (-np.inf, np.inf) for jd in moving]
        ).reshape(-1, 2)
        self._ref = np.array([jd.ref for jd in moving])
        self._stiffness = np.array([jd.stiffness for jd in moving])
        self._springref = np.array([jd.springref for jd in moving])
        self._damping_nominal = np.array([jd.damping for jd in moving])
        act_by_joint = {a.joint: a for a in desc.actuators}
        self.actuated_joint_names = tuple(a.joint for a in desc.actuators)  # <actuator> order
        self._act_pos = np.array([self.joint_names.index(n) for n in self.actuated_joint_names], dtype=int)
        self._gear_nominal = np.array([act_by_joint[n].gear for n in self.actuated_joint_names])
        ranges = [act_by_joint[n].ctrlrange for n in self.actuated_joint_names]
        self.command_low = np.array([r[0] if r else -np.inf for r in ranges])
        self.command_high = np.array([r[1] if r else np.inf for r in ranges])
        nq = (7 if self.floating_base else 0) + len(moving)
        self.qpos0 = np.zeros(nq)
        if self.floating_base:
            self.qpos0[0:3] = desc.bodies[1].pos
            self.qpos0[3:7] = desc.bodies[1].quat
        self.qpos0[nq - len(moving) :] = self._ref
        self.nv = (6 if self.floating_base else 0) + len(moving)
        # bodies: mass/inertia/friction live on the URDF link that holds the body's geoms
        self.body_names = tuple(b.name for b in desc.bodies[1:])
        self._body_links = [[link_index[export.link_of_body[n]]] for n in self.body_names]
        self._link_offset = {n: export.link_offset[n] for n in self.body_names}
        self._link_of_name = {n: link_index[export.link_of_body[n]] for n in self.body_names}
        floor_mu = [g.friction for g in desc.world_geoms if g.type == "plane"]
        for g in desc.world_geoms:
            if g.type != "plane":
                raise SimError(
                    f"{path}: world geom '{g.name}' ({g.type}) is not supported; only a floor plane is"
                )
        self._body_friction = np.array(
            [max([g.friction for g in b.geoms] + floor_mu[:1]) if b.geoms else 0.0 for b in desc.bodies[1:]]
        )
        if floor_mu:
            self._add_floor(desc.world_geoms[0].size)
        self._velocity_control = False
        self._hold: list[int] = []
        self._disable_default_motors()

    def _load_panda(self, path: Path) -> None:
        pb, c = self.pb, self.client
        try:
            self.robot = pb.loadURDF(
                str(path), useFixedBase=True, flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=c
            )
        except pb.error as exc:
            raise SimError(f"PyBullet cannot load '{path}': {exc}; fix the description file") from None
        self.timestep = PANDA_TIMESTEP
        pb.setGravity(0, 0, -9.81, physicsClientId=c)
        names, links = {}, {}
        for j in range(pb.getNumJoints(self.robot, physicsClientId=c)):
            info = pb.getJointInfo(self.robot, j, physicsClientId=c)
            names[info[1].decode()] = j
            links[info[12].decode()] = j
            pb.setCollisionFilterGroupMask(self.robot, j, 0, 0, physicsClientId=c)  # collision-free reach
        pb.setCollisionFilterGroupMask(self.robot, -1, 0, 0, physicsClientId=c)
        missing = [n for n in PANDA_ARM_JOINTS if n not in names]
        if missing or "panda_grasptarget" not in links:
            raise SimError(
                f"{path}: not Franka's panda.urdf (missing {', '.join(missing) or 'panda_grasptarget'})"
            )
        self.joint_names = PANDA_ARM_JOINTS
        self.actuated_joint_names = PANDA_ARM_JOINTS
        self._jidx = np.array([names[n] for n in PANDA_ARM_JOINTS], dtype=int)
        self._rotor_of = []
        self._limits = np.array(
            [pb.getJointInfo(self.robot, int(j), physicsClientId=c)[8:10] for j in self._jidx]
        )
        self._act_pos = np.arange(7)
        self._ref = np.zeros(7)
        self._stiffness = np.zeros(7)
        self._springref = np.zeros(7)
        self._damping_nominal = np.zeros(7)
        self._gear_nominal = np.array(PANDA_EFFORT)  # used as the velocity motor's force limit
        vmax = np.array([2.175] * 4 + [2.61] * 3)
        self.command_low, self.command_high = -vmax, vmax
        self.qpos0 = np.zeros(7)
        self.nv = 7
        self.floating_base = False
        self.body_names = tuple(f"panda_link{i}" for i in range(1, 8))
        self._body_links = [[links[f"panda_link{i}"]] for i in range(1, 7)] + [
            [links[n] for n in _PANDA_LINK7_GROUP if n in links]
        ]
        self._link_offset = {}
        self._link_of_name = {"ee": links["panda_grasptarget"]}
        self._body_friction = np.zeros(7)
        self._velocity_control = True
        # the gripper is held closed (MuJoCo welds it): position servo at 0
        self._hold = [names[n] for n in ("panda_finger_joint1", "panda_finger_joint2") if n in names]
        self._disable_default_motors()
        vis = pb.createVisualShape(
            pb.GEOM_SPHERE, radius=0.025, rgbaColor=[0.1, 0.8, 0.2, 0.8], physicsClientId=c
        )
        self._goal = pb.createMultiBody(
            baseMass=0, baseVisualShapeIndex=vis, basePosition=[0.45, 0, 0.4], physicsClientId=c
        )
        floor = pb.createVisualShape(
            pb.GEOM_BOX, halfExtents=[2, 2, 0.001], rgbaColor=[0.85, 0.85, 0.8, 1], physicsClientId=c
        )
        pb.createMultiBody(
            baseMass=0, baseVisualShapeIndex=floor, basePosition=[0, 0, -0.001], physicsClientId=c
        )

    def _add_floor(self, size: np.ndarray) -> None:
        pb, c = self.pb, self.client
        col = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=c)
        half = [float(size[0]) or 20.0, float(size[1]) or 20.0, 0.001]
        vis = pb.createVisualShape(
            pb.GEOM_BOX, halfExtents=half, rgbaColor=[0.8, 0.9, 0.8, 1], physicsClientId=c
        )
        self.floor = pb.createMultiBody(
            baseMass=0, baseCollisionShapeIndex=col, baseVisualShapeIndex=vis, physicsClientId=c
        )
        pb.changeDynamics(self.floor, -1, lateralFriction=FLOOR_FRICTION, physicsClientId=c)

    def _disable_default_motors(self) -> None:
        pb, c = self.pb, self.client
        movable = [
            j
            for j in range(pb.getNumJoints(self.robot, physicsClientId=c))
            if pb.getJointInfo(self.robot, j, physicsClientId=c)[2] in (pb.JOINT_REVOLUTE, pb.JOINT_PRISMATIC)
        ]
        pb.setJointMotorControlArray(
            self.robot, movable, pb.VELOCITY_CONTROL, forces=[0.0] * len(movable), physicsClientId=c
        )
        if self._hold:
            pb.setJointMotorControlArray(
                self.robot,
                self._hold,
                pb.POSITION_CONTROL,
                targetPositions=[0.0] * len(self._hold),
                forces=[20.0] * len(self._hold),
                physicsClientId=c,
            )

    # ------------------------------------------------------------------ lifecycle
    def restore_initial(self) -> None:
        self.pb.restoreState(self._state_id, physicsClientId=self.client)
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
        return np.array(pos), (quat if quat[0] >= 0 else -quat)

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
        if name == "goal" and hasattr(self, "_goal"):
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
        if hasattr(self, "floor"):
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
