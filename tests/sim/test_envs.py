"""Gymnasium envs on both engines: check_env, layouts, determinism, parity, sanity."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from bremen_robot.tasks import get_task
from tests.sim.conftest import BACKENDS, LOCOMOTION, PAIRS, inside_limits

# Gymnasium's own MuJoCo envs use the same unbounded observation box
pytestmark = pytest.mark.filterwarnings("ignore:.*Box observation space (minimum|maximum) value:UserWarning")


@pytest.mark.parametrize(("robot", "backend"), PAIRS)
def test_gymnasium_check_env(robot, backend):
    env = sim.make(robot, backend=backend)
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("robot", sim.robot_names())
def test_observation_layout_identical_across_engines(robot):
    envs = [sim.make(robot, backend=b) for b in BACKENDS]
    task = get_task(sim.get_robot(robot).default_task)
    for env in envs:
        assert env.obs_names == task.obs_names
        assert env.observation_space.shape == (task.obs_dim,)
        assert env.action_space.shape == (task.action_dim,)
    # the same state gives the same observation, entry by entry, in both engines
    env0 = envs[0]
    env0.reset(seed=3)
    qpos, qvel = env0.backend.get_state()
    rng = np.random.default_rng(3)
    qvel = qvel + rng.normal(0, 0.3, qvel.shape)  # nonzero velocities exercise the base twist
    qpos = inside_limits(env0.backend, qpos) if env0.engine == "mujoco" else qpos
    obs = []
    for env in envs:
        env.reset(seed=3)  # same goal for the arm
        obs.append(env.set_state(qpos, qvel))
    np.testing.assert_allclose(obs[0], obs[1], atol=1e-6)
    for env in envs:
        env.close()


@pytest.mark.parametrize(("robot", "backend"), PAIRS)
def test_same_seed_same_trajectory(robot, backend):
    def rollout():
        env = sim.make(robot, backend=backend)
        obs, _ = env.reset(seed=11)
        env.action_space.seed(11)
        out = [obs]
        for _ in range(25):
            obs, *_ = env.step(env.action_space.sample())
            out.append(obs)
        env.close()
        return np.array(out)

    a, b = rollout(), rollout()
    np.testing.assert_array_equal(a, b)
    c = sim.make(robot, backend=backend)
    obs_other, _ = c.reset(seed=12)
    c.close()
    assert not np.array_equal(a[0], obs_other)  # and another seed differs


@pytest.mark.parametrize("robot", ["halfcheetah", "hopper", "walker2d", "ant"])
def test_mujoco_env_reproduces_gymnasium_v5(robot):
    gym = pytest.importorskip("gymnasium")
    task = get_task(robot)
    ref = gym.make(task.gym_id, **task.gym_kwargs).unwrapped
    env = sim.make(robot, backend="mujoco")
    ref_obs, _ = ref.reset(seed=5)
    obs, _ = env.reset(seed=5)
    if robot == "ant":  # Gymnasium leaves the sampled quaternion unnormalized until the first step
        q = ref_obs[1:5]
        ref_obs = ref_obs.copy()
        ref_obs[1:5] = q / np.linalg.norm(q)
        ref.set_state(np.concatenate([ref.data.qpos[:3], ref_obs[1:5], ref.data.qpos[7:]]), ref.data.qvel)
    np.testing.assert_allclose(obs, ref_obs, atol=1e-12)
    # Gymnasium's action i drives actuator i; the task's action names say which joint that is
    act_joint = [ref.model.joint(ref.model.actuator_trnid[a, 0]).name for a in range(ref.model.nu)]
    to_task = [act_joint.index(n) for n in task.action_names]
    rng = np.random.default_rng(0)
    for _ in range(30):
        a_gym = rng.uniform(-1, 1, ref.model.nu)
        ref_obs, *_ = ref.step(a_gym)
        obs, *_ = env.step(a_gym[to_task])
        np.testing.assert_allclose(obs, ref_obs, atol=1e-9)
    env.close()
    ref.close()


@pytest.mark.parametrize(("robot", "backend"), PAIRS)
def test_fixed_action_sequence_stays_physically_sane(robot, backend):
    env = sim.make(robot, backend=backend)
    obs, _ = env.reset(seed=0)
    n = env.action_space.shape[0]
    phase = np.arange(n)
    for t in range(150):
        action = 0.8 * np.sin(0.3 * t + phase)  # a fixed, vigorous open-loop gait
        obs, reward, terminated, truncated, _ = env.step(action)
        assert np.all(np.isfinite(obs)) and np.isfinite(reward), f"non-finite at step {t}"
        assert np.abs(obs).max() < 200.0, f"state blew up at step {t}: {np.abs(obs).max()}"
        if terminated:
            break
    b = env.backend
    if robot in LOCOMOTION:  # the torso is still above the floor and has not been launched
        assert 0.0 < b.point_position("torso")[2] < 3.0
    else:
        lo, hi = (
            np.array([-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671]),
            -np.array([-2.9671, -1.8326, -2.9671, 0.0, -2.9671, -3.8223, -2.9671]),
        )
        q = b.joint_positions()
        assert np.all(q > lo - 0.05) and np.all(q < hi + 0.05)  # joint limits hold
    env.close()


@pytest.mark.parametrize("robot", sim.robot_names())
def test_engines_agree_on_masses_and_kinematics(robot):
    """The translated description has MuJoCo's masses, and bodies sit where MuJoCo puts them."""
    from sim.backends import create_backend

    mj, pb = create_backend(robot, "mujoco"), create_backend(robot, "pybullet")
    assert mj.joint_names == pb.joint_names
    assert mj.actuated_joint_names == pb.actuated_joint_names
    m_mj, m_pb = mj.physics_params()["link_mass"], pb.physics_params()["link_mass"]
    assert m_mj.keys() == m_pb.keys()
    for name in m_mj:
        assert m_pb[name] == pytest.approx(m_mj[name], rel=1e-6), name
    rng = np.random.default_rng(0)
    for _ in range(3):
        qpos = inside_limits(mj, mj.qpos0 + rng.uniform(-0.3, 0.3, mj.nq))
        if mj.floating_base:
            qpos[3:7] /= np.linalg.norm(qpos[3:7])
        for b in (mj, pb):
            b.restore_initial()
            b.set_state(qpos, np.zeros(mj.nv))
        points = ["ee"] if robot == "panda" else [n for n in mj.body_names]
        for p in points:
            np.testing.assert_allclose(pb.point_position(p), mj.point_position(p), atol=1e-6, err_msg=p)
    mj.close()
    pb.close()


