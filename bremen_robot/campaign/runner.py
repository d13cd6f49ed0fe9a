"""The campaign loop (issue 7). Wiring only: each stage calls the part that owns it.

For deployment k = 1..K: the collecting policy is deployed (k = 1: uniform random; later: the
previous candidate once an operator approved it) -> collect through the ROS 2 graph -> ingest
the bag -> train a candidate on all data so far -> register it -> evaluate it. State lives in
the registry and the workspace (see :mod:`bremen_robot.campaign.workspace`), so re-running the
same command resumes where it stopped.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bremen_robot.campaign.config import CampaignConfig
from bremen_robot.campaign.workspace import Workspace, move_aside, read_json, write_json_atomic
from bremen_robot.config.train import load_train_config
from bremen_robot.data.dataset import Dataset, merge
from bremen_robot.errors import BremenError
from bremen_robot.policy.artifact import MANIFEST_FILE, load_manifest
from bremen_robot.progress import Reporter
from bremen_robot.robot_config import load_robot_config

DEMO_OPERATOR = "demo-operator"


@dataclass
class CollectRequest:
    """What one deployment's collection needs; the collector writes a rosbag2 folder to ``out_bag``."""

    deployment: int
    policy_id: str  # "random" or the registry id
    steps: int
    out_bag: Path
    seed: int
    sigma: float
    robot_config: Path
    collect_config: Path
    workspace: Path


CollectFn = Callable[[CollectRequest], dict[str, Any]]
Log = Callable[[str], None]


def collect_through_graph(req: CollectRequest) -> dict[str, Any]:
    """Default collector: the ROS 2 graph ``bremen collect`` starts (same description), in the
    collect config's mode, with the campaign's robot config, seed and exploration noise."""
    from bremen_robot.config.loading import read_yaml
    from bremen_robot.ros.collect import collect

    cfg = read_yaml(req.collect_config)
    cfg.update(
        robot=str(req.robot_config), seed=req.seed, noise_sigma=req.sigma, workspace=str(req.workspace)
    )
    cfg_path = req.out_bag.parent / "collect.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    random = req.policy_id == "random"
    result = collect(
        cfg_path,
        policy=None if random else req.policy_id,
        random=random,
        steps=req.steps,
        out=req.out_bag,
        workspace=req.workspace,
    )
    if result.interrupted or result.logger_crashed:
        raise BremenError(
            f"collection of deployment {req.deployment} did not finish ({result.summary().splitlines()[0]}); "
            "re-run the same command to collect again (the partial bag is kept)"
        )
    return {
        "steps": result.steps,
        "episodes": len(result.episodes),
        "interventions": result.interventions,
        "return_mean": float(np.mean(result.returns)) if result.returns else None,
        "collector": "graph",
    }


def ingest_bag(bag: Path, deployment: int, task_name: str) -> Dataset:
    from bremen_robot.data.bag_ingest import ingest_dataset

    data = ingest_dataset([bag], task_name)
    data.deployment_ids[:] = deployment
    return data


def evaluate_policy(artifact: Path | None, env_spec: str, episodes: int, seed: int) -> dict[str, Any]:
    """Returns (and success rate, where the task defines success) of an artifact's mean action,
    or of the uniform policy when ``artifact`` is None."""
    from bremen_robot.data.real_rollout import make_env, rollout, uniform_policy
    from bremen_robot.policy.artifact import load_artifact

    env, task = make_env(env_spec)
    rng = np.random.default_rng(seed)
    act = uniform_policy(task, rng) if artifact is None else load_artifact(artifact).act
    data = rollout(env, task, act, episodes=episodes, seed=seed)
    env.close()
    returns = [float(r) for r in data.episode_returns()]
    result: dict[str, Any] = {
        "env": env_spec,
        "returns": returns,
        "mean": float(np.mean(returns)),
        "std": float(np.std(returns)),
    }
    if task.success_fn is not None:  # judged on each episode's last step
        last = np.r_[data.episode_ids[1:] != data.episode_ids[:-1], True]
        ok = task.success_fn(data.obs[last], data.actions[last], data.next_obs[last])
        result["success_rate"] = float(np.mean(ok))
    return result


