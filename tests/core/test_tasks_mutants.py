"""Task functions at their boundaries, on time-major batches and with their exact draws.

Written against the mutants `make mutate` found alive in bremen_robot/tasks (docs/testing.md,
Mutation testing). Expectations come from Gymnasium's documented rules (strict inequalities
for the healthy ranges), from numpy recomputation of the same draws, or by hand.
"""

import numpy as np
import pytest
import torch

from bremen_robot.errors import TaskError
from bremen_robot.tasks import _TASKS, Task, get_task, locomotion, register_task, toy
from bremen_robot.tasks import reach as reach_mod


def _hopper_state(**entries: float) -> np.ndarray:
    s = np.zeros(11)
    s[0] = 1.25
    for k, v in entries.items():
        s[int(k[1:])] = v
    return s


def test_hopper_healthy_ranges_are_strict_as_in_gymnasium():
    """Gymnasium's Hopper is healthy for z > 0.7, |angle| < 0.2 and |state[1:]| < 100, all strict:
    a state exactly on a bound has fallen; one just inside has not."""
    task = get_task("hopper")
    rows = [
        _hopper_state(i0=0.7),  # height on the bound
        _hopper_state(i0=0.7001),
        _hopper_state(i1=0.2),  # angle on the bound
        _hopper_state(i1=-0.1999),
        _hopper_state(i7=100.0),  # a joint velocity on the bound
        _hopper_state(i7=-100.5),
        _hopper_state(i10=99.9),
    ]
    s2 = np.stack(rows)
    a = np.zeros((len(rows), 3))
    np.testing.assert_array_equal(task.terminated(s2, a, s2), [True, False, True, False, True, True, False])


def test_walker_healthy_ranges_are_strict_and_read_the_angle_at_obs_1():
    """Walker2d: healthy for 0.8 < z < 2.0 and |qpos.rooty| < 1.0 (obs 1), strict bounds."""
    task = get_task("walker2d")
    assert task.obs_names[1] == "qpos.rooty"
    s2 = np.zeros((7, 17))
    s2[:, 0] = 1.25
    s2[0, 0] = 0.8  # on the lower height bound
    s2[1, 0] = 2.0  # on the upper height bound
    s2[2, 1] = 1.0  # on the angle bound
    s2[3, 1] = -1.5  # beyond it (would pass a bound of 2)
    s2[4, 2] = 5.0  # obs 2 is a joint, not the angle: healthy
    s2[5, 0] = 1.999
    s2[6, 1] = 0.999
    a = np.zeros((7, 6))
    np.testing.assert_array_equal(task.terminated(s2, a, s2), [True, True, True, True, False, False, False])


@pytest.mark.parametrize("name", ["halfcheetah", "hopper", "walker2d", "ant", "point", "panda_reach"])
def test_reward_and_termination_of_a_time_major_batch_equal_the_row_by_row_values(name):
    """Imagination scores ``(T, B, D)`` batches: reducing over the last axis, not axis 1, must give
    each row the value it has alone."""
    task = get_task(name)
    rng = np.random.default_rng(4)
    T, B = 3, 5
    s = rng.normal(size=(T, B, task.obs_dim))
    a = rng.uniform(-1, 1, size=(T, B, task.action_dim))
    s2 = rng.normal(size=(T, B, task.obs_dim))
    s2[..., 0] = np.where(rng.random((T, B)) < 0.5, 1.25, s2[..., 0])  # both termination branches
    r, d = task.reward(s, a, s2), task.terminated(s, a, s2)
    assert r.shape == (T, B) and d.shape == (T, B)
    for t in range(T):
        for b in range(B):
            row = (s[t, b][None], a[t, b][None], s2[t, b][None])
            assert r[t, b] == pytest.approx(float(task.reward(*row)[0]), rel=1e-12)
            assert d[t, b] == bool(task.terminated(*row)[0])


def test_task_forwards_obs_action_and_next_obs_in_order():
    seen = []

    def record(o, a, n):
        seen.append((o, a, n))
        return np.zeros(1)

    task = Task("fwd", ("x",), ("u",), (-1.0,), (1.0,), 0.1, 10, reward_fn=record, termination_fn=record)
    o, a, n = np.array([[1.0]]), np.array([[2.0]]), np.array([[3.0]])
    task.reward(o, a, n)
    task.terminated(o, a, n)
    assert [tuple(float(x[0, 0]) for x in call) for call in seen] == [(1.0, 2.0, 3.0)] * 2


@pytest.mark.parametrize(("low", "high"), [((-1.0,), (1.0, 1.0)), ((-1.0, -1.0), (1.0,)), ((-1.0,), (1.0,))])
def test_task_refuses_bounds_that_do_not_match_the_action_names(low, high):
    with pytest.raises(TaskError, match="task bad: action bounds must have one entry per action name"):
        Task("bad", ("x",), ("u", "v"), low, high, 0.1, 10, reward_fn=lambda o, a, n: o)


