"""Campaign resume/approval logic with a direct (non-ROS) collector on the toy task.

The real ROS 2 graph runs in tests/campaign/test_campaign_ros.py; here collection steps the
toy env directly so the bookkeeping can be tested in seconds.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.campaign.runner import Campaign, CollectRequest
from bremen_robot.errors import BremenError, ConfigError


def write_campaign(tmp_path, simulated=True, deployments=2, warm_start=True):
    robot = tmp_path / "robot.yaml"
    robot.write_text(
        yaml.safe_dump(
            {
                "name": "point",
                "simulated": simulated,
                "task": "point",
                "joints": ["vel.x", "vel.y"],
                "control_rate_hz": 10,
            }
        )
    )
    train = tmp_path / "train.yaml"
    train.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "task": "point",
                "threads": 1,
                "ensemble": {
                    "members": 2,
                    "hidden": [32],
                    "max_epochs": 5,
                    "batch_size": 128,
                    "warm_start": warm_start,
                },
                "bc": {"hidden": [16], "steps": 100},
                "trpo": {"iterations": 3, "steps_per_iteration": 400, "horizon": 40, "init_log_std": -1.0},
            }
        )
    )
    camp = tmp_path / "campaign.yaml"
    camp.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "robot": "robot.yaml",
                "collect": "robot.yaml",
                "train": str(train),
                "deployments": deployments,
                "steps_per_deployment": 200,
                "approval_poll_seconds": 0.1,
                "evaluation": {"episodes": 2, "env": "point"},
            }
        )
    )
    return camp


@pytest.mark.parametrize(
    "field, value, why",
    [
        ("train", "nope", r"train: unknown train preset 'nope'; presets: "),
        ("env", "sim:nobot/mujoco", r"evaluation\.env: .*nobot"),
        ("env", "sim:halfcheetah/gazebo", r"evaluation\.env: unknown simulator backend 'gazebo' in "),
        (
            "env",
            "HalfCheetah-v5",
            r"evaluation\.env: 'HalfCheetah-v5' is an env of task 'halfcheetah', not of",
        ),
    ],
)
def test_a_bad_train_preset_or_evaluation_env_is_named_when_the_config_loads(tmp_path, field, value, why):
    """Both were first used after deployment 1 collected and trained; the error named neither the
    file nor the field."""
    camp = write_campaign(tmp_path)
    data = yaml.safe_load(camp.read_text())
    if field == "train":
        data["train"] = value
    else:
        data["evaluation"]["env"] = value
    camp.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"campaign\.yaml: " + why):
        load_campaign_config(camp)


def test_a_robot_whose_joints_are_not_the_tasks_actions_in_order_is_refused_when_the_config_loads(tmp_path):
    """Until 2026-12-07 a campaign on it collected deployment 1 with its commands stored as another
    joint's actions, and was refused a trained policy only at deployment 2."""
    camp = write_campaign(tmp_path)
    robot = tmp_path / "robot.yaml"
    for joints, what in (
        (
            ["vel.y", "vel.x"],
            "are the actions of task 'point' in another order (the task's: ['vel.x', 'vel.y'])",
        ),
        (["x", "y"], "are not the actions of task 'point' (['vel.x', 'vel.y'])"),
    ):
        data = yaml.safe_load(robot.read_text())
        data["joints"] = joints
        robot.write_text(yaml.safe_dump(data))
        with pytest.raises(ConfigError) as info:
            load_campaign_config(camp)
        assert str(info.value) == (
            f"{camp}: robot config {robot}: joints {joints} {what}; policies act and datasets store "
            "commands in the task's order: list the joints so, and map them to your controller's "
            "order in its driver"
        )