class Campaign:
    def __init__(
        self,
        cfg: CampaignConfig,
        workspace: Path,
        *,
        auto_approve: bool = False,
        collect_fn: CollectFn | None = None,
        reporter: Reporter | None = None,
        log: Log = print,
    ) -> None:
        self.cfg, self.ws = cfg, Workspace(Path(workspace).resolve())  # child processes run elsewhere
        self.auto_approve = auto_approve
        self.collect_fn = collect_fn or collect_through_graph
        self.reporter = reporter or Reporter(enabled=False)
        self.log = log
        self.robot = load_robot_config(cfg.robot)
        self.train_cfg = load_train_config(cfg.train)
        if auto_approve and not self.robot.simulated:
            raise BremenError(
                f"--auto-approve is for simulators only; robot '{self.robot.name}' ({cfg.robot}) is "
                "real hardware: approve each candidate with 'bremen approve'"
            )
        self.eval_env = cfg.evaluation.env or f"sim:{self.robot.sim_model or self.robot.name}/mujoco"

    # ----------------------------------------------------------------- setup
    def _robot_config_for_graph(self) -> Path:
        """Generate ``<ws>/robot.yaml`` (see :mod:`bremen_robot.campaign.trust`); with
        --auto-approve it also trusts the demo key."""
        from bremen_robot.campaign.trust import DEMO_KEY_DIR, write_robot_config

        extra: list[Path] = []
        if self.auto_approve:
            from bremen_robot.registry import init_operator, key_paths

            priv, pub = key_paths(DEMO_OPERATOR, self.ws.root / DEMO_KEY_DIR)
            if not priv.exists():
                init_operator(DEMO_OPERATOR, self.ws.root / DEMO_KEY_DIR)
            extra.append(pub)
        return write_robot_config(self.robot, self.ws.root, extra, log=self.log)

    def _require_trust(self) -> None:
        """Refuse before any work that would end waiting for an approval no robot key accepts."""
        from bremen_robot.campaign.trust import combined_keys, trust_fix

        if self.auto_approve or self.cfg.deployments < 2 or combined_keys(self.robot, self.ws.root):
            return
        raise BremenError(
            f"robot '{self.robot.name}' trusts no operator keys, so no candidate could be deployed after "
            f"deployment 1; {trust_fix(self.ws.root, 'NAME')} with the NAME of 'bremen operator init NAME', "
            "then run this command again"
        )

    def _check_deployable(self, reg: Any, policy_id: str, k: int) -> Path:
        """Run the robot side's own check before the campaign counts or collects anything, with
        trust as it is now (an operator may have been added while the campaign waited)."""
        from bremen_robot.registry import ApprovalError, verify_for_deployment

        robot_yaml = self._robot_config_for_graph()
        try:
            verify_for_deployment(policy_id, load_robot_config(robot_yaml), reg)
        except ApprovalError as exc:
            raise BremenError(f"deployment {k} not started, nothing counted: {exc}") from None
        return robot_yaml

    # ---------------------------------------------------------------- stages
    def _wait_for_approval(self, reg: Any, policy_id: str, k: int) -> None:
        rec = reg.get(policy_id)
        if rec.state in ("approved", "deployed"):
            return
        if self.auto_approve and rec.state == "candidate":
            from bremen_robot.registry import key_paths

            reg.approve(
                policy_id,
                DEMO_OPERATOR,
                key_paths(DEMO_OPERATOR, self.ws.root / "keys")[0],
                note=f"auto-approved in simulation for deployment {k}",
            )
            return
        self._require_trust()
        from bremen_robot.campaign.trust import trust_table

        trusted = ", ".join(sorted({name for name, _, _ in trust_table(self.ws.root)}))
        self.log(
            f"waiting for approval of candidate {policy_id} for deployment {k}: "
            f"bremen review {policy_id} --workspace {self.ws.root}; then "
            f"bremen approve {policy_id} --operator NAME --workspace {self.ws.root} "
            f"(trusted operators: {trusted}; Ctrl-C to stop; the same command resumes)"
        )
        while True:
            rec = reg.get(policy_id)
            if rec.state in ("approved", "deployed"):
                self.log(
                    f"candidate {policy_id} approved by {rec.approval.operator if rec.approval else '?'}"
                )
                return
            if rec.state in ("rejected", "retired"):
                raise BremenError(
                    f"candidate {policy_id} was {rec.state}; the campaign stops before deployment {k}. Move "
                    f"{self.ws.train_dir(k - 1)} aside and re-run to train a new candidate"
                )
            time.sleep(self.cfg.approval_poll_seconds)

    def _collect(self, k: int, policy_id: str, robot_yaml: Path) -> dict[str, Any]:
        marker = self.ws.collect_marker(k)
        done = read_json(marker)
        if done is not None:
            return dict(done)
        if (aside := move_aside(self.ws.bag(k))) is not None:
            self.log(f"deployment {k}: an interrupted collection was kept at {aside}; collecting again")
        self.ws.deployment_dir(k).mkdir(parents=True, exist_ok=True)
        self.log(f"deployment {k}: collecting {self.cfg.steps_per_deployment} steps with policy {policy_id}")
        req = CollectRequest(
            deployment=k,
            policy_id=policy_id,
            steps=self.cfg.steps_per_deployment,
            out_bag=self.ws.bag(k),
            seed=self.cfg.seed * 1000 + k,
            sigma=self.cfg.exploration_sigma if k > 1 else 0.0,
            robot_config=robot_yaml,
            collect_config=self.cfg.collect,
            workspace=self.ws.root,
        )
        try:
            summary = self.collect_fn(req)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise BremenError(
                    f"out of disk space while collecting deployment {k} into {self.ws.bag(k)}; "
                    "free space and "
                    "re-run the same command (the partial bag is kept, earlier deployments are untouched)"
                ) from None
            raise
        summary = {**summary, "policy_id": policy_id, "deployment": k}
        write_json_atomic(marker, summary)
        return summary

    def _dataset(self, k: int) -> Dataset:
        path = self.ws.data(k)
        if not path.is_file():
            data = ingest_bag(self.ws.bag(k), k, self.robot.task)
            data.validate()
            data.save(path)
        return Dataset.load(path)

    def _train(self, k: int, data: Dataset) -> Path:
        out = self.ws.train_dir(k)
        if (out / MANIFEST_FILE).is_file():
            return out
        move_aside(out)
        warm = k > 1 and self.train_cfg.ensemble.warm_start
        prev = self.ws.train_dir(k - 1) / "ensemble.pt" if warm else None
        from bremen_robot.trainer import train

        self.log(f"deployment {k}: training on {len(data)} transitions ({self.train_cfg.name})")
        train(
            self.train_cfg.model_copy(update={"seed": self.cfg.seed + k}),
            data,
            out,
            robot=self.robot.name,
            init_ensemble=prev if prev is not None and prev.is_file() else None,
            reporter=self.reporter,
        )
        return out

    def _evaluate(self, path: Path, artifact: Path | None, seed: int) -> dict[str, Any]:
        sha = "random" if artifact is None else load_manifest(artifact).policy_sha256
        result = read_json(path)
        if result is not None and result.get("policy_sha256") != sha:
            # a retrained candidate (e.g. after a rejection) must not inherit the old one's figures
            move_aside(path)
            result = None
        if result is None:
            result = evaluate_policy(artifact, self.eval_env, self.cfg.evaluation.episodes, seed)
            result["policy_sha256"] = sha
            if self.cfg.evaluation.sim2real and artifact is not None:
                result["sim2real"] = self._sim2real(artifact, path.parent)
            write_json_atomic(path, result)
        return dict(result)

    def _sim2real(self, artifact: Path, out: Path) -> dict[str, Any]:
        from bremen_robot.policy.artifact import load_artifact
        from sim.randomization import DEFAULT_RANDOMIZATION
        from sim.sim2real import run_sim2real, write_report

        report = run_sim2real(
            load_artifact(artifact).act,
            robot=self.robot.sim_model or self.robot.name,
            task=self.robot.task,
            episodes=self.cfg.evaluation.episodes,
            train_backend="mujoco",
            randomization=DEFAULT_RANDOMIZATION,
            seed=self.cfg.seed,
        )
        write_report(report, out / "sim2real")
        return dict(report.to_dict())

    # ------------------------------------------------------------------ loop
    def run(self) -> dict[str, Any]:
        from bremen_robot.registry import Registry

        self._require_trust()
        self.ws.claim(self.cfg.name, self.cfg.digest(), legacy_digest=self.cfg.digest(legacy=True))
        robot_yaml = self._robot_config_for_graph()
        rows: list[dict[str, Any]] = []
        datasets: list[Dataset] = []
        final: dict[str, Any] = {}
        with Registry.open(self.ws.root) as reg:
            candidate: str | None = None
            for k in range(1, self.cfg.deployments + 1):
                if k == 1:
                    policy_id, evaluation = (
                        "random",
                        self._evaluate(self.ws.deployment_dir(1) / "eval_random.json", None, self.cfg.seed),
                    )
                else:
                    assert candidate is not None
                    self._wait_for_approval(reg, candidate, k)
                    robot_yaml = self._check_deployable(reg, candidate, k)
                    policy_id = candidate
                    evaluation = self._evaluate(
                        self.ws.eval_file(k - 1), self.ws.train_dir(k - 1), self.cfg.seed + 7
                    )
                collected = self._collect(k, policy_id, robot_yaml)
                # counted once the policy has collected data (the runner may have counted it at its
                # first transition already; both calls return the same number)
                if k == 1:
                    reg.record_random_deployment(
                        "campaign deployment 1", robot=self.robot.name, task=self.robot.task
                    )
                else:
                    number = reg.mark_deployed(policy_id)
                    self.log(f"deployment {k}: policy {policy_id} deployed (deployment count {number})")
                datasets.append(self._dataset(k))
                data = merge(datasets) if len(datasets) > 1 else datasets[0]
                train_dir = self._train(k, data)
                lineage = {
                    "data_digests": [d.digest() for d in datasets],
                    "parent": policy_id,
                    "deployment": k,
                }
                candidate = reg.register(train_dir, lineage=lineage).id
                cand_eval = self._evaluate(self.ws.eval_file(k), train_dir, self.cfg.seed + 7)
                rows.append(
                    {
                        "deployment": k,
                        "samples": int(sum(len(d) for d in datasets)),
                        "policy_id": policy_id,
                        "eval_return_mean": evaluation["mean"],
                        "eval_return_std": evaluation["std"],
                        "interventions": int(collected.get("interventions", 0)),
                        **(
                            {"success_rate": evaluation["success_rate"]}
                            if "success_rate" in evaluation
                            else {}
                        ),
                    }
                )
                final = {
                    "policy_id": candidate,
                    "trained_on_samples": rows[-1]["samples"],
                    "eval_return_mean": cand_eval["mean"],
                    "eval_return_std": cand_eval["std"],
                    "state": reg.get(candidate).state,
                    **({"success_rate": cand_eval["success_rate"]} if "success_rate" in cand_eval else {}),
                }
                self.log(
                    f"deployment {k}: candidate {candidate} evaluates to {cand_eval['mean']:.1f} ± "
                    f"{cand_eval['std']:.1f} ({self.eval_env})"
                )
            summary = {
                "campaign": self.cfg.name,
                "robot": self.robot.name,
                "task": self.robot.task,
                "deployment_count": reg.deployment_count(),
                "deployments": rows,
                "final_candidate": final,
            }
        write_json_atomic(self.ws.root / "summary.json", summary)
        from bremen_robot.campaign.plots import plot_campaign

        plot_campaign(summary, self.ws.root / "summary.png")
        return summary
