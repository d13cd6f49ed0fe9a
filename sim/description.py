"""One robot description for both engines.

The MJCF file is compiled by MuJoCo's own compiler, which resolves ``<default>`` classes,
``density``/``settotalmass``, ``inertiafromgeom``, degrees vs radians and joint ``ref`` values.
The compiled numbers are read into a :class:`MjcfDescription` and, for PyBullet, written out as a
URDF (:func:`mjcf_to_urdf`) that PyBullet's URDF importer loads with the inertials *from the file*.

Why not ``pybullet.loadMJCF``? It does load Gymnasium's MJCF files with the same joint names, but
it puts each link's centre of mass at the body origin (geom offsets are ignored), uses density
1000 (ignoring ``density`` and ``settotalmass``) and drops joint stiffness, damping and armature.
PyBullet's API cannot move a link's inertial frame after loading, so those errors cannot be
patched; translating the compiled description avoids them. docs/sim.md lists every difference.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from sim._math import mat_to_rpy, quat_to_mat
from sim.errors import SimError

# what a refusal of the PyBullet translation tells the user to do instead (no command has a
# --backend flag: collect's --sim, a collect config's sim: and an env id name the engine)
_USE_MUJOCO = "use the mujoco backend (bremen collect --sim mujoco, env sim:<robot>/mujoco)"

_JOINT_TYPES = {0: "free", 1: "ball", 2: "slide", 3: "hinge"}
_GEOM_TYPES = {
    0: "plane",
    1: "hfield",
    2: "sphere",
    3: "capsule",
    4: "ellipsoid",
    5: "cylinder",
    6: "box",
    7: "mesh",
}


@dataclass
class JointDesc:
    name: str
    type: str  # free | ball | slide | hinge
    body: int
    pos: np.ndarray  # anchor in the body frame
    axis: np.ndarray  # unit axis in the body frame
    ref: float  # qpos0: the value at which the body sits where the file puts it
    range: tuple[float, float] | None  # None when unlimited
    stiffness: float
    springref: float
    damping: float
    armature: float


@dataclass
class GeomDesc:
    name: str
    type: str
    size: np.ndarray
    pos: np.ndarray
    quat: np.ndarray
    friction: float  # sliding friction
    contype: int
    conaffinity: int
    rgba: np.ndarray


@dataclass
class BodyDesc:
    name: str
    parent: int
    pos: np.ndarray
    quat: np.ndarray
    mass: float
    inertia: np.ndarray  # principal moments
    ipos: np.ndarray
    iquat: np.ndarray
    joints: list[int] = field(default_factory=list)
    geoms: list[GeomDesc] = field(default_factory=list)


@dataclass
class ActuatorDesc:
    name: str
    joint: str
    gear: float
    ctrlrange: tuple[float, float] | None


@dataclass
class MjcfDescription:
    """Engine-neutral numbers of a compiled MJCF model (bodies[0] is the world)."""

    path: Path
    timestep: float
    gravity: np.ndarray
    bodies: list[BodyDesc]
    joints: list[JointDesc]
    actuators: list[ActuatorDesc]

    @property
    def floating_base(self) -> bool:
        return any(j.type == "free" for j in self.joints)

    @property
    def world_geoms(self) -> list[GeomDesc]:
        return self.bodies[0].geoms

    def body_name(self, i: int) -> str:
        return self.bodies[i].name


def compile_mjcf(path: Path) -> Any:
    """Compile an MJCF (or URDF) file with MuJoCo; one-line :class:`SimError` on failure."""
    from sim.mjcf_compat import compile_model

    path = Path(path)
    if not path.is_file():
        raise SimError(
            f"robot asset '{path}' not found; reinstall the package that ships it or pass an existing file"
        )
    try:
        return compile_model(path)
    except ValueError as exc:
        first = " ".join(str(exc).split())[:300]
        raise SimError(f"MuJoCo cannot load '{path}': {first}; fix the description file") from None


def describe_model(model: Any, path: Path) -> MjcfDescription:
    """Read the compiled model's bodies, joints, geoms and actuators."""
    bodies: list[BodyDesc] = []
    for b in range(model.nbody):
        name = model.body(b).name or f"body{b}"
        bodies.append(
            BodyDesc(
                name=name,
                parent=int(model.body_parentid[b]),
                pos=model.body_pos[b].copy(),
                quat=model.body_quat[b].copy(),
                mass=float(model.body_mass[b]),
                inertia=model.body_inertia[b].copy(),
                ipos=model.body_ipos[b].copy(),
                iquat=model.body_iquat[b].copy(),
            )
        )
    # what the URDF translation has no place for would silently vanish from the PyBullet robot
    if model.neq or model.ntendon:
        raise SimError(
            f"{path}: {model.neq} equality constraint(s) and {model.ntendon} tendon(s), which the "
            f"PyBullet backend cannot translate; {_USE_MUJOCO} or remove them"
        )
    joints: list[JointDesc] = []
    for j in range(model.njnt):
        jtype = _JOINT_TYPES[int(model.jnt_type[j])]
        adr, dof = int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])
        limited = bool(model.jnt_limited[j])
        if jtype in ("slide", "hinge") and model.dof_frictionloss[dof] > 0:
            raise SimError(
                f"{path}: joint '{model.joint(j).name}' has frictionloss, which the PyBullet backend "
                f"cannot translate; {_USE_MUJOCO} or remove it"
            )
        joints.append(
            JointDesc(
                name=model.joint(j).name,
                type=jtype,
                body=int(model.jnt_bodyid[j]),
                pos=model.jnt_pos[j].copy(),
                axis=model.jnt_axis[j] / np.linalg.norm(model.jnt_axis[j]),
                ref=float(model.qpos0[adr]) if jtype in ("slide", "hinge") else 0.0,
                range=(float(model.jnt_range[j, 0]), float(model.jnt_range[j, 1])) if limited else None,
                stiffness=float(model.jnt_stiffness[j]),
                springref=float(model.qpos_spring[adr]) if jtype in ("slide", "hinge") else 0.0,
                damping=float(model.dof_damping[dof]),
                armature=float(model.dof_armature[dof]),
            )
        )
        bodies[joints[-1].body].joints.append(j)
    for g in range(model.ngeom):
        gtype = _GEOM_TYPES.get(int(model.geom_type[g]), "unknown")
        bodies[int(model.geom_bodyid[g])].geoms.append(
            GeomDesc(
                name=model.geom(g).name or f"geom{g}",
                type=gtype,
                size=model.geom_size[g].copy(),
                pos=model.geom_pos[g].copy(),
                quat=model.geom_quat[g].copy(),
                friction=float(model.geom_friction[g, 0]),
                contype=int(model.geom_contype[g]),
                conaffinity=int(model.geom_conaffinity[g]),
                rgba=model.geom_rgba[g].copy(),
            )
        )
    actuators: list[ActuatorDesc] = []
    for a in range(model.nu):
        if int(model.actuator_trntype[a]) != 0:  # mjTRN_JOINT
            raise SimError(f"{path}: actuator {a} does not drive a joint; only joint actuators are supported")
        jname = model.joint(int(model.actuator_trnid[a, 0])).name
        # PyBullet applies gear x ctrl as a torque: servos (kp, kv), activation dynamics and a
        # force limit would be lost
        motor = (
            int(model.actuator_dyntype[a]) == 0  # mjDYN_NONE
            and int(model.actuator_gaintype[a]) == 0  # mjGAIN_FIXED
            and int(model.actuator_biastype[a]) == 0  # mjBIAS_NONE
            and float(model.actuator_gainprm[a, 0]) == 1.0
        )
        if not motor or model.actuator_forcelimited[a]:
            what = (
                "is not a plain motor (a servo or activation dynamics)" if not motor else "has a force range"
            )
            raise SimError(
                f"{path}: actuator {a} on joint '{jname}' {what}, which the PyBullet backend cannot "
                f"translate; {_USE_MUJOCO} or make it a <motor> without forcerange"
            )
        limited = bool(model.actuator_ctrllimited[a])
        actuators.append(
            ActuatorDesc(
                name=model.actuator(a).name or jname,
                joint=jname,
                gear=float(model.actuator_gear[a, 0]),
                ctrlrange=(float(model.actuator_ctrlrange[a, 0]), float(model.actuator_ctrlrange[a, 1]))
                if limited
                else None,
            )
        )
    return MjcfDescription(
        path=Path(path),
        timestep=float(model.opt.timestep),
        gravity=model.opt.gravity.copy(),
        bodies=bodies,
        joints=joints,
        actuators=actuators,
    )