@pytest.mark.parametrize("name", ["../up", "a/b", "with space", "", "-dash-first", "x" * 65])
def test_a_campaign_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, name):
    """Robot nodes keep a campaign's files in a folder of its name."""
    camp = write_campaign(tmp_path)
    data = yaml.safe_load(camp.read_text())
    data["name"] = name
    camp.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"name: .* is not a plain name; use letters, digits"):
        load_campaign_config(camp)
    data["name"] = "walker2d-cpu.v2_b"
    camp.write_text(yaml.safe_dump(data))
    assert load_campaign_config(camp).name == "walker2d-cpu.v2_b"


class DirectCollector:
    """Steps the toy env and writes the deployment's data.npz directly (no bag)."""

    def __init__(self, fail_at: int | None = None):
        self.calls: list[int] = []
        self.fail_at = fail_at

    def __call__(self, req: CollectRequest):
        from bremen_robot.data.real_rollout import make_env, noisy_policy, rollout, uniform_policy
        from bremen_robot.registry import Registry

        self.calls.append(req.deployment)
        assert req.robot_config.is_absolute() and req.workspace.is_absolute()
        if req.deployment == self.fail_at:
            req.out_bag.mkdir(parents=True)
            raise KeyboardInterrupt
        env, task = make_env("point")
        rng = np.random.default_rng(req.seed)
        if req.policy_id == "random":
            act = uniform_policy(task, rng)
        else:
            with Registry.open(req.workspace) as reg:
                from bremen_robot.policy.artifact import load_artifact

                act = noisy_policy(
                    load_artifact(reg.get(req.policy_id).artifact_dir).act, task, req.sigma, rng
                )
        data = rollout(env, task, act, steps=req.steps, seed=req.seed, deployment_id=req.deployment)
        req.out_bag.mkdir(parents=True)
        data.save(req.out_bag.parent / "data.npz")
        return {"steps": len(data), "episodes": len(data.episode_keys()), "interventions": 3}


def test_campaign_runs_and_writes_summary(tmp_path, monkeypatch):
    import bremen_robot.campaign.runner as runner

    # the point task defines no success; give every evaluation a success rate of its own so the
    # summary must carry each one through (0.25 for the random policy, then 0.5, 0.75, ...)
    rates = iter([0.25, 0.5, 0.75, 1.0])
    real_evaluate = runner.evaluate_policy

    def evaluate_with_success(*args, **kwargs):
        return {**real_evaluate(*args, **kwargs), "success_rate": next(rates)}

    monkeypatch.setattr(runner, "evaluate_policy", evaluate_with_success)
    cfg = load_campaign_config(write_campaign(tmp_path))
    collector = DirectCollector()
    monkeypatch.chdir(tmp_path)  # a relative workspace, as `make demo` passes it
    summary = Campaign(cfg, Path("ws"), auto_approve=True, collect_fn=collector, log=lambda m: None).run()
    assert collector.calls == [1, 2]
    assert summary["deployment_count"] == 2
    on_disk = json.loads((tmp_path / "ws" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    rows = on_disk["deployments"]
    assert [r["deployment"] for r in rows] == [1, 2]
    assert [r["samples"] for r in rows] == [200, 400]
    assert [r["interventions"] for r in rows] == [3, 3]  # what the collector reported, per deployment
    ws = tmp_path / "ws"
    evals = [json.loads((ws / name).read_text()) for name in ("d1/eval_random.json", "d1/eval.json")]
    final_eval = json.loads((ws / "d2" / "eval.json").read_text())
    # evaluation order: random (0.25), candidate 1 (0.5), candidate 2 (0.75); deployment 2 reuses
    # candidate 1's stored evaluation
    assert [e["success_rate"] for e in (*evals, final_eval)] == [0.25, 0.5, 0.75]
    assert [r["success_rate"] for r in rows] == [0.25, 0.5]
    assert [r["eval_return_mean"] for r in rows] == [e["mean"] for e in evals]
    assert [r["eval_return_std"] for r in rows] == [e["std"] for e in evals]
    assert rows[0]["policy_id"] == "random"
    final = on_disk["final_candidate"]
    assert rows[1]["policy_id"] != final["policy_id"] and final["policy_id"] != "random"
    assert final["success_rate"] == 0.75 and final["eval_return_mean"] == final_eval["mean"]
    assert final["trained_on_samples"] == 400 and final["state"] == "candidate"
    assert (tmp_path / "ws" / "summary.png").stat().st_size > 1000


@pytest.mark.parametrize("warm_start", [True, False])
def test_ensemble_warm_start_follows_the_config(tmp_path, monkeypatch, warm_start):
    import bremen_robot.trainer as trainer

    seen: list[Path | None] = []
    real_train = trainer.train

    def recording_train(*args, **kwargs):
        seen.append(kwargs.get("init_ensemble"))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(trainer, "train", recording_train)
    cfg = load_campaign_config(write_campaign(tmp_path, warm_start=warm_start))
    Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None).run()
    previous = tmp_path / "ws" / "d1" / "train" / "ensemble.pt"
    assert seen == [None, previous if warm_start else None]


def test_interrupted_campaign_resumes_without_redoing_work(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path))
    first = DirectCollector(fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=first, log=lambda m: None).run()
    from bremen_robot.registry import Registry

    with Registry.open(tmp_path / "ws") as reg:  # deployment 2 collected nothing: not counted
        assert reg.deployment_count() == 1
        assert [r.state for r in reg.policies() if not r.is_random] == ["approved"]
    trained = (tmp_path / "ws" / "d1" / "train" / "policy.pt").read_bytes()
    second = DirectCollector()
    summary = Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=second, log=lambda m: None).run()
    assert second.calls == [2]  # deployment 1 was not collected again
    assert (tmp_path / "ws" / "d1" / "train" / "policy.pt").read_bytes() == trained
    assert (tmp_path / "ws" / "d2" / "bag.incomplete-1").is_dir()  # the partial bag is kept
    assert summary["deployment_count"] == 2
    # a third run finds everything done and changes nothing
    third = DirectCollector()
    Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=third, log=lambda m: None).run()
    assert third.calls == []


