"""MuJoCo backend (``mujoco`` Python bindings).

Locomotion robots load Gymnasium's MJCF unchanged and step exactly like Gymnasium v5
(``mj_step`` x frame_skip on ``data.ctrl``). The Panda loads Franka's URDF through ``MjSpec`` and
adds what a URDF cannot say: joint-velocity actuators (``kv`` servo, force limited to the URDF
effort), gravity compensation (Franka's controller does it), an ``ee`` site at the grasp target,
a goal marker, a floor and a light for rendering; see docs/sim.md.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from sim._gl import import_mujoco
from sim._math import quat_to_mat
from sim.backends.base import PhysicsScales, RobotBackend
from sim.description import compile_mjcf
from sim.errors import SimError
from sim.robots import PANDA_ARM_JOINTS, PANDA_EFFORT, PANDA_TIMESTEP, RobotSpec

mujoco = import_mujoco()  # MUJOCO_GL must be chosen before the first import

_FREE, _SLIDE, _HINGE = (
    int(mujoco.mjtJoint.mjJNT_FREE),
    int(mujoco.mjtJoint.mjJNT_SLIDE),
    int(mujoco.mjtJoint.mjJNT_HINGE),
)
# bad qpos/qvel/qacc: mj_step resets the state (mj_resetData) and counts the warning
_AUTORESET_WARNINGS = [
    int(mujoco.mjtWarning.mjWARN_BADQPOS),
    int(mujoco.mjtWarning.mjWARN_BADQVEL),
    int(mujoco.mjtWarning.mjWARN_BADQACC),
]
PANDA_KV = 300.0  # N m s / rad: velocity servo of the simulated Franka joint controller
PANDA_EE_OFFSET = (0.0, 0.0, 0.107 + 0.105)  # flange + grasp target, in panda_link7's frame


def build_panda_model(path: Path) -> Any:
    """Franka's URDF -> MjModel with velocity servos, gravity compensation and an ee site."""
    if not path.is_file():
        raise SimError(f"robot asset '{path}' not found; reinstall pybullet (it ships pybullet_data)")
    try:
        spec = mujoco.MjSpec.from_file(str(path))
    except ValueError as exc:
        raise SimError(f"MuJoCo cannot load '{path}': {' '.join(str(exc).split())[:300]}") from None
    for mesh in spec.meshes:  # 'package://meshes/...' is relative to the URDF's folder
        mesh_path = path.parent / mesh.file.replace("package://", "")
        if not mesh_path.is_file():
            raise SimError(f"mesh '{mesh_path}' of '{path}' not found; reinstall the package that ships it")
        mesh.file = str(mesh_path)
    for eq in list(spec.equalities):  # the fingers' <mimic>; the gripper is held closed
        spec.delete(eq)
    for joint in list(spec.joints):
        if joint.name not in PANDA_ARM_JOINTS:
            spec.delete(joint)
    for body in spec.bodies:
        body.gravcomp = 1.0
    spec.body("panda_link7").add_site(name="ee", pos=list(PANDA_EE_OFFSET), size=[0.01, 0, 0])
    spec.worldbody.add_site(name="goal", pos=[0.45, 0.0, 0.4], size=[0.025, 0, 0], rgba=[0.1, 0.8, 0.2, 0.8])
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.1], rgba=[0.85, 0.85, 0.8, 1])
    spec.worldbody.add_light(pos=[0, 0, 3], dir=[0, 0, -1])
    for name, effort in zip(PANDA_ARM_JOINTS, PANDA_EFFORT, strict=True):
        act = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_velocity(kv=PANDA_KV)
        act.ctrllimited = 0
        act.forcelimited = 1
        act.forcerange = [-effort, effort]
    spec.option.timestep = PANDA_TIMESTEP
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model = spec.compile()
    except ValueError as exc:
        raise SimError(f"MuJoCo cannot compile '{path}': {' '.join(str(exc).split())[:300]}") from None
    # the reach task is collision-free in both engines; switched off after compiling because the
    # URDF importer discards geoms that cannot collide (it takes them for visual-only geoms)
    model.geom_contype[:] = 0
    model.geom_conaffinity[:] = 0
    return model