def load_description(path: Path) -> MjcfDescription:
    return describe_model(compile_mjcf(path), Path(path))


# ---------------------------------------------------------------------------------- URDF export


def _fmt(v: Any) -> str:
    return " ".join(f"{float(x):.10g}" for x in np.atleast_1d(v))


def _origin(pos: np.ndarray, rot: np.ndarray | None = None) -> str:
    rpy = mat_to_rpy(rot) if rot is not None else (0.0, 0.0, 0.0)
    return f'<origin xyz="{_fmt(pos)}" rpy="{_fmt(rpy)}"/>'


def _geometry(g: GeomDesc, source: Path) -> str:
    s = g.size
    if g.type == "sphere":
        return f'<sphere radius="{s[0]:.10g}"/>'
    if g.type == "capsule":
        return f'<capsule radius="{s[0]:.10g}" length="{2 * s[1]:.10g}"/>'
    if g.type == "cylinder":
        return f'<cylinder radius="{s[0]:.10g}" length="{2 * s[1]:.10g}"/>'
    if g.type == "box":
        return f'<box size="{_fmt(2 * s[:3])}"/>'
    raise SimError(
        f"{source}: geom '{g.name}' has type '{g.type}', which the PyBullet backend cannot translate "
        f"(supported: sphere, capsule, cylinder, box); {_USE_MUJOCO} or simplify the geom"
    )