def test_workspace_of_another_campaign_is_refused(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path))
    Campaign(
        cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None
    ).ws.claim(cfg.name, cfg.digest())
    other = cfg.model_copy(update={"steps_per_deployment": 300})
    with pytest.raises(BremenError, match="belongs to campaign 'tiny' with a different config"):
        Campaign(
            other, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None
        ).run()


def test_rewording_a_campaigns_description_keeps_its_workspace(tmp_path):
    """Descriptions and expected times (of the campaign and its training preset) and comments are
    words about a config: editing them must not orphan the runs made with it. A setting still does."""
    camp = write_campaign(tmp_path)
    cfg = load_campaign_config(camp)
    ws = Campaign(
        cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None
    ).ws
    ws.claim(cfg.name, cfg.digest())
    written = cfg.digest()
    for path in (camp, tmp_path / "train.yaml"):
        data = yaml.safe_load(path.read_text())
        data |= {"description": "measured on two cores", "expected_time": "about an hour"}
        path.write_text("# reworded\n" + yaml.safe_dump(data))
    reworded = load_campaign_config(camp)
    assert reworded.digest() == written
    current, *earlier = reworded.identities()
    ws.claim(reworded.name, current, legacy_digests=earlier)  # not refused
    train = yaml.safe_load((tmp_path / "train.yaml").read_text())
    train["bc"]["steps"] = 101
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train))
    assert load_campaign_config(camp).digest() != written


def test_a_workspace_made_before_prose_left_the_identity_still_resumes(tmp_path):
    camp = write_campaign(tmp_path)
    cfg = load_campaign_config(camp)
    (tmp_path / "ws").mkdir()
    old = {"name": "tiny", "config_digest": cfg.digest(version=2)}  # prose and file bytes included
    (tmp_path / "ws" / "campaign.json").write_text(json.dumps(old))
    assert cfg.digest(version=2) != cfg.digest()
    messages: list[str] = []
    Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=messages.append).run()
    assert json.loads((tmp_path / "ws" / "campaign.json").read_text()) == old  # left as it was
    assert (tmp_path / "ws" / "d2" / "eval.json").is_file()


