"""Bad input: unknown names list the valid ones; missing or unloadable assets; one line, exit 2."""

from __future__ import annotations

import pytest

import sim
from bremen_robot.cli import main
from sim.errors import SimError


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(
        SimError, match="unknown robot 'cheetah'; valid robots: ant, halfcheetah, hopper, panda, walker2d"
    ):
        sim.make("cheetah")
    with pytest.raises(SimError, match="unknown backend 'bullet'; valid backends: mujoco, pybullet"):
        sim.make("hopper", backend="bullet")
    with pytest.raises(SimError, match="unknown task 'run'; valid tasks: .*halfcheetah"):
        sim.make("hopper", task="run")
    with pytest.raises(SimError, match="does not fit robot 'hopper'; valid tasks: hopper"):
        sim.make("hopper", task="walker2d")


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_missing_asset_file(backend, tmp_path):
    with pytest.raises(SimError, match="not found") as err:
        sim.make("halfcheetah", backend=backend, asset=tmp_path / "nope.xml")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_description_the_engine_cannot_load(backend, tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text('<mujoco><worldbody><body name="a"><joint type="hinge"/><geom type="sphere" size="x"/>')
    with pytest.raises(SimError, match="cannot load") as err:
        sim.make("halfcheetah", backend=backend, asset=broken)
    assert "\n" not in str(err.value)


def test_pybullet_refuses_geoms_it_cannot_translate(tmp_path):
    mesh_robot = tmp_path / "ellipsoid.xml"
    mesh_robot.write_text(
        '<mujoco><worldbody><geom type="plane" size="5 5 .1"/><body name="torso" pos="0 0 1">'
        '<joint name="rootx" type="slide" axis="1 0 0"/><geom type="ellipsoid" size=".1 .2 .3"/>'
        '</body></worldbody><actuator><motor joint="rootx"/></actuator></mujoco>'
    )
    with pytest.raises(SimError, match="ellipsoid.*cannot translate"):
        sim.create_backend("halfcheetah", "pybullet", asset=mesh_robot)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    from tests.sim.test_sim2real import tiny_artifact

    art = tiny_artifact(tmp_path / "pol", "halfcheetah")
    bad = tmp_path / "bad.yaml"
    bad.write_text("link_mass: [2.0, 1.0]\n")
    cases = [
        (["--robot", "cheetah"], "valid robots"),
        (["--train-backend", "bullet"], "valid backends"),
        (["--task", "hopper"], "does not fit robot 'halfcheetah'"),
        (["--randomization", str(bad)], "link_mass range [2.0, 1.0] is empty"),
        (["--randomization", str(tmp_path / "none.yaml")], "not found"),
        (["--episodes", "0"], "--episodes must be at least 1"),
    ]
    for extra, words in cases:
        code = main(["sim2real", str(art), "--out", str(tmp_path / "out"), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2, (extra, err)
        assert err.count("\n") == 0 and words in err, (extra, err)


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_an_action_of_the_wrong_length_is_refused_not_broadcast(backend):
    """A 1-entry action must not be spread over all six joints (clipping against the 6-entry
    bounds broadcasts it, so the length was checked too late)."""
    env = sim.make("halfcheetah", backend=backend)
    env.reset(seed=0)
    try:
        for bad in ([0.5], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]):
            with pytest.raises(SimError, match=f"action has {len(bad)} entries; task 'halfcheetah' takes 6"):
                env.step(bad)
    finally:
        env.close()


_MOTOR = '<motor ctrllimited="true" ctrlrange="-1.0 1.0" gear="200.0" joint="thigh_joint"/>'


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (_MOTOR, '<position ctrlrange="-1 1" kp="200" joint="thigh_joint"/>', "actuator.*not a plain motor"),
        (_MOTOR, _MOTOR.replace("/>", ' forcerange="-50 50"/>'), "actuator.*force range"),
        ('name="leg_joint"', 'name="leg_joint" frictionloss="5"', "joint 'leg_joint' has frictionloss"),
        (
            "</actuator>",
            '</actuator><equality><joint joint1="leg_joint" joint2="foot_joint"/></equality>',
            "1 equality",
        ),
        (
            "</actuator>",
            '</actuator><tendon><fixed stiffness="10"><joint joint="leg_joint" coef="1"/></fixed></tendon>',
            "1 tendon",
        ),
    ],
)
def test_pybullet_refuses_mjcf_physics_it_would_drop(tmp_path, old, new, words):
    """A custom Hopper whose servo, force limit, joint friction or equality constraint the URDF
    translation has no place for: PyBullet would run a different robot, so the twin is refused
    (MuJoCo loads the same file)."""
    hopper = sim.get_robot("hopper").asset_path().read_text()
    assert old in hopper
    custom = tmp_path / "hopper.xml"
    custom.write_text(hopper.replace(old, new, 1))
    sim.create_backend("hopper", "mujoco", asset=custom).close()
    with pytest.raises(SimError, match=words) as err:
        sim.create_backend("hopper", "pybullet", asset=custom)
    msg = str(err.value)
    assert "\n" not in msg and "use the mujoco backend (bremen collect --sim mujoco" in msg


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_action_is_refused_by_both_engines(backend, value):
    import numpy as np

    env = sim.make("hopper", backend=backend)
    try:
        env.reset(seed=0)
        action = np.array([0.1, value, 0.0])
        with pytest.raises(SimError) as err:
            env.step(action)
        assert str(err.value) == (
            f"action entry 1 is {value}; actions must be finite numbers "
            "(a policy that outputs NaN or inf is broken: check its training report)"
        )
        env.step(np.zeros(3))  # the env is still usable
    finally:
        env.close()