def _inertial(mass: float, inertia: np.ndarray, ipos: np.ndarray, irot: np.ndarray) -> str:
    i = inertia
    return (
        f'<inertial>{_origin(ipos, irot)}<mass value="{mass:.10g}"/>'
        f'<inertia ixx="{i[0]:.10g}" iyy="{i[1]:.10g}" izz="{i[2]:.10g}" ixy="0" ixz="0" iyz="0"/></inertial>'
    )


@dataclass
class UrdfExport:
    """A URDF translation of an MJCF description, with the bookkeeping to use it."""

    text: str
    fixed_base: bool
    self_collision: bool
    link_of_body: dict[str, str]  # body name -> URDF link holding its geoms and inertia
    link_offset: dict[str, np.ndarray]  # body name -> that link's origin in the body frame


def mjcf_to_urdf(desc: MjcfDescription) -> UrdfExport:
    """Translate the compiled bodies/joints/geoms (not the world geoms) into a URDF string.

    Conventions: every URDF link keeps its MuJoCo body's orientation; a body with several joints
    (the planar robots' rootx/rootz/rooty) becomes a chain of massless links, one per joint, with
    each link's origin at that joint's anchor. URDF joint positions are MuJoCo's minus ``ref``.
    """
    floating = desc.floating_base
    roots = [b for b in range(1, len(desc.bodies)) if desc.bodies[b].parent == 0]
    if floating and len(roots) != 1:
        raise SimError(f"{desc.path}: a floating-base robot must have exactly one root body")
    for j in desc.joints:
        if j.type == "ball" or (j.type == "free" and desc.bodies[j.body].parent != 0):
            raise SimError(
                f"{desc.path}: joint '{j.name}' ({j.type}) is not supported by the PyBullet backend"
            )
    links: list[str] = []
    joints: list[str] = []
    link_of_body: dict[str, str] = {}
    offset: dict[int, np.ndarray] = {0: np.zeros(3)}
    last_link: dict[int, str] = {0: "world"}
    if not floating:
        links.append('<link name="world"/>')
    material = 0

    def body_link(b: int, name: str, o: np.ndarray) -> str:
        nonlocal material
        body = desc.bodies[b]
        parts = [f"<link name={quoteattr(name)}>"]
        if body.mass > 0:
            parts.append(_inertial(body.mass, body.inertia, body.ipos - o, quat_to_mat(body.iquat)))
        else:
            parts.append(_inertial(0.0, np.zeros(3), np.zeros(3), np.eye(3)))
        for g in body.geoms:
            geo = _geometry(g, desc.path)
            org = _origin(g.pos - o, quat_to_mat(g.quat))
            parts.append(
                f'<visual>{org}<geometry>{geo}</geometry><material name="m{material}">'
                f'<color rgba="{_fmt(g.rgba)}"/></material></visual>'
            )
            material += 1
            if g.contype or g.conaffinity:
                parts.append(f"<collision>{org}<geometry>{geo}</geometry></collision>")
        parts.append("</link>")
        return "".join(parts)

    for b in range(1, len(desc.bodies)):
        body = desc.bodies[b]
        parent_link, o_parent = last_link[body.parent], offset[body.parent]
        body_rot = quat_to_mat(body.quat)
        moving = [ji for ji in body.joints if desc.joints[ji].type != "free"]
        if floating and b == roots[0]:
            links.append(body_link(b, body.name, np.zeros(3)))
            last_link[b], offset[b] = body.name, np.zeros(3)
            link_of_body[body.name] = body.name
            continue
        if not moving:
            links.append(body_link(b, body.name, np.zeros(3)))
            joints.append(
                f'<joint name={quoteattr(body.name + "__weld")} type="fixed">'
                f"<parent link={quoteattr(parent_link)}/>"
                f"<child link={quoteattr(body.name)}/>{_origin(body.pos - o_parent, body_rot)}</joint>"
            )
            last_link[b], offset[b] = body.name, np.zeros(3)
            link_of_body[body.name] = body.name
            continue
        prev = parent_link
        o = np.zeros(3)
        for k, ji in enumerate(moving):
            jd = desc.joints[ji]
            is_last = k == len(moving) - 1
            child = body.name if is_last else f"{body.name}__{jd.name}"
            if k == 0:
                org = _origin(body.pos + body_rot @ jd.pos - o_parent, body_rot)
            else:
                org = _origin(jd.pos - o)
            o = jd.pos.copy()
            if is_last:
                links.append(body_link(b, child, o))
            else:
                massless = _inertial(0.0, np.zeros(3), np.zeros(3), np.eye(3))
                links.append(f"<link name={quoteattr(child)}>{massless}</link>")
            if jd.type == "hinge" and jd.range is None:
                jtype, limit = "continuous", ""
            else:
                jtype = "revolute" if jd.type == "hinge" else "prismatic"
                lo, hi = jd.range if jd.range is not None else (1.0, -1.0)  # lower > upper: no limit
                if jd.range is not None:
                    lo, hi = lo - jd.ref, hi - jd.ref
                limit = f'<limit lower="{lo:.10g}" upper="{hi:.10g}" effort="0" velocity="0"/>'
            joints.append(
                f'<joint name={quoteattr(jd.name)} type="{jtype}"><parent link={quoteattr(prev)}/>'
                f'<child link={quoteattr(child)}/>{org}<axis xyz="{_fmt(jd.axis)}"/>{limit}</joint>'
            )
            prev = child
        last_link[b], offset[b] = body.name, o
        link_of_body[body.name] = body.name

    robot_geoms = [g for b in desc.bodies[1:] for g in b.geoms]
    self_collision = any(
        (a.contype & c.conaffinity) or (c.contype & a.conaffinity)
        for i, a in enumerate(robot_geoms)
        for c in robot_geoms[i + 1 :]
    )
    name = desc.path.stem.replace('"', "")
    text = f'<?xml version="1.0"?>\n<robot name="{name}">\n' + "\n".join(links + joints) + "\n</robot>\n"
    return UrdfExport(
        text=text,
        fixed_base=not floating,
        self_collision=self_collision,
        link_of_body=link_of_body,
        link_offset={desc.bodies[b].name: offset[b] for b in range(1, len(desc.bodies))},
    )


