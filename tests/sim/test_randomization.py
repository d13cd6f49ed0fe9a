"""Domain randomization: validated config, seeded draws, and it changes what it claims only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sim
from sim.errors import SimError
from sim.randomization import DEFAULT_RANDOMIZATION, Randomization, load_randomization
from tests.sim.conftest import BACKENDS

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "sim"
PHYSICS_FIELDS = ["link_mass", "friction", "joint_damping", "actuator_gain"]


def test_example_configs_load_and_the_default_matches_the_code():
    files = sorted(CONFIGS.glob("randomization-*.yaml"))
    assert len(files) >= 2
    for f in files:
        load_randomization(f)
    assert load_randomization(CONFIGS / "randomization-default.yaml") == DEFAULT_RANDOMIZATION
    assert load_randomization(CONFIGS / "randomization-none.yaml").is_nominal


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"link_mass": [1.2, 0.8]}, "link_mass", "is empty"),
        ({"friction": [-0.5, 1.0]}, "friction", "negative"),
        ({"actuator_gain": [0.0, 1.0]}, "actuator_gain", "negative or zero"),
        ({"joint_damping": [-1.0, 2.0]}, "joint_damping", "negative"),
        ({"action_delay": [3, 1]}, "action_delay", "is empty"),
        ({"action_delay": [-1, 1]}, "action_delay", "negative"),
        ({"action_delay": [0, 10**9]}, "action_delay", "longer than any episode"),
        ({"obs_noise_std": -0.1}, "obs_noise_std", "greater than or equal to 0"),
        ({"obs_noise_std": float("inf")}, "obs_noise_std", "finite number"),
        ({"control_period_jitter": 0.8}, "control_period_jitter", "less than 0.5"),
        ({"link_masses": [0.9, 1.1]}, "link_masses", "unknown field"),
    ],
)
def test_bad_ranges_are_one_line_errors_naming_the_field(data, field, words):
    with pytest.raises(SimError) as err:
        load_randomization(data)
    msg = str(err.value)
    assert "\n" not in msg and field in msg and words in msg


def test_bad_yaml_file_names_the_file(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("friction: [1.5, 0.5]\n")
    with pytest.raises(SimError, match=r"r\.yaml: friction: .*is empty"):
        sim.make("halfcheetah", randomization=bad)
    with pytest.raises(SimError, match="not found"):
        load_randomization(tmp_path / "missing.yaml")


def _params(env):
    return env.backend.physics_params()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("field", PHYSICS_FIELDS)
def test_each_physics_factor_changes_only_its_parameters(backend, field):
    low, high = 0.5, 0.7
    nominal = sim.make("walker2d", backend=backend)
    rand = sim.make("walker2d", backend=backend, randomization={field: [low, high]})
    obs_n, _ = nominal.reset(seed=4)
    obs_r, _ = rand.reset(seed=4)
    np.testing.assert_array_equal(obs_n, obs_r)  # the initial state is not randomized
    p_n, p_r = _params(nominal), _params(rand)
    for name in PHYSICS_FIELDS:
        for key, value in p_n[name].items():
            if name == field and value > 0 and key != "world":
                ratio = p_r[name][key] / value
                assert low - 1e-9 <= ratio <= high + 1e-9, (name, key, ratio)
            elif name != field:
                assert p_r[name][key] == pytest.approx(value, rel=1e-12), (name, key)
    ratios = [p_r[field][k] / v for k, v in p_n[field].items() if v > 0 and k != "world"]
    if field != "friction" and len(ratios) > 1:
        assert np.ptp(ratios) > 0  # drawn per link / joint / actuator
    first = dict(p_r[field])
    rand.reset(seed=5)
    assert _params(rand)[field] != first  # and redrawn every episode
    rand.reset()  # a reset without a seed keeps the stream going (no error, still in range)
    nominal.close()
    rand.close()


def test_randomization_is_seeded():
    cfg = Randomization(link_mass=(0.5, 1.5), friction=(0.5, 1.5), action_delay=(0, 3))
    envs = [sim.make("ant", randomization=cfg) for _ in range(3)]
    infos = [envs[0].reset(seed=7)[1], envs[1].reset(seed=7)[1], envs[2].reset(seed=8)[1]]
    params = [_params(e) for e in envs]
    assert params[0] == params[1] and infos[0] == infos[1]
    assert params[0]["link_mass"] != params[2]["link_mass"]
    for e in envs:
        e.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_observation_noise_touches_only_what_the_policy_sees(backend):
    nominal = sim.make("hopper", backend=backend)
    noisy = sim.make("hopper", backend=backend, randomization={"obs_noise_std": 0.05})
    nominal.reset(seed=1)
    obs, _ = noisy.reset(seed=1)
    diffs = [obs - noisy.observation()]
    for t in range(20):
        a = 0.3 * np.sin(np.arange(3) + t)
        o_n, r_n, *_ = nominal.step(a)
        o_r, r_r, *_ = noisy.step(a)
        np.testing.assert_array_equal(noisy.observation(), o_n)  # the physics is untouched
        assert r_r == r_n  # rewards are scored on the true state
        diffs.append(o_r - o_n)
    std = np.std(np.concatenate(diffs))
    assert 0.04 < std < 0.06


def test_action_delay_sends_each_command_k_steps_late():
    env = sim.make("halfcheetah", randomization={"action_delay": [2, 2]})
    _, info = env.reset(seed=0)
    assert info["action_delay"] == 2
    actions = [np.full(6, v) for v in (0.1, 0.2, 0.3, 0.4)]
    sent = [env.step(a)[4]["command"] for a in actions]
    np.testing.assert_array_equal(sent[0], 0.0)
    np.testing.assert_array_equal(sent[1], 0.0)
    np.testing.assert_array_equal(sent[2], actions[0])
    np.testing.assert_array_equal(sent[3], actions[1])
    env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_control_period_jitter_changes_the_duration_not_the_robot(backend):
    nominal = sim.make("halfcheetah", backend=backend)
    jitter = sim.make("halfcheetah", backend=backend, randomization={"control_period_jitter": 0.3})
    nominal.reset(seed=2)
    jitter.reset(seed=2)
    a = np.full(6, 0.5)
    for _ in range(5):
        o_n, *_ = nominal.step(a)
        o_j, *_ = jitter.step(a)
    assert not np.allclose(o_n, o_j)
    assert _params(nominal) == _params(jitter)
    b = jitter.backend  # the engine's own timestep is restored after each jittered step
    if backend == "mujoco":
        assert b.model.opt.timestep == nominal.backend.model.opt.timestep
    else:
        assert b.pb.getPhysicsEngineParameters(physicsClientId=b.client)["fixedTimeStep"] == b.timestep
    nominal.close()
    jitter.close()