@pytest.mark.parametrize("robot", ["hopper", "walker2d", "ant"])
def test_engines_agree_in_free_flight(robot):
    """Away from the floor, bridged physics (inertia, armature, damping, motors) matches MuJoCo.

    The robot is lifted 5 m and driven with small torques for 3 control steps; what remains is
    the integrators' difference (MuJoCo RK4 vs PyBullet semi-implicit Euler), well under 2%.
    """
    from sim.backends import create_backend

    mj, pb = create_backend(robot, "mujoco"), create_backend(robot, "pybullet")
    qpos = mj.qpos0.copy()
    qpos[2 if robot == "ant" else 1] += 5.0
    mid = {"hopper": [-0.5, -0.5, 0.0], "walker2d": [-0.5, -0.5, 0.0, -0.5, -0.5, 0.0]}
    qpos[-8:] = [0, 0.8, 0, -0.8, 0, -0.8, 0, 0.8] if robot == "ant" else qpos[-8:]
    if robot in mid:
        qpos[-len(mid[robot]) :] = mid[robot]
    rng = np.random.default_rng(1)
    qvel = rng.normal(0, 0.5, mj.nv)
    action = rng.uniform(-0.2, 0.2, len(mj.actuated_joint_names))
    for b in (mj, pb):
        b.restore_initial()
        b.set_state(qpos, qvel)
    for _ in range(2):
        for b in (mj, pb):
            b.apply(action)
            b.step()
    (_, v_mj), (_, v_pb) = mj.get_state(), pb.get_state()
    assert np.abs(v_mj - v_pb).max() <= 0.02 * np.abs(v_mj).max()
    mj.close()
    pb.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_panda_tracks_joint_velocity_commands(backend):
    env = sim.make("panda", backend=backend)
    env.reset(seed=0)
    command = np.array([0.5, -0.4, 0.3, 0.6, -0.5, 0.4, -0.3])
    env.step(command)
    obs, *_ = env.step(command)
    np.testing.assert_allclose(obs[7:14], command, atol=0.03)
    env.step(np.zeros(7))  # the wrist saturates at 12 N m while the arm brakes
    obs, *_ = env.step(np.zeros(7))
    np.testing.assert_allclose(obs[7:14], 0.0, atol=0.03)
    env.close()


def test_panda_reset_matches_the_task_reset_distribution():
    """The env's first observation is the task's reset_fn draw for the same seed."""
    env = sim.make("panda", backend="pybullet")
    obs, _ = env.reset(seed=21)
    expected = get_task("panda_reach").sample_reset(1, np.random.default_rng(21))[0]
    np.testing.assert_allclose(obs, expected, atol=1e-5)
    env.close()


def test_gymnasium_ids_are_registered():
    gym = pytest.importorskip("gymnasium")
    env = gym.make(sim.gym_id("hopper", "pybullet"))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (11,)
    env.close()


def test_engines_agree_on_the_base_quaternion_past_a_half_turn():
    """The Ant spins about z at 6 rad/s in free flight for 1 s (6 rad, past a half turn): its
    quaternion's w is cos(6/2) = -0.99 in MuJoCo, which integrates it continuously. PyBullet
    hands back either sign; the observation must be MuJoCo's, not its negative."""
    envs = [sim.make("ant", backend=b) for b in BACKENDS]
    names = envs[0].obs_names
    quat = [names.index(f"qpos.root_q{c}") for c in "wxyz"]
    qpos = envs[0].backend.qpos0.copy()
    qpos[2] += 5.0
    qpos[-8:] = [0, 0.8, 0, -0.8, 0, -0.8, 0, 0.8]  # legs inside their limits
    qvel = np.zeros(envs[0].backend.nv)
    qvel[5] = 6.0
    for env in envs:
        env.reset(seed=0)
        env.set_state(qpos, qvel)
    for _ in range(20):
        obs = [env.step(np.zeros(8))[0] for env in envs]
        np.testing.assert_allclose(obs[1][quat], obs[0][quat], atol=0.02)
    for o in obs:  # turned by 5.6..6 rad about z (the free legs take a little of the spin)
        assert o[quat[0]] < np.cos(5.6 / 2) and 0 < o[quat[3]] < np.sin(6.0 / 2 - 0.4)
        assert abs(o[quat[1]]) < 1e-3 and abs(o[quat[2]]) < 1e-3
    # and a state set with w < 0 reads back as set
    pb = envs[1].backend
    qpos[3:7] = [-0.8, -0.2, 0.0, -np.sqrt(0.32)]
    pb.set_state(qpos, np.zeros(pb.nv))
    np.testing.assert_allclose(pb.get_state()[0][3:7], qpos[3:7], atol=1e-9)
    for env in envs:
        env.close()