def test_auto_approve_refused_for_real_hardware(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path, simulated=False))
    with pytest.raises(BremenError, match="simulators only"):
        Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector())


def _with_trusted_operator(tmp_path, monkeypatch):
    from bremen_robot.registry import init_operator

    monkeypatch.setenv("BREMEN_OPERATOR_DIR", str(tmp_path / "ops"))
    init_operator("alice")
    camp = write_campaign(tmp_path)
    robot = yaml.safe_load((tmp_path / "robot.yaml").read_text())
    robot["trusted_operator_keys"] = [str(tmp_path / "ops" / "alice.pub")]
    (tmp_path / "robot.yaml").write_text(yaml.safe_dump(robot))
    return load_campaign_config(camp)


def _operator_thread(tmp_path, messages, decision):
    """Acts like a person in another terminal: waits for the prompt, then decides."""
    from bremen_robot.registry import Registry

    def act():
        for _ in range(600):
            time.sleep(0.1)
            if any("waiting for approval" in m for m in messages):
                with Registry.open(tmp_path / "ws") as reg:
                    cand = next(r for r in reg.policies() if r.state == "candidate")
                    if decision == "approve":
                        reg.approve(cand.id, "alice")
                    else:
                        reg.reject(cand.id, "joint 3 oscillates", operator="alice")
                return

    t = threading.Thread(target=act)
    t.start()
    return t


def test_campaign_waits_for_an_operator_approval(tmp_path, monkeypatch):
    cfg = _with_trusted_operator(tmp_path, monkeypatch)
    messages: list[str] = []
    t = _operator_thread(tmp_path, messages, "approve")
    summary = Campaign(cfg, tmp_path / "ws", collect_fn=DirectCollector(), log=messages.append).run()
    t.join()
    assert summary["deployment_count"] == 2
    assert any("bremen approve" in m for m in messages)


def test_an_evaluation_of_another_policy_is_not_reused(tmp_path):
    """After a rejected candidate is retrained, its eval.json must not be taken for the new one."""
    cfg = load_campaign_config(write_campaign(tmp_path, deployments=1))
    camp = Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None)
    camp.run()
    path = tmp_path / "ws" / "d1" / "eval.json"
    stale = json.loads(path.read_text())
    stale.update(policy_sha256="0" * 64, mean=12345.0)
    path.write_text(json.dumps(stale))
    (tmp_path / "ws" / "d1" / "sim2real").mkdir()
    (tmp_path / "ws" / "d1" / "sim2real" / "sim2real.json").write_text('{"of": "the stale policy"}')
    fresh = camp._evaluate(path, tmp_path / "ws" / "d1" / "train", seed=7)
    from bremen_robot.policy.artifact import load_manifest

    assert fresh["policy_sha256"] == load_manifest(tmp_path / "ws" / "d1" / "train").policy_sha256
    assert fresh["mean"] != 12345.0 and fresh["mean"] == pytest.approx(np.mean(fresh["returns"]))
    assert len(fresh["returns"]) == 2  # evaluation.episodes
    assert json.loads((tmp_path / "ws" / "d1" / "eval.json.replaced-1").read_text())["mean"] == 12345.0
    kept = tmp_path / "ws" / "d1" / "sim2real.replaced-1" / "sim2real.json"
    assert json.loads(kept.read_text()) == {"of": "the stale policy"}  # its sim2real report goes with it