def test_task_with_one_bound_per_action_name_is_accepted():
    task = Task("good", ("x",), ("u", "v"), (-1.0, -2.0), (1.0, 2.0), 0.1, 10, reward_fn=lambda o, a, n: o)
    assert task.action_dim == 2 and task.obs_dim == 1


def test_check_obs_dim_names_both_sizes_and_the_layout():
    task = get_task("hopper")
    task.check_obs_dim(11, "dataset d.npz")  # the right size passes
    with pytest.raises(TaskError) as err:
        task.check_obs_dim(17, "dataset d.npz")
    assert str(err.value) == (
        "dataset d.npz has observations of size 17 but task 'hopper' expects 11 "
        "(qpos.rootz, qpos.rooty, qpos.thigh_joint, ...); pick the task the data was recorded for"
    )


def test_register_task_adds_a_new_name_and_refuses_a_different_task_under_a_taken_one():
    mine = Task("mut_probe", ("x",), ("u",), (-1.0,), (1.0,), 0.1, 10, reward_fn=lambda o, a, n: o)
    twin = Task("mut_probe", ("x",), ("u",), (-1.0,), (1.0,), 0.1, 10, reward_fn=lambda o, a, n: o)
    try:
        register_task(mine)
        assert get_task("mut-probe") is mine
        register_task(mine)  # the same object again is fine
        with pytest.raises(TaskError, match="task 'mut_probe' is already registered; choose another name"):
            register_task(twin)
        assert get_task("mut_probe") is mine
        with pytest.raises(TaskError):
            register_task(
                Task("point", ("x",), ("u",), (-1.0,), (1.0,), 0.1, 10, reward_fn=lambda o, a, n: o)
            )
    finally:
        _TASKS.pop("mut_probe", None)


def test_reach_success_is_strictly_inside_5_cm():
    """sqrt(fl(0.05^2)) is 0.05 exactly, so a point exactly 5 cm away is not a success."""
    task = get_task("panda_reach")
    s2 = np.zeros((3, 20))
    s2[:, 17] = [0.05, 0.0499, 0.0501]  # ee.x; the goal is at the origin
    np.testing.assert_array_equal(task.success_fn(s2, np.zeros((3, 7)), s2), [False, True, False])


def test_reach_joint_sample_is_home_plus_uniform_noise_with_these_draws():
    rng_a, rng_b = np.random.default_rng(11), np.random.default_rng(11)
    q = reach_mod.sample_reach_joints(6, rng_a)
    expected = reach_mod.PANDA_HOME + rng_b.uniform(-0.3, 0.3, size=(6, 7))
    # joint 4 sits 0.785 rad above its lower limit at home: +-0.3 rad never reaches a clip
    np.testing.assert_array_equal(q, expected)


def test_reach_joint_sample_stays_5_cm_inside_the_limits_whatever_the_noise(monkeypatch):
    """With a noise of 10 rad every joint is clipped at both ends: exactly 0.05 rad inside."""
    monkeypatch.setattr(reach_mod, "REACH_JOINT_NOISE", 10.0)
    q = reach_mod.sample_reach_joints(400, np.random.default_rng(0))
    lower = np.array([-2.9171, -1.7826, -2.9171, -3.0916, -2.9171, -0.0373, -2.9171])
    upper = np.array([2.9171, 1.7826, 2.9171, -0.05, 2.9171, 3.7723, 2.9171])
    np.testing.assert_allclose(q.min(0), lower, atol=1e-12)
    np.testing.assert_allclose(q.max(0), upper, atol=1e-12)


def test_forward_kinematics_of_float32_joints_is_computed_in_float64():
    """Datasets store float32 observations; the end-effector is still computed in float64."""
    q = np.random.default_rng(2).uniform(-1.5, 1.5, size=(8, 7)).astype(np.float32)
    ee32 = reach_mod.panda_ee_position(q)
    ee64 = reach_mod.panda_ee_position(q.astype(np.float64))
    assert ee32.dtype == np.float64
    np.testing.assert_array_equal(ee32, ee64)


def test_reach_distance_on_torch_and_numpy_of_a_time_major_batch():
    obs = np.zeros((2, 3, 20))
    obs[..., 17] = 0.3
    obs[..., 18] = 0.4  # ee at (0.3, 0.4, 0), goal at the origin: 0.5 m
    np.testing.assert_allclose(reach_mod.reach_distance(obs), np.full((2, 3), 0.5))
    torch.testing.assert_close(
        reach_mod.reach_distance(torch.as_tensor(obs)), torch.full((2, 3), 0.5, dtype=torch.float64)
    )


# The helpers below build the task table at import; calling them here is what lets a mutant in
# them run at all (mutmut forks its workers after the import).