def rotor_urdf(joints: list[JointDesc]) -> str:
    """A fixed-base multibody with one rotor per joint, carrying that joint's armature.

    PyBullet has no joint armature. Each rotor is geared 1:1 to its joint (a ``JOINT_GEAR``
    constraint, solved with the contacts), so the joint sees ``armature`` extra inertia on its own
    diagonal of the mass matrix and nowhere else: MuJoCo's armature, exactly. The rotors sit on
    a separate fixed base, so they add no inertia to the robot's links.
    """
    parts = [
        '<?xml version="1.0"?>\n<robot name="rotors">',
        f'<link name="base">{_inertial(0.0, np.zeros(3), np.zeros(3), np.eye(3))}</link>',
    ]
    for k, jd in enumerate(joints):
        if jd.type == "hinge":
            jtype, mass, moments = "continuous", 1e-3, np.full(3, jd.armature)
            limit = ""
        else:
            jtype, mass, moments = "prismatic", jd.armature, np.full(3, 1e-3)
            limit = '<limit lower="1" upper="-1" effort="0" velocity="0"/>'
        parts.append(f'<link name="rotor{k}">{_inertial(mass, moments, np.zeros(3), np.eye(3))}</link>')
        parts.append(
            f'<joint name="rotor{k}" type="{jtype}"><parent link="base"/><child link="rotor{k}"/>'
            f'<axis xyz="0 0 1"/>{limit}</joint>'
        )
    parts.append("</robot>\n")
    return "\n".join(parts)


def write_temp_urdf(text: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(suffix=".urdf", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return Path(name)
