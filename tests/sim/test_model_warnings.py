"""Loading a shipped robot or Gymnasium env prints nothing of MuJoCo's (issue 15, item 16).

Gymnasium's half_cheetah.xml uses the deprecated ``settotalmass``; we apply it ourselves, and
the model must still be the one MuJoCo builds from the attribute.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from bremen_robot.data.real_rollout import make_env
from sim.mjcf_compat import compile_model, gym_xml_file
from sim.robots import ROBOTS

mujoco = pytest.importorskip("mujoco")
CHEETAH = ROBOTS["halfcheetah"].asset_path()


@pytest.mark.parametrize("robot", sorted(ROBOTS))
def test_loading_a_shipped_robot_prints_no_mujoco_warning(robot, capfd):
    env = sim.make(robot, backend="mujoco")
    env.reset(seed=0)
    env.close()
    out, err = capfd.readouterr()
    assert "deprecated" not in out + err and "WARNING" not in out + err


@pytest.mark.parametrize("spec", ["HalfCheetah-v5", "Hopper-v5", "sim:halfcheetah/pybullet"])
def test_gymnasium_envs_we_make_print_no_mujoco_warning(spec, capfd):
    env, _ = make_env(spec)
    env.reset(seed=0)
    env.close()
    out, err = capfd.readouterr()
    assert "deprecated" not in out + err and "WARNING" not in out + err


def _fields(model):
    return {
        name: np.asarray(getattr(model, name)).copy()
        for name in ("body_mass", "body_inertia", "body_subtreemass", "dof_invweight0", "body_invweight0")
    }


def test_cheetah_model_equals_what_settotalmass_gives(capfd):
    reference = _fields(mujoco.MjModel.from_xml_path(str(CHEETAH)))  # the deprecated path itself
    assert "settotalmass" in capfd.readouterr().err  # the stock file does trigger the warning
    assert reference["body_mass"].sum() == pytest.approx(14.0)
    for model in (compile_model(CHEETAH), mujoco.MjModel.from_xml_path(str(gym_xml_file(CHEETAH)))):
        for name, ref in reference.items():
            np.testing.assert_allclose(_fields(model)[name], ref, rtol=1e-9, atol=1e-12, err_msg=name)
    out, err = capfd.readouterr()
    assert "deprecated" not in out + err


def test_files_without_the_attribute_are_loaded_as_they_are():
    assert gym_xml_file(ROBOTS["hopper"].asset_path()) is None


def test_halfcheetah_v5_we_make_steps_exactly_as_gymnasiums_own(capfd):
    gym = pytest.importorskip("gymnasium")
    ours, _ = make_env("HalfCheetah-v5")
    stock = gym.make("HalfCheetah-v5")  # prints the deprecation; it is the reference
    a, _ = ours.reset(seed=3)
    b, _ = stock.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(300):  # long enough for rounding-level differences to grow visible
        u = rng.uniform(-1, 1, 6)
        a, ra, *_ = ours.step(u)
        b, rb, *_ = stock.step(u)
        np.testing.assert_array_equal(a, b)
        assert ra == rb
    ours.close()
    stock.close()
