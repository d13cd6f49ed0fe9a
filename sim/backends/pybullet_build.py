"""Building a robot in a PyBullet client: the MJCF-to-PyBullet translation and Franka's Panda.

Locomotion robots: the MJCF is compiled by MuJoCo's compiler and translated to a URDF
(:mod:`sim.description`) that PyBullet loads with the file's inertials; each armatured joint gets
a rotor geared 1:1 to it (PyBullet has no armature), and a floor plane with the friction the
backend's product rule needs. The Panda loads Franka's URDF directly, collision-free, with the
gripper held closed. :class:`PybulletBuild` is what the backend steps and reads from then on.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.description import load_description, mjcf_to_urdf, rotor_urdf
from sim.errors import SimError
from sim.robots import PANDA_ARM_JOINTS, PANDA_EFFORT, PANDA_TIMESTEP

FLOOR_FRICTION = 1.0
_PANDA_LINK7_GROUP = ("panda_link7", "panda_link8", "panda_hand", "panda_leftfinger", "panda_rightfinger")


@dataclass
class PybulletBuild:
    """A loaded robot: PyBullet body ids, joint and link maps, and the nominal parameters."""

    robot: int
    timestep: float
    floating_base: bool
    joint_names: tuple[str, ...]
    actuated_joint_names: tuple[str, ...]
    jidx: np.ndarray  # PyBullet joint index of each of joint_names
    act_pos: np.ndarray  # position in joint_names of each actuated joint
    rotor_of: list[int]  # rotor k drives joint_names[rotor_of[k]]
    limits: np.ndarray  # (n, 2), relative to ref
    ref: np.ndarray
    stiffness: np.ndarray
    springref: np.ndarray
    damping_nominal: np.ndarray
    gear_nominal: np.ndarray
    command_low: np.ndarray
    command_high: np.ndarray
    qpos0: np.ndarray
    nv: int
    body_names: tuple[str, ...]
    body_links: list[list[int]]  # the PyBullet links that hold each body's mass
    link_offset: dict[str, np.ndarray]
    link_of_name: dict[str, int]
    body_friction: np.ndarray
    velocity_control: bool
    hold: list[int] = field(default_factory=list)  # joints held at 0 by a position servo
    rotors: int | None = None
    floor: int | None = None
    goal: int | None = None


def build_mjcf(pb: Any, c: int, path: Path) -> PybulletBuild:
    """Load an MJCF robot (translated to URDF) into client ``c``."""
    desc = load_description(path)
    export = mjcf_to_urdf(desc)
    flags = pb.URDF_USE_INERTIA_FROM_FILE
    if export.self_collision:  # MuJoCo excludes parent-child pairs; so does this flag
        flags |= pb.URDF_USE_SELF_COLLISION | pb.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT
    armatured = [jd for jd in desc.joints if jd.type in ("hinge", "slide") and jd.armature > 0]
    with tempfile.TemporaryDirectory(prefix="bremen-urdf-") as tmp:
        urdf = Path(tmp) / f"{path.stem}.urdf"
        urdf.write_text(export.text)
        rotors_urdf = Path(tmp) / "rotors.urdf"
        rotors_urdf.write_text(rotor_urdf(armatured))
        try:
            robot = pb.loadURDF(str(urdf), useFixedBase=export.fixed_base, flags=flags, physicsClientId=c)
            rotors = pb.loadURDF(
                str(rotors_urdf),
                basePosition=[0, 0, -50],
                useFixedBase=True,
                flags=pb.URDF_USE_INERTIA_FROM_FILE,
                physicsClientId=c,
            )
        except pb.error as exc:
            raise SimError(f"PyBullet cannot load the translation of '{path}': {exc}") from None
    pb.setGravity(*desc.gravity, physicsClientId=c)
    floating_base = desc.floating_base
    link_index = {"world": -1}
    joint_index = {}
    for j in range(pb.getNumJoints(robot, physicsClientId=c)):
        info = pb.getJointInfo(robot, j, physicsClientId=c)
        joint_index[info[1].decode()] = j
        link_index[info[12].decode()] = j
    if floating_base:
        link_index[desc.bodies[1].name] = -1
    moving = [jd for jd in desc.joints if jd.type in ("hinge", "slide")]
    joint_names = tuple(jd.name for jd in moving)
    jidx = np.array([joint_index[jd.name] for jd in moving], dtype=int)
    # armature: rotor k geared 1:1 (opposite sense) to joint rotor_of[k]
    rotor_of = [joint_names.index(jd.name) for jd in armatured]
    for k, jd in enumerate(armatured):
        pb.changeDynamics(
            rotors,
            k,
            linearDamping=0.0,
            angularDamping=0.0,
            maxJointVelocity=1000.0,
            physicsClientId=c,
        )
        gear = pb.createConstraint(
            robot,
            joint_index[jd.name],
            rotors,
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
            rotors,
            list(range(len(armatured))),
            pb.VELOCITY_CONTROL,
            forces=[0.0] * len(armatured),
            physicsClientId=c,
        )
    limits = np.array(
        [(jd.range[0] - jd.ref, jd.range[1] - jd.ref) if jd.range else (-np.inf, np.inf) for jd in moving]
    ).reshape(-1, 2)
    ref = np.array([jd.ref for jd in moving])
    act_by_joint = {a.joint: a for a in desc.actuators}
    actuated = tuple(a.joint for a in desc.actuators)  # <actuator> order
    ranges = [act_by_joint[n].ctrlrange for n in actuated]
    nq = (7 if floating_base else 0) + len(moving)
    qpos0 = np.zeros(nq)
    if floating_base:
        qpos0[0:3] = desc.bodies[1].pos
        qpos0[3:7] = desc.bodies[1].quat
    qpos0[nq - len(moving) :] = ref
    # bodies: mass/inertia/friction live on the URDF link that holds the body's geoms
    body_names = tuple(b.name for b in desc.bodies[1:])
    floor_mu = [g.friction for g in desc.world_geoms if g.type == "plane"]
    for g in desc.world_geoms:
        if g.type != "plane":
            raise SimError(
                f"{path}: world geom '{g.name}' ({g.type}) is not supported; only a floor plane is"
            )
    built = PybulletBuild(
        robot=robot,
        timestep=desc.timestep,
        floating_base=floating_base,
        joint_names=joint_names,
        actuated_joint_names=actuated,
        jidx=jidx,
        act_pos=np.array([joint_names.index(n) for n in actuated], dtype=int),
        rotor_of=rotor_of,
        limits=limits,
        ref=ref,
        stiffness=np.array([jd.stiffness for jd in moving]),
        springref=np.array([jd.springref for jd in moving]),
        damping_nominal=np.array([jd.damping for jd in moving]),
        gear_nominal=np.array([act_by_joint[n].gear for n in actuated]),
        command_low=np.array([r[0] if r else -np.inf for r in ranges]),
        command_high=np.array([r[1] if r else np.inf for r in ranges]),
        qpos0=qpos0,
        nv=(6 if floating_base else 0) + len(moving),
        body_names=body_names,
        body_links=[[link_index[export.link_of_body[n]]] for n in body_names],
        link_offset={n: export.link_offset[n] for n in body_names},
        link_of_name={n: link_index[export.link_of_body[n]] for n in body_names},
        body_friction=np.array(
            [max([g.friction for g in b.geoms] + floor_mu[:1]) if b.geoms else 0.0 for b in desc.bodies[1:]]
        ),
        velocity_control=False,
        rotors=rotors,
    )
    if floor_mu:
        built.floor = _add_floor(pb, c, desc.world_geoms[0].size)
    disable_default_motors(pb, c, robot, built.hold)
    return built


def build_panda(pb: Any, c: int, path: Path) -> PybulletBuild:
    """Load Franka's panda.urdf into client ``c``: velocity-controlled arm, gripper held closed."""
    try:
        robot = pb.loadURDF(
            str(path), useFixedBase=True, flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=c
        )
    except pb.error as exc:
        raise SimError(f"PyBullet cannot load '{path}': {exc}; fix the description file") from None
    pb.setGravity(0, 0, -9.81, physicsClientId=c)
    names, links = {}, {}
    for j in range(pb.getNumJoints(robot, physicsClientId=c)):
        info = pb.getJointInfo(robot, j, physicsClientId=c)
        names[info[1].decode()] = j
        links[info[12].decode()] = j
        pb.setCollisionFilterGroupMask(robot, j, 0, 0, physicsClientId=c)  # collision-free reach
    pb.setCollisionFilterGroupMask(robot, -1, 0, 0, physicsClientId=c)
    missing = [n for n in PANDA_ARM_JOINTS if n not in names]
    if missing or "panda_grasptarget" not in links:
        raise SimError(
            f"{path}: not Franka's panda.urdf (missing {', '.join(missing) or 'panda_grasptarget'})"
        )
    jidx = np.array([names[n] for n in PANDA_ARM_JOINTS], dtype=int)
    vmax = np.array([2.175] * 4 + [2.61] * 3)
    built = PybulletBuild(
        robot=robot,
        timestep=PANDA_TIMESTEP,
        floating_base=False,
        joint_names=PANDA_ARM_JOINTS,
        actuated_joint_names=PANDA_ARM_JOINTS,
        jidx=jidx,
        act_pos=np.arange(7),
        rotor_of=[],
        limits=np.array([pb.getJointInfo(robot, int(j), physicsClientId=c)[8:10] for j in jidx]),
        ref=np.zeros(7),
        stiffness=np.zeros(7),
        springref=np.zeros(7),
        damping_nominal=np.zeros(7),
        gear_nominal=np.array(PANDA_EFFORT),  # used as the velocity motor's force limit
        command_low=-vmax,
        command_high=vmax,
        qpos0=np.zeros(7),
        nv=7,
        body_names=tuple(f"panda_link{i}" for i in range(1, 8)),
        body_links=[[links[f"panda_link{i}"]] for i in range(1, 7)]
        + [[links[n] for n in _PANDA_LINK7_GROUP if n in links]],
        link_offset={},
        link_of_name={"ee": links["panda_grasptarget"]},
        body_friction=np.zeros(7),
        velocity_control=True,
        # the gripper is held closed (MuJoCo welds it): position servo at 0
        hold=[names[n] for n in ("panda_finger_joint1", "panda_finger_joint2") if n in names],
    )
    disable_default_motors(pb, c, robot, built.hold)
    vis = pb.createVisualShape(
        pb.GEOM_SPHERE, radius=0.025, rgbaColor=[0.1, 0.8, 0.2, 0.8], physicsClientId=c
    )
    built.goal = pb.createMultiBody(
        baseMass=0, baseVisualShapeIndex=vis, basePosition=[0.45, 0, 0.4], physicsClientId=c
    )
    floor = pb.createVisualShape(
        pb.GEOM_BOX, halfExtents=[2, 2, 0.001], rgbaColor=[0.85, 0.85, 0.8, 1], physicsClientId=c
    )
    pb.createMultiBody(baseMass=0, baseVisualShapeIndex=floor, basePosition=[0, 0, -0.001], physicsClientId=c)
    return built


