"""Load the MJCF files we ship or borrow so that MuJoCo has nothing deprecated to warn about.

Gymnasium's ``half_cheetah.xml`` sets ``<compiler settotalmass="14"/>``, which MuJoCo (>= 3.3)
deprecates with a warning printed from C on every load. The attribute only scales every body's
mass and inertia so they sum to the given total, so we do exactly that ourselves:

* :func:`compile_model` compiles the file with the attribute cleared, then scales the masses
  with ``mj_setTotalmass`` and recomputes the derived constants (``mj_setConst``), as the
  warning itself advises; the model equals the one the attribute would give.
* :func:`gym_xml_file` gives Gymnasium envs (which load a path themselves) a copy of the file
  in which the default geom density is scaled instead, when every geom takes its mass from that
  density; the compiled masses and inertias equal the original's to rounding. Rounding grows
  into visible differences within a few hundred steps of a contact-rich gait, so
  :func:`use_exact_model` then swaps in :func:`compile_model`'s model, which is bit-identical
  to the one the attribute gives: the env steps exactly as Gymnasium's stock env.
"""

from __future__ import annotations

import hashlib
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from sim._gl import import_mujoco

DEFAULT_DENSITY = 1000.0  # MuJoCo's geom density when none is given


def total_mass_attribute(path: Path) -> float | None:
    """The ``settotalmass`` of ``path``'s compiler, or None when it has none (or is not XML)."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None
    for compiler in root.iter("compiler"):
        value = compiler.get("settotalmass")
        if value is not None and float(value) > 0:
            return float(value)
    return None


def compile_model(path: Path) -> Any:
    """``MjModel`` of an MJCF/URDF file; ``settotalmass`` is applied without MuJoCo's warning."""
    mujoco = import_mujoco()
    total = total_mass_attribute(Path(path))
    if total is None:
        return mujoco.MjModel.from_xml_path(str(path))
    spec = mujoco.MjSpec.from_file(str(path))
    spec.compiler.settotalmass = -1
    model = spec.compile()
    mujoco.mj_setTotalmass(model, total)
    mujoco.mj_setConst(model, mujoco.MjData(model))
    return model


def gym_xml_file(path: Path) -> Path | None:
    """A copy of ``path`` without ``settotalmass`` and with the same masses, or None when
    ``path`` has no such attribute (load it as it is) or cannot be rewritten exactly."""
    path = Path(path)
    total = total_mass_attribute(path)
    if total is None:
        return None
    mujoco = import_mujoco()
    tree = ET.parse(path)
    root = tree.getroot()
    if any("file" in el.attrib for el in root.iter()):
        return None  # relative asset paths would break in the copy's folder
    spec = mujoco.MjSpec.from_file(str(path))
    if any(b.explicitinertial for b in spec.bodies) or any(
        g.density != DEFAULT_DENSITY or g.mass == g.mass
        for g in spec.geoms  # mass == mass: not NaN
    ):
        return None  # masses that do not all come from the default density
    spec.compiler.settotalmass = -1
    density = DEFAULT_DENSITY * total / float(spec.compile().body_mass.sum())
    for compiler in root.iter("compiler"):
        compiler.attrib.pop("settotalmass", None)
    default = root.find("default")
    if default is None:
        default = ET.Element("default")
        root.insert(0, default)
    geom = default.find("geom")
    if geom is None:
        geom = ET.SubElement(default, "geom")
    geom.set("density", repr(density))
    text = ET.tostring(root, encoding="unicode")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / "bremen-mjcf" / f"{path.stem}-{digest}.xml"
    if not out.is_file():
        from bremen_robot.fsutil import atomic_write_bytes

        atomic_write_bytes(out, text.encode())
    return out


def use_exact_model(env: Any, path: Path) -> None:
    """Replace a freshly made Gymnasium MuJoCo env's model and data by :func:`compile_model`'s
    (call before the first reset; same sizes, so spaces and initial state stay valid)."""
    mujoco = import_mujoco()
    model = compile_model(path)
    data = mujoco.MjData(model)
    env.model, env.data = model, data
    renderer = getattr(env, "mujoco_renderer", None)
    if renderer is not None:
        renderer.model, renderer.data = model, data
