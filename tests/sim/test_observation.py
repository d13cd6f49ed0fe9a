"""sim.observation: task observations from named joint states, without any simulator."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bremen_robot.errors import TaskError
from bremen_robot.tasks import get_task
from bremen_robot.tasks.reach import PANDA_HOME, panda_ee_position
from sim.observation import ObservationBuilder, build_observation, quat_conjugate_rotate, rotate


def test_planar_layout_is_qpos_without_x_then_qvel_by_name():
    task = get_task("hopper")
    names = ["foot_joint", "rootx", "leg_joint", "rootz", "thigh_joint", "rooty"]  # any order
    pos = np.array([0.6, 5.0, 0.5, 1.2, 0.4, 0.3])
    vel = np.array([6.0, 1.0, 5.0, 2.0, 4.0, 3.0])
    obs = build_observation(task, names, pos, vel)
    # hopper: qpos (rootz, rooty, thigh, leg, foot) then qvel (rootx, rootz, rooty, thigh, leg, foot)
    np.testing.assert_array_equal(obs, [1.2, 0.3, 0.4, 0.5, 0.6, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


def test_ant_base_twist_angular_part_is_rotated_into_the_body_frame():
    task = get_task("ant")
    joints = list(task.action_names)
    quat = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])  # 90 degrees about z
    lin, ang_world = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.0, 0.0])
    obs = build_observation(
        task,
        joints,
        np.zeros(8),
        np.zeros(8),
        base_pose=(np.array([9.0, 8.0, 0.6]), quat),
        base_twist=(lin, ang_world),
    )
    assert obs[0] == pytest.approx(0.6)  # root_z; x and y are not observed
    np.testing.assert_allclose(obs[1:5], quat)
    np.testing.assert_allclose(obs[13:16], lin)  # linear velocity stays in the world frame
    # world x-rate seen from a body yawed by +90 degrees is a rate about its -y axis
    np.testing.assert_allclose(obs[16:19], [0.0, -0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(rotate(quat, quat_conjugate_rotate(quat, ang_world)), ang_world, atol=1e-12)


def test_panda_reach_end_effector_from_forward_kinematics_when_not_given():
    task = get_task("panda_reach")
    joints = [f"panda_joint{i}" for i in range(1, 8)]
    goal = {"goal.x": 0.5, "goal.y": 0.1, "goal.z": 0.3}
    obs = build_observation(task, joints, PANDA_HOME, np.zeros(7), extras=goal)
    np.testing.assert_allclose(obs[17:20], panda_ee_position(PANDA_HOME))
    np.testing.assert_allclose(obs[14:17], [0.5, 0.1, 0.3])
    measured = {**goal, "ee.x": 1.0, "ee.y": 2.0, "ee.z": 3.0}  # a measured ee wins over FK
    obs = build_observation(task, joints, PANDA_HOME, np.zeros(7), extras=measured)
    np.testing.assert_allclose(obs[17:20], [1.0, 2.0, 3.0])


def test_bad_joint_states_are_one_line_errors():
    task = get_task("halfcheetah")
    with pytest.raises(TaskError, match="no joint 'bthigh'"):
        ObservationBuilder(task, ["rootx", "rootz", "rooty"])
    builder = ObservationBuilder(
        task, ["rootx", "rootz", "rooty", "bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"]
    )
    with pytest.raises(TaskError, match="one entry per joint"):
        builder(np.zeros(8), np.zeros(9))
    with pytest.raises(TaskError, match="floating-base pose"):
        build_observation(get_task("ant"), list(get_task("ant").action_names), np.zeros(8), np.zeros(8))
    with pytest.raises(TaskError, match="goal.x"):
        build_observation(
            get_task("panda_reach"), [f"panda_joint{i}" for i in range(1, 8)], np.zeros(7), np.zeros(7)
        )


def test_observation_module_imports_no_simulator():
    code = (
        "import sys, sim.observation, sim.randomization; "
        "bad = [m for m in ('mujoco', 'pybullet', 'torch') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_bremen_cli_does_not_import_sim_until_sim2real_runs():
    code = (
        "import sys; from bremen_robot.cli import build_parser; build_parser(); "
        "bad = [m for m in ('sim', 'mujoco', 'pybullet') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