def _add_floor(pb: Any, c: int, size: np.ndarray) -> int:
    col = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=c)
    half = [float(size[0]) or 20.0, float(size[1]) or 20.0, 0.001]
    vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=[0.8, 0.9, 0.8, 1], physicsClientId=c)
    floor = pb.createMultiBody(
        baseMass=0, baseCollisionShapeIndex=col, baseVisualShapeIndex=vis, physicsClientId=c
    )
    pb.changeDynamics(floor, -1, lateralFriction=FLOOR_FRICTION, physicsClientId=c)
    return int(floor)


def disable_default_motors(pb: Any, c: int, robot: int, hold: list[int]) -> None:
    """PyBullet drives every joint with a velocity motor by default: switch them off (torque
    control then acts alone) and hold the ``hold`` joints at 0 with a position servo."""
    movable = [
        j
        for j in range(pb.getNumJoints(robot, physicsClientId=c))
        if pb.getJointInfo(robot, j, physicsClientId=c)[2] in (pb.JOINT_REVOLUTE, pb.JOINT_PRISMATIC)
    ]
    pb.setJointMotorControlArray(
        robot, movable, pb.VELOCITY_CONTROL, forces=[0.0] * len(movable), physicsClientId=c
    )
    if hold:
        pb.setJointMotorControlArray(
            robot,
            hold,
            pb.POSITION_CONTROL,
            targetPositions=[0.0] * len(hold),
            forces=[20.0] * len(hold),
            physicsClientId=c,
        )