def _is_nominal(scales: PhysicsScales) -> bool:
    return bool(
        np.all(scales.link_mass == 1.0)
        and scales.friction == 1.0
        and np.all(scales.joint_damping == 1.0)
        and np.all(scales.actuator_gain == 1.0)
    )


class MujocoBackend(RobotBackend):
    """A robot in MuJoCo."""

    engine = "mujoco"

    def __init__(self, spec: RobotSpec, asset: Path | None = None) -> None:
        super().__init__(spec)
        path = Path(asset) if asset is not None else spec.asset_path()
        self.model = build_panda_model(path) if spec.kind == "urdf" else compile_mjcf(path)
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.timestep = float(m.opt.timestep)
        self.qpos0 = m.qpos0.copy()
        self.nv = int(m.nv)
        free = [j for j in range(m.njnt) if int(m.jnt_type[j]) == _FREE]
        if len(free) > 1 or (free and m.jnt_bodyid[free[0]] != 1):
            raise SimError(f"{path}: only one free joint, on the first body, is supported")
        self.floating_base = bool(free)
        self._base_body = 1
        joints = [j for j in range(m.njnt) if int(m.jnt_type[j]) in (_HINGE, _SLIDE)]
        self.joint_names = tuple(m.joint(j).name for j in joints)
        self._qadr = np.array([m.jnt_qposadr[j] for j in joints], dtype=int)
        self._dadr = np.array([m.jnt_dofadr[j] for j in joints], dtype=int)
        # commands in <actuator> order, as Gymnasium's action (Ant: hip_4 first)
        actuated = [int(m.actuator_trnid[a, 0]) for a in range(m.nu)]
        self.actuated_joint_names = tuple(m.joint(j).name for j in actuated)
        self._act = np.arange(m.nu)
        if spec.control == "torque":
            limited = m.actuator_ctrllimited[self._act].astype(bool)
            rng = m.actuator_ctrlrange[self._act]
            self.command_low = np.where(limited, rng[:, 0], -np.inf)
            self.command_high = np.where(limited, rng[:, 1], np.inf)
        else:
            vmax = np.array([2.175] * 4 + [2.61] * 3)  # Franka's joint velocity limits (URDF)
            self.command_low, self.command_high = -vmax, vmax
        self.body_names = tuple(m.body(b).name or f"body{b}" for b in range(1, m.nbody))
        self._nominal = {
            "mass": m.body_mass[1:].copy(),
            "inertia": m.body_inertia[1:].copy(),
            "friction": m.geom_friction[:, 0].copy(),
            "damping": m.dof_damping[self._dadr].copy(),
            "gear": m.actuator_gear[self._act, 0].copy(),
            "timestep": self.timestep,
        }
        self._gain = np.ones(len(self._act))
        self._stale = False
        self._at_nominal = True
        self._friction_scale = 1.0
        self._command = np.zeros(len(self._act))
        self._renderer: Any = None
        self._ee_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "ee")
        self._goal_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "goal")
        mujoco.mj_forward(m, self.data)

    # ------------------------------------------------------------------ lifecycle
    def restore_initial(self) -> None:
        mujoco.mj_resetData(self.model, self.data)
        self.diverged = False
        self._stale = True
        self._command = np.zeros(len(self._act))
        self.data.ctrl[:] = 0.0

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        mujoco.mj_forward(self.model, self.data)
        self._stale = False

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.qpos.copy(), self.data.qvel.copy()

    def apply(self, command: np.ndarray) -> None:
        cmd = np.clip(np.asarray(command, dtype=np.float64), self.command_low, self.command_high)
        self._command = cmd
        if self.spec.control == "velocity":
            self.data.ctrl[self._act] = cmd * self._gain  # gain: calibration error of the servo
        else:
            self.data.ctrl[self._act] = cmd  # gain lives in actuator_gear

    def step(self, period_scale: float = 1.0) -> None:
        if period_scale != 1.0:
            self.model.opt.timestep = self._nominal["timestep"] * period_scale
        resets = int(self.data.warning.number[_AUTORESET_WARNINGS].sum())
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        self.diverged = int(self.data.warning.number[_AUTORESET_WARNINGS].sum()) > resets
        if period_scale != 1.0:
            self.model.opt.timestep = self._nominal["timestep"]
        self._stale = True  # mj_step leaves xpos/xmat at the last substep's start

    def _kinematics(self) -> None:
        if self._stale:
            mujoco.mj_kinematics(self.model, self.data)
            self._stale = False

    # ------------------------------------------------------------------ readings
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._dadr].copy()

    def joint_efforts(self) -> np.ndarray:
        return self.data.qfrc_actuator[self._dadr].copy()

    def base_pose(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.floating_base:
            return None
        return self.data.qpos[0:3].copy(), self.data.qpos[3:7] / np.linalg.norm(self.data.qpos[3:7])

    def base_twist(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.floating_base:
            return None
        rot = quat_to_mat(self.data.qpos[3:7])  # from the current state (xmat lags one substep)
        return self.data.qvel[0:3].copy(), rot @ self.data.qvel[3:6]

    def point_position(self, name: str) -> np.ndarray:
        self._kinematics()
        if name == "ee" and self._ee_site >= 0:
            return self.data.site_xpos[self._ee_site].copy()
        if name not in self.body_names:
            raise SimError(f"robot '{self.spec.name}' has no point '{name}'; points: ee or a body name")
        return self.data.xpos[self.body_names.index(name) + 1].copy()

    def set_marker(self, name: str, position: np.ndarray) -> None:
        if name == "goal" and self._goal_site >= 0:
            self.model.site_pos[self._goal_site] = position
            mujoco.mj_kinematics(self.model, self.data)

    # ------------------------------------------------------------------ physics parameters
    def set_scales(self, scales: PhysicsScales) -> None:
        nominal = _is_nominal(scales)
        if nominal and self._at_nominal:
            return  # nothing to change (and the compiled constants stay bit-identical to Gymnasium's)
        self._at_nominal = nominal
        m, nom = self.model, self._nominal
        m.body_mass[1:] = nom["mass"] * scales.link_mass
        m.body_inertia[1:] = nom["inertia"] * scales.link_mass[:, None]
        m.geom_friction[:, 0] = nom["friction"] * scales.friction
        m.dof_damping[self._dadr] = nom["damping"] * scales.joint_damping
        self._friction_scale = float(scales.friction)
        self._gain = np.asarray(scales.actuator_gain, dtype=np.float64).copy()
        if self.spec.control == "torque":
            m.actuator_gear[self._act, 0] = nom["gear"] * self._gain
        mujoco.mj_setConst(m, self.data)

    def physics_params(self) -> dict[str, dict[str, float]]:
        m = self.model
        friction: dict[str, float] = {}
        for g in range(m.ngeom):  # per body: the largest sliding friction of its geoms
            b = int(m.geom_bodyid[g])
            name = "world" if b == 0 else self.body_names[b - 1]
            friction[name] = max(friction.get(name, 0.0), float(m.geom_friction[g, 0]))
        return {
            "link_mass": {n: float(v) for n, v in zip(self.body_names, m.body_mass[1:], strict=True)},
            "friction": friction,
            "joint_damping": {
                n: float(m.dof_damping[d]) for n, d in zip(self.joint_names, self._dadr, strict=True)
            },
            "actuator_gain": {
                n: float(g) for n, g in zip(self.actuated_joint_names, self._gain, strict=True)
            },
        }

    # ------------------------------------------------------------------ output
    def render(self, width: int, height: int) -> np.ndarray:
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (width, height):
            self.model.vis.global_.offwidth = max(width, int(self.model.vis.global_.offwidth))
            self.model.vis.global_.offheight = max(height, int(self.model.vis.global_.offheight))
            try:
                self._renderer = mujoco.Renderer(self.model, height=height, width=width)
            except Exception as exc:
                raise SimError(
                    f"MuJoCo offscreen rendering failed ({type(exc).__name__}: {str(exc)[:120]}); on a "
                    "headless machine set MUJOCO_GL=egl (GPU or Mesa EGL) or MUJOCO_GL=osmesa "
                    "(apt-get install libosmesa6)"
                ) from None
        self._kinematics()
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        c = self.spec.camera
        cam.distance, cam.azimuth, cam.elevation = c.distance, c.azimuth, c.elevation
        if c.track is not None:
            cam.lookat[:] = self.data.xpos[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, c.track)]
        else:
            cam.lookat[:] = c.lookat
        self._renderer.update_scene(self.data, camera=cam)
        return np.asarray(self._renderer.render(), dtype=np.uint8).copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