def test_a_sim2real_report_without_its_evaluation_is_kept_not_overwritten(tmp_path, monkeypatch):
    """An interrupt after an evaluation's sim2real report was written (or after a replaced
    evaluation was moved aside) left d1/sim2real without its eval.json; the next evaluation wrote
    its report over it."""
    cfg = load_campaign_config(write_campaign(tmp_path, deployments=1))
    camp = Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None)
    camp.run()
    d1 = tmp_path / "ws" / "d1"
    (d1 / "eval.json").unlink()
    (d1 / "sim2real").mkdir()
    (d1 / "sim2real" / "sim2real.json").write_text('{"of": "the interrupted evaluation"}')
    camp.cfg = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update={"sim2real": True})})

    def fake_sim2real(artifact: Path, out: Path) -> dict:
        (out / "sim2real").mkdir()
        (out / "sim2real" / "sim2real.json").write_text('{"of": "this evaluation"}')
        return {"of": "this evaluation"}

    monkeypatch.setattr(camp, "_sim2real", fake_sim2real)
    fresh = camp._evaluate(d1 / "eval.json", d1 / "train", seed=7)
    assert fresh["sim2real"] == {"of": "this evaluation"}
    assert json.loads((d1 / "sim2real" / "sim2real.json").read_text()) == {"of": "this evaluation"}
    kept = d1 / "sim2real.replaced-1" / "sim2real.json"
    assert json.loads(kept.read_text()) == {"of": "the interrupted evaluation"}


def test_editing_a_file_the_campaign_names_changes_its_identity(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path))
    before = cfg.digest()
    train = tmp_path / "train.yaml"
    train.write_text(train.read_text().replace("iterations: 3", "iterations: 4"))
    assert load_campaign_config(tmp_path / "campaign.yaml").digest() != before


class BagOnlyCollector(DirectCollector):
    """Leaves the data in the 'bag' (no data.npz), so the campaign must ingest it."""

    def __call__(self, req: CollectRequest):
        summary = super().__call__(req)
        (req.out_bag.parent / "data.npz").rename(req.out_bag / "as_if_logged.npz")
        return summary


def test_the_campaign_prints_every_ingest_warning(tmp_path, monkeypatch):
    import bremen_robot.campaign.runner as runner
    from bremen_robot.data.dataset import Dataset

    def ingest_with_a_lost_episode(bag: Path, deployment: int, task_name: str) -> Dataset:
        data = Dataset.load(bag / "as_if_logged.npz")
        warning = f"{bag}: episode(s) 7 gave no usable transition"
        data.meta["bags"] = [{"bag": str(bag), "warnings": [warning]}]
        return data

    monkeypatch.setattr(runner, "ingest_bag", ingest_with_a_lost_episode)
    cfg = load_campaign_config(write_campaign(tmp_path, deployments=1))
    lines: list[str] = []
    Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=BagOnlyCollector(), log=lines.append).run()
    bag = tmp_path / "ws" / "d1" / "bag"
    assert f"deployment 1: warning: {bag}: episode(s) 7 gave no usable transition" in lines


def _run_quietly(cfg, ws, collector=None, messages=None):
    log = messages.append if messages is not None else (lambda m: None)
    return Campaign(cfg, ws, auto_approve=True, collect_fn=collector or DirectCollector(), log=log).run()


def test_retiring_a_deployed_policy_does_not_stop_the_resume_of_its_campaign(tmp_path):
    """Deployment 2 happened (collected, counted); retiring its policy afterwards keeps it from
    being deployed again, but a resume must not stop on it, nor count anything anew."""
    from bremen_robot.registry import Registry

    cfg = load_campaign_config(write_campaign(tmp_path, deployments=2))
    first = _run_quietly(cfg, tmp_path / "ws")
    deployed = first["deployments"][1]["policy_id"]
    with Registry.open(tmp_path / "ws") as reg:
        reg.retire(deployed, operator="alice")
    messages: list[str] = []
    again = _run_quietly(cfg, tmp_path / "ws", messages=messages)
    assert again["deployment_count"] == first["deployment_count"] == 2
    assert f"deployment 2: policy {deployed} collected data (deployment count 2)" in messages


