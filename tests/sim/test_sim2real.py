"""`bremen sim2real` on a tiny frozen policy: the table, the transfer ratio, the JSON and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bremen_robot.cli import main
from bremen_robot.policy.artifact import export_policy
from bremen_robot.policy.gaussian import GaussianPolicy
from bremen_robot.tasks import get_task

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def tiny_artifact(path: Path, robot: str, task: str | None = None) -> Path:
    t = get_task(task or robot)
    torch.manual_seed(0)
    policy = GaussianPolicy(t.obs_dim, t.action_low, t.action_high, hidden=(8,))
    export_policy(
        policy,
        path,
        robot=robot,
        task=t.name,
        observation_names=list(t.obs_names),
        action_names=list(t.action_names),
        control_rate_hz=1.0 / t.dt,
    )
    return path


def test_sim2real_prints_the_table_and_writes_json_and_png(tmp_path, capsys):
    art = tiny_artifact(tmp_path / "pol", "hopper")
    out = tmp_path / "report"
    code = main(["sim2real", str(art), "--episodes", "2", "--out", str(out), "--seed", "3"])
    text = capsys.readouterr().out
    assert code == 0
    for words in (
        "mujoco (training)",
        "pybullet",
        "mujoco + randomization",
        "return (mean ± std)",
        "transfer ratio",
    ):
        assert words in text
    report = json.loads((out / "sim2real.json").read_text())
    conds = {c["label"]: c for c in report["conditions"]}
    assert set(conds) == {"mujoco (training)", "pybullet", "mujoco + randomization"}
    assert all(len(c["returns"]) == 2 for c in conds.values())
    train, other = conds["mujoco (training)"]["return_mean"], conds["pybullet"]["return_mean"]
    assert report["transfer_ratio"] == pytest.approx(other / train)
    assert f"{report['transfer_ratio']:.3f}" in text
    assert conds["mujoco + randomization"]["randomized"] and not conds["pybullet"]["randomized"]
    png = (out / "sim2real.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_sim2real_reports_success_and_shield_interventions(tmp_path, capsys):
    art = tiny_artifact(tmp_path / "pol", "panda", "panda_reach")
    code = main(
        [
            "sim2real",
            str(art),
            "--episodes",
            "2",
            "--out",
            str(tmp_path / "r1"),
            "--train-backend",
            "pybullet",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "success" in text and "pybullet (training)" in text
    # the untrained policy barely moves (|a| ~ 0.01 rad/s) and seeds 0 and 1 start the gripper
    # 27 and 38 cm from the goal: no episode can end within 5 cm
    conds = json.loads((tmp_path / "r1" / "sim2real.json").read_text())["conditions"]
    assert [c["success_rate"] for c in conds] == [0.0] * len(conds)

    art = tiny_artifact(tmp_path / "pol2", "halfcheetah")
    shield = CONFIGS / "safety" / "halfcheetah.yaml"
    if not shield.is_file():
        pytest.skip("configs/safety/halfcheetah.yaml is not in this checkout")
    code = main(
        ["sim2real", str(art), "--episodes", "1", "--shield", str(shield), "--out", str(tmp_path / "r2")]
    )
    text = capsys.readouterr().out
    assert code == 0 and "interventions/ep" in text
    report = json.loads((tmp_path / "r2" / "sim2real.json").read_text())
    rows = {line.split("  ")[0]: line for line in text.splitlines()}
    for c in report["conditions"]:  # a count per episode (one episode: a whole number), as printed
        n = c["interventions_per_episode"]
        assert n >= 0 and n == int(n) and rows[c["label"]].rstrip().endswith(f"{n:.1f}")


def test_sim2real_counts_interventions_the_shield_makes(tmp_path):
    """A policy that always asks for 2x the box is clipped on every step of every condition."""
    from sim.randomization import Randomization
    from sim.sim2real import run_sim2real

    safety = pytest.importorskip("safety")
    shield_path = CONFIGS / "safety" / "halfcheetah.yaml"
    if not shield_path.is_file():
        pytest.skip("configs/safety/halfcheetah.yaml is not in this checkout")
    from bremen_robot.cli.sim2real_cmd import _shield_filter_factory

    task = get_task("halfcheetah")
    factory = _shield_filter_factory(shield_path, task.action_names, task.dt)
    report = run_sim2real(
        lambda obs: np.full(6, 2.0), "halfcheetah", None, 1, "mujoco", Randomization(), make_filter=factory
    )
    assert safety is not None
    for c in report.conditions:
        assert c.interventions is not None and c.interventions[0] >= task.max_episode_steps


def test_shield_with_another_control_period_is_refused(tmp_path, capsys):
    shipped = CONFIGS / "safety" / "panda.yaml"
    if not shipped.is_file():
        pytest.skip("configs/safety/panda.yaml is not in this checkout")
    shield = tmp_path / "panda-500hz.yaml"  # limits written for another controller rate
    shield.write_text(shipped.read_text().replace("control_period: 0.05", "control_period: 0.002"))
    assert shield.read_text() != shipped.read_text()
    art = tiny_artifact(tmp_path / "pol", "panda", "panda_reach")
    code = main(["sim2real", str(art), "--shield", str(shield), "--out", str(tmp_path / "r")])
    assert code == 2 and "control_period" in capsys.readouterr().err


def test_shield_with_an_ood_gate_is_refused(tmp_path, capsys):
    """sim2real's shield gets no ood_score: its report would have counted without the gate."""
    shipped = CONFIGS / "safety" / "panda.yaml"
    if not shipped.is_file():
        pytest.skip("configs/safety/panda.yaml is not in this checkout")
    shield = tmp_path / "panda-ood.yaml"
    shield.write_text(shipped.read_text() + "\nood: {threshold: 2.0, fallback: safe}\n")
    art = tiny_artifact(tmp_path / "pol", "panda", "panda_reach")
    code = main(["sim2real", str(art), "--shield", str(shield), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {shield}: ood: policy_runner, reset_node and the")
    assert not (tmp_path / "r").exists()


def _reach_policy(first_episode_toward: bool, second_episode_toward: bool):
    """Resolved-rate control to the goal (pseudo-inverse of a finite-difference Jacobian of the
    kinematics), or the same command negated to drive away; episodes last 100 steps."""
    from bremen_robot.tasks.reach import panda_ee_position

    calls = [0]

    def policy(obs):
        q, goal, ee = obs[:7], obs[14:17], obs[17:20]
        jac = np.zeros((3, 7))
        for i in range(7):
            d = np.zeros(7)
            d[i] = 1e-5
            jac[:, i] = (panda_ee_position(q + d) - panda_ee_position(q - d)) / 2e-5
        toward = first_episode_toward if calls[0] < 100 else second_episode_toward
        calls[0] += 1
        return np.clip(np.linalg.pinv(jac) @ (goal - ee) * (4.0 if toward else -4.0), -1, 1)

    return policy


def test_success_is_reported_per_episode_for_a_reaching_and_a_fleeing_episode():
    """Episode 1 drives the gripper onto the goal (a success), episode 2 away from it (starts
    38 cm off, ends farther): the result must say [True, False] and a rate of 0.5."""
    from sim.sim2real import evaluate

    res = evaluate(_reach_policy(True, False), "panda", "panda_reach", "mujoco", 2, seed=0)
    assert res.successes == [True, False]
    assert res.success_rate == 0.5 and res.summary()["success_rate"] == 0.5
    assert res.lengths == [100, 100]
    flipped = evaluate(_reach_policy(False, True), "panda", "panda_reach", "mujoco", 2, seed=0)
    assert flipped.successes == [False, True]


def test_a_nominal_randomization_file_gives_a_ratio_of_one_not_a_crash():
    """``--randomization configs/sim/randomization-none.yaml`` runs the third condition with
    nominal physics; the report must still find it (ratio exactly 1: the same episodes)."""
    from sim.randomization import load_randomization
    from sim.sim2real import run_sim2real

    nominal = load_randomization(CONFIGS / "sim" / "randomization-none.yaml")
    report = run_sim2real(lambda obs: np.zeros(3), "hopper", None, 1, "mujoco", nominal)
    assert report.randomized_ratio == 1.0
    assert "randomized ratio (mujoco+randomization / mujoco): 1.000" in report.table()
    assert report.to_dict()["randomized_ratio"] == 1.0


def test_physics_that_blow_up_in_mujoco_score_nan_not_a_reset_episode():
    """At step 3 the state is given absurd velocities (1e12): mj_step resets it to the initial
    pose by itself and the episode would run on with finite, meaningless rewards. The blown-up
    step must end the episode with a NaN return (the twin's veto for broken physics)."""
    from sim.sim2real import evaluate

    def make_filter():
        def blow_up(env, action, now):
            if round(now / env.task.dt) == 3:
                qpos, qvel = env.backend.get_state()
                env.backend.set_state(qpos, np.full_like(qvel, 1e12))
            return action, 0

        return blow_up

    res = evaluate(lambda obs: np.zeros(6), "halfcheetah", None, "mujoco", 1, make_filter=make_filter)
    assert res.lengths == [4]
    assert np.isnan(res.returns[0]) and np.isnan(res.mean)
    calm = evaluate(lambda obs: np.zeros(6), "halfcheetah", None, "mujoco", 1)
    assert calm.lengths == [1000] and np.isfinite(calm.mean)  # no false alarm


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_a_policy_that_outputs_nan_scores_nan_on_both_engines(backend):
    """Before, MuJoCo zeroed a NaN control and ran on with sane rewards while PyBullet
    integrated it into NaN states: the same broken policy scored differently per engine."""
    from sim.sim2real import evaluate

    def late_nan(obs):
        late_nan.calls += 1
        return np.full(6, np.nan) if late_nan.calls == 5 else np.zeros(6)

    late_nan.calls = 0
    res = evaluate(late_nan, "halfcheetah", None, backend, 1)
    assert res.lengths == [5]  # the fifth action is the broken one
    assert np.isnan(res.returns[0]) and np.isnan(res.mean)
