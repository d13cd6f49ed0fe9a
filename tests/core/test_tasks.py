import numpy as np
import pytest
import torch

from bremen_robot.errors import TaskError
from bremen_robot.tasks import get_task, task_names


def _states(task, rng, n=64):
    return (
        rng.normal(size=(n, task.obs_dim)),
        rng.uniform(-1, 1, size=(n, task.action_dim)),
        rng.normal(size=(n, task.obs_dim)),
    )


@pytest.mark.parametrize("name", ["halfcheetah", "hopper", "walker2d", "ant", "point"])
def test_numpy_and_torch_agree(name):
    task = get_task(name)
    s, a, s2 = _states(task, np.random.default_rng(1))
    s2[::3, 0] = 1.0  # make some Hopper/Walker states healthy so both branches occur
    r_np, d_np = task.reward(s, a, s2), task.terminated(s, a, s2)
    ts, ta, ts2 = (torch.as_tensor(x) for x in (s, a, s2))
    r_t, d_t = task.reward(ts, ta, ts2), task.terminated(ts, ta, ts2)
    assert r_np.shape == (64,) and d_np.shape == (64,)
    np.testing.assert_allclose(r_np, r_t.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(d_np, d_t.numpy())


def test_halfcheetah_reward_by_hand():
    task = get_task("halfcheetah")
    s2 = np.zeros((1, 17))
    s2[0, 8] = 2.0  # qvel.rootx
    a = np.full((1, 6), 0.5)
    assert task.obs_names[8] == "qvel.rootx"
    assert task.reward(np.zeros((1, 17)), a, s2)[0] == pytest.approx(2.0 - 0.1 * 6 * 0.25)
    assert not task.terminated(np.zeros((1, 17)), a, s2)[0]


def test_hopper_termination_by_hand():
    task = get_task("hopper")
    healthy = np.zeros(11)
    healthy[0] = 1.2
    low = healthy.copy()
    low[0] = 0.6  # too low
    tilted = healthy.copy()
    tilted[1] = 0.3  # |angle| >= 0.2
    wild = healthy.copy()
    wild[7] = 150.0  # |s[1:]| >= 100
    s2 = np.stack([healthy, low, tilted, wild])
    a = np.zeros((4, 3))
    np.testing.assert_array_equal(task.terminated(s2, a, s2), [False, True, True, True])
    s2[0, 5] = 1.5
    assert task.reward(s2, a, s2)[0] == pytest.approx(1.5 + 1.0)


def test_walker_termination_and_ant_reward_by_hand():
    w = get_task("walker2d")
    s2 = np.zeros((3, 17))
    s2[:, 0] = [1.2, 0.7, 2.1]
    np.testing.assert_array_equal(w.terminated(s2, np.zeros((3, 6)), s2), [False, True, True])
    ant = get_task("ant")
    s2 = np.zeros((1, 27))
    s2[0, 0], s2[0, 13] = 0.67, 1.0
    a = np.ones((1, 8))
    assert ant.reward(s2, a, s2)[0] == pytest.approx(1.0 - 0.8 - 3 * 0.01 + 1.0)


@pytest.mark.parametrize(
    ("name", "forward", "ctrl_cost", "alive"),
    [
        ("halfcheetah", "qvel.rootx", 0.1, 0.0),
        ("hopper", "qvel.rootx", 1e-3, 1.0),
        ("walker2d", "qvel.rootx", 1e-3, 1.0),
        ("ant", "qvel.root_vx", 0.1, 1.0),
    ],
)
def test_reward_reads_the_forward_velocity_named_in_the_layout(name, forward, ctrl_cost, alive):
    """Each observation entry is set to 3.0 in turn: the reward may move only for the forward
    velocity (by +3, located by name, not by index) and, for Ant, the torso height term."""
    task = get_task(name)
    a = np.full((1, task.action_dim), 0.5)
    base = np.zeros((1, task.obs_dim))
    if name == "ant":
        base[0, 0] = 0.57  # the height penalty's optimum: -3 (z - 0.57)^2 = 0
    r0 = float(task.reward(base, a, base)[0])
    assert r0 == pytest.approx(alive - ctrl_cost * 0.25 * task.action_dim)
    for i, obs_name in enumerate(task.obs_names):
        s2 = base.copy()
        s2[0, i] += 3.0
        gain = float(task.reward(base, a, s2)[0]) - r0
        if obs_name == forward:
            assert gain == pytest.approx(3.0), obs_name
        elif name == "ant" and i == 0:
            assert gain == pytest.approx(-3.0 * 9.0), obs_name
        else:
            assert gain == 0.0, obs_name


def test_unknown_task_lists_valid_ones():
    with pytest.raises(TaskError, match="valid tasks: .*halfcheetah"):
        get_task("cheeta")
    assert "hopper" in task_names()


@pytest.mark.parametrize("name", ["halfcheetah", "hopper", "walker2d", "ant"])
def test_layout_and_reset_match_gymnasium(name):
    gym = pytest.importorskip("gymnasium", reason="gymnasium (sim extra) not installed")
    pytest.importorskip("mujoco", reason="mujoco (sim extra) not installed")
    task = get_task(name)
    env = gym.make(task.gym_id, **task.gym_kwargs)
    obs = np.stack([env.reset(seed=s)[0] for s in range(200)])
    ours = task.sample_reset(2000, np.random.default_rng(0))
    assert obs.shape[1] == task.obs_dim
    np.testing.assert_allclose(obs.mean(0), ours.mean(0), atol=0.03)
    np.testing.assert_allclose(obs.std(0), ours.std(0), atol=0.03)
    # reward of a real transition matches the task function up to integration error
    o = env.reset(seed=0)[0]
    a = env.action_space.sample() * 0.5
    o2, r, *_ = env.step(a)
    if name != "ant":  # BREMEN's Ant reward is not Gymnasium's
        assert task.reward(o[None], a[None], o2[None])[0] == pytest.approx(r, abs=0.3)
    env.close()