def test_planar_layout_names_qpos_without_rootx_then_qvel():
    """Gymnasium v5 Hopper: qpos[1:] (rootz, rooty, 3 joints), then all 6 qvel."""
    names = locomotion._planar_obs_names(("thigh_joint", "leg_joint", "foot_joint"))
    assert names == (
        "qpos.rootz",
        "qpos.rooty",
        "qpos.thigh_joint",
        "qpos.leg_joint",
        "qpos.foot_joint",
        "qvel.rootx",
        "qvel.rootz",
        "qvel.rooty",
        "qvel.thigh_joint",
        "qvel.leg_joint",
        "qvel.foot_joint",
    )


def test_ant_layout_names_qpos_without_xy_then_qvel():
    joints = ["hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3", "hip_4", "ankle_4"]
    expected = [f"qpos.{n}" for n in ["root_z", "root_qw", "root_qx", "root_qy", "root_qz"] + joints] + [
        f"qvel.{n}" for n in ["root_vx", "root_vy", "root_vz", "root_wx", "root_wy", "root_wz"] + joints
    ]
    assert locomotion._ant_obs_names() == tuple(expected)


def test_unit_box():
    assert locomotion._unit_box(3) == ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))


@pytest.mark.parametrize("qvel_normal", [False, True])
def test_uniform_reset_adds_these_draws_to_the_initial_observation(qvel_normal):
    """qpos entries get U(-s, s), qvel entries U(-s, s) or s * N(0, 1), in that draw order."""
    init = np.array([1.25, 0.5, -2.0, 3.0, 7.0])
    reset = locomotion._uniform_reset(init, 2, 0.1, qvel_normal=qvel_normal)
    got = reset(4, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    qpos = init[:2] + rng.uniform(-0.1, 0.1, size=(4, 2))
    noise = 0.1 * rng.standard_normal((4, 3)) if qvel_normal else rng.uniform(-0.1, 0.1, size=(4, 3))
    np.testing.assert_array_equal(got, np.concatenate([qpos, init[2:] + noise], axis=1))
    assert init.tolist() == [1.25, 0.5, -2.0, 3.0, 7.0]  # the template is not modified


def test_unknown_task_message_lists_every_valid_name_comma_separated():
    with pytest.raises(TaskError) as err:
        get_task("cheeta")
    assert str(err.value) == f"unknown task 'cheeta'; valid tasks: {', '.join(sorted(_TASKS))}"
    assert "ant, halfcheetah, hopper" in str(err.value)


def test_point_reward_is_minus_the_distance_to_the_origin():
    s2 = np.array([[3.0, 4.0], [0.0, -2.0], [0.0, 0.0]])
    np.testing.assert_allclose(toy.point_reward(None, None, s2), [-5.0, -2.0, 0.0])


def test_point_reset_draws_uniformly_in_the_unit_square():
    got = toy._point_reset(500, np.random.default_rng(6))
    np.testing.assert_array_equal(got, np.random.default_rng(6).uniform(-1.0, 1.0, size=(500, 2)))
    assert got.min() < -0.95 and got.max() > 0.95


def test_point_env_by_hand():
    """s' = clip(s + 0.1 clip(a, -1, 1), -2, 2), reward -|s'|, truncated after exactly 40 steps."""
    env = toy.PointEnv()
    first, _ = env.reset()  # no seed: the generator seeded 0 at construction
    np.testing.assert_array_equal(
        first, np.random.default_rng(0).uniform(-1, 1, size=(1, 2))[0].astype(np.float32)
    )
    obs, info = env.reset(seed=3)
    start = np.random.default_rng(3).uniform(-1, 1, size=(1, 2))[0]
    assert obs.dtype == np.float32 and info == {}
    np.testing.assert_array_equal(obs, start.astype(np.float32))
    nxt, r, term, trunc, _ = env.step(np.array([5.0, -5.0], dtype=np.float32))
    expected = start + 0.1 * np.array([1.0, -1.0])
    assert nxt.dtype == np.float32
    np.testing.assert_allclose(nxt, expected, rtol=1e-6)
    assert r == pytest.approx(-np.linalg.norm(expected), rel=1e-12) and not term and not trunc
    env._state = np.array([1.95, -1.95])
    nxt, *_ = env.step(np.array([1.0, -1.0]))
    assert nxt.tolist() == [2.0, -2.0]  # the arena's walls
    env.reset(seed=0)
    truncs = [env.step(np.zeros(2))[3] for _ in range(41)]
    assert truncs[:39] == [False] * 39 and truncs[39] is True


def test_point_env_starts_at_the_origin_before_any_reset():
    env = toy.PointEnv()
    nxt, r, *_ = env.step(np.array([1.0, 1.0]))
    np.testing.assert_allclose(nxt, [0.1, 0.1], rtol=1e-6)
    assert r == pytest.approx(-np.sqrt(0.02))


def test_point_env_reset_without_a_seed_continues_the_same_generator():
    env = toy.PointEnv()
    env.reset(seed=4)
    second, _ = env.reset()
    draws = np.random.default_rng(4).uniform(-1, 1, size=(2, 2))  # one row per reset
    np.testing.assert_array_equal(second, draws[1].astype(np.float32))