def test_each_deployment_says_once_that_it_collected_data_and_again_once_on_resume(tmp_path):
    """The line came twice per deployment (from the count at collection and a second, idempotent
    count); a resumed campaign must still say, once, what it found."""
    cfg = load_campaign_config(write_campaign(tmp_path, deployments=2))
    for run in ("first", "resume"):
        messages: list[str] = []
        summary = _run_quietly(cfg, tmp_path / "ws", messages=messages)
        deployed = summary["deployments"][1]["policy_id"]
        said = [m for m in messages if "collected data" in m]
        assert said == [
            "deployment 1: policy random collected data (deployment count 1)",
            f"deployment 2: policy {deployed} collected data (deployment count 2)",
        ], run


def test_a_deployment_collected_by_another_policy_than_the_candidate_is_refused_on_resume(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path, deployments=2))
    _run_quietly(cfg, tmp_path / "ws")
    marker = tmp_path / "ws" / "d2" / "collect.json"
    record = json.loads(marker.read_text())
    marker.write_text(json.dumps({**record, "policy_id": "0123456789ab"}))  # a training redone since
    with pytest.raises(BremenError, match="deployment 2 was collected with policy 0123456789ab"):
        _run_quietly(cfg, tmp_path / "ws")


def test_a_deployment_is_counted_before_its_collection_is_marked_done(tmp_path, monkeypatch):
    """A crash between the two must not leave collected data the registry does not count."""
    cfg = load_campaign_config(write_campaign(tmp_path, deployments=2))

    def crash(self, reg, k, policy_id, collected):
        raise RuntimeError("crash while counting")

    monkeypatch.setattr(Campaign, "_count_deployment", crash)
    with pytest.raises(RuntimeError, match="crash while counting"):
        _run_quietly(cfg, tmp_path / "ws")
    assert not (tmp_path / "ws" / "d1" / "collect.json").exists()


@pytest.mark.parametrize(
    ("collected", "expected"),
    [
        ({"interventions": 3, "collector": "graph"}, 3),
        ({"interventions": 0, "collector": "graph"}, 0),  # a shield that never intervened
        ({"interventions": None, "shielded": False, "collector": "direct"}, None),
        ({"interventions": 0, "shielded": False}, None),  # no shield ran, whatever the count says
        ({"steps": 10}, None),  # not recorded
        ({"interventions": 0, "collector": "direct"}, None),  # written before "shielded" existed
    ],
)
def test_the_summary_tells_no_shield_from_no_interventions(collected: dict, expected: int | None):
    from bremen_robot.campaign.collecting import shield_count

    assert shield_count(collected) == expected


def test_a_candidate_trained_again_after_a_rejection_is_not_the_rejected_policy(tmp_path):
    """``d<k>/train`` moved aside by hand (as the campaign once told operators to; it now does so
    itself: test_campaign_rejection.py) still trains anew. Trained on the same data with the same
    seed, the 'new' candidate would act exactly as the rejected policy, under a new id."""
    from bremen_robot.policy.artifact import load_artifact
    from bremen_robot.registry import Registry

    cfg = load_campaign_config(write_campaign(tmp_path, deployments=1))
    ws = tmp_path / "ws"
    first = _run_quietly(cfg, ws)["final_candidate"]["policy_id"]
    with Registry.open(ws) as reg:
        reg.reject(first, "joint 3 oscillates", operator="alice")
    (ws / "d1" / "train").rename(ws / "d1" / "train.rejected")
    second = _run_quietly(cfg, ws)["final_candidate"]["policy_id"]
    assert second != first
    obs = np.random.default_rng(0).uniform(-1, 1, size=(32, 2)).astype(np.float32)
    rejected = load_artifact(ws / "d1" / "train.rejected").act(obs)
    assert not np.array_equal(load_artifact(ws / "d1" / "train").act(obs), rejected)
