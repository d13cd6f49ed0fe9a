"""The campaign loop (issue 7). Wiring only: each stage calls the part that owns it.

For deployment k = 1..K: the collecting policy is deployed (k = 1: uniform random; later: the
previous candidate once an operator approved it) -> collect through the ROS 2 graph -> ingest
the bag -> train a candidate on all data so far -> register it -> evaluate it. State lives in
the registry and the workspace (see :mod:`bremen_robot.campaign.workspace`), so re-running the
same command resumes where it stopped.
"""

from __future__ import annotations

import errno
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bremen_robot.campaign.collecting import (  # re-exported: collectors and tests use them here
    CollectFn,
    CollectRequest,
    collect_through_graph,
    evaluate_policy,
    ingest_bag,
    shield_count,
)
from bremen_robot.campaign.config import CampaignConfig
from bremen_robot.campaign.rejection import rejected_count, set_aside, training_seed, turned_down
from bremen_robot.campaign.seeds import collection_seed, evaluation_seed
from bremen_robot.campaign.shadow import shadow_before_approval
from bremen_robot.campaign.status import StatusWriter, waiting_message
from bremen_robot.campaign.workspace import (
    Workspace,
    move_aside,
    read_json,
    refuse_other_seed_layout,
    write_json_atomic,
)
from bremen_robot.config.train import load_train_config
from bremen_robot.data.dataset import Dataset, merge
from bremen_robot.errors import BremenError
from bremen_robot.policy.manifest import MANIFEST_FILE, load_manifest
from bremen_robot.progress import Reporter
from bremen_robot.robot_config import load_robot_config

DEMO_OPERATOR = "demo-operator"
Log = Callable[[str], None]


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
        self.status = StatusWriter(
            self.ws.root,
            campaign=cfg.name,
            deployments=cfg.deployments,
            steps_target=cfg.steps_per_deployment,
            log=log,
        )
        if collect_fn is None:
            self._check_graph_config()

    def _check_graph_config(self) -> None:
        """The graph reads regenerated copies (``d<k>/collect.yaml``, ``robot.yaml``): check the
        user's own files now, so an error names the file to fix and comes before any work."""
        from bremen_robot.ros.config import load_collect_config

        load_collect_config(self.cfg.collect)
        if self.robot.safety is None:
            raise BremenError(
                f"{self.cfg.robot}: safety: no limits file, and the ROS 2 graph sends every action "
                "through the safety shield; add configs/safety/<robot>.yaml (docs/safety.md), or collect "
                "with --collector direct"
            )

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
        if policy_id == "random":  # kept collecting (selection found nothing better): no approval to check
            return robot_yaml
        try:
            verify_for_deployment(policy_id, load_robot_config(robot_yaml), reg)
        except ApprovalError as exc:
            raise BremenError(f"deployment {k} not started, nothing counted: {exc}") from None
        return robot_yaml

    # ---------------------------------------------------------------- stages
    def _wait_for_approval(self, reg: Any, policy_id: str, k: int) -> bool:
        """True once ``policy_id`` is approved; False when an operator turned it down (the
        caller trains deployment k's candidate again: :mod:`bremen_robot.campaign.rejection`)."""
        rec = reg.get(policy_id)
        if rec.state in ("approved", "deployed"):
            return True
        if turned_down(rec):
            return False
        _refuse_retired_after_collecting(rec, k)
        if self.auto_approve and rec.state == "candidate":
            from bremen_robot.registry import key_paths

            reg.approve(
                policy_id,
                DEMO_OPERATOR,
                key_paths(DEMO_OPERATOR, self.ws.root / "keys")[0],
                note=f"auto-approved in simulation for deployment {k}",
            )
            return True
        self._require_trust()
        self.status.stage(
            "waiting_for_approval", k, policy_id=policy_id, message=waiting_message(policy_id, self.ws.root)
        )
        from bremen_robot.campaign.trust import trust_table

        trusted = ", ".join(sorted({name for name, _, _ in trust_table(self.ws.root)}))
        self.log(
            f"waiting for approval of candidate {policy_id} for deployment {k}: "
            f"bremen review {policy_id} --workspace {self.ws.root}; then "
            f"bremen approve {policy_id} --operator NAME --workspace {self.ws.root}, or reject it "
            f"and the campaign trains another "
            f"(trusted operators: {trusted}; Ctrl-C to stop; the same command resumes)"
        )
        while True:
            rec = reg.get(policy_id)
            if rec.state in ("approved", "deployed"):
                self.log(
                    f"candidate {policy_id} approved by {rec.approval.operator if rec.approval else '?'}"
                )
                return True
            if turned_down(rec):
                return False
            _refuse_retired_after_collecting(rec, k)
            time.sleep(self.cfg.approval_poll_seconds)

    def _collect(
        self, k: int, policy_id: str, robot_yaml: Path, count: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Deployment k's data (once: ``collect.json`` marks it done). ``count`` records the
        deployment before the marker is written, so a crash between the two cannot leave data
        collected by a policy the registry does not count (and an operator could still reject)."""
        marker = self.ws.collect_marker(k)
        done = read_json(marker)
        if done is not None:
            # collected by an earlier run: recorded already (idempotent); the line says what it found
            count(dict(done))
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
            seed=collection_seed(self.cfg.seed, k, self.cfg.seed_layout),
            sigma=self.cfg.exploration_sigma if k > 1 else 0.0,
            robot_config=robot_yaml,
            collect_config=self.cfg.collect,
            workspace=self.ws.root,
            on_event=self.status.on_collect_event,
        )
        self.status.stage("collecting", k, policy_id=policy_id)
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
        # the base reset seed and its layout: what a later reader needs to repeat or compare it
        summary = {**summary, "policy_id": policy_id, "deployment": k, "seed": req.seed}
        summary["seed_layout"] = self.cfg.seed_layout
        count(summary)
        write_json_atomic(marker, summary)
        return summary

    def _resume_past(self, reg: Any, k: int, candidate: str, done: dict[str, Any]) -> None:
        """Deployment k was collected before this run (``done``, its marker): its approval,
        trust and state were checked then, and a later retirement or trust change must not undo
        it. Only that it was this candidate is checked."""
        collected_by = str(done.get("policy_id", ""))
        try:
            same = reg.resolve(collected_by) == reg.resolve(candidate)
        except Exception:  # noqa: BLE001  an id the registry does not know: not this candidate
            same = False
        if not same:
            raise BremenError(
                f"deployment {k} was collected with policy {collected_by or '?'} "
                f"({self.ws.collect_marker(k)}), but the campaign's candidate for it is now "
                f"{candidate}; move {self.ws.deployment_dir(k)} aside to collect it again with "
                f"{candidate}, or restore the training that proposed {collected_by}"
            )

    def _count_deployment(self, reg: Any, k: int, policy_id: str, collected: dict[str, Any]) -> None:
        """A deployment counts once its policy collected data (the runner records it at the first
        logged transition; this call is idempotent and covers collectors without a runner)."""
        if not int(collected.get("steps", 0)):
            return
        if policy_id != "random" and (done := reg.get(policy_id).deployments):
            # counted already (a resumed campaign): retiring it since must not stop the resume
            self.log(f"deployment {k}: policy {policy_id} collected data (deployment count {done[0]})")
            return
        if policy_id == "random":
            number = reg.record_random_deployment(
                "campaign deployment 1", robot=self.robot.name, task=self.robot.task
            )
        else:
            number = reg.mark_deployed(policy_id)
        self.log(f"deployment {k}: policy {policy_id} collected data (deployment count {number})")

    def _dataset(self, k: int) -> Dataset:
        path = self.ws.data(k)
        if not path.is_file():
            from bremen_robot.data.bag_ingest import ingest_warnings

            data = ingest_bag(self.ws.bag(k), k, self.robot.task)
            data.validate()
            for line in ingest_warnings(data):  # lost episodes must not pass unseen
                self.log(f"deployment {k}: warning: {line}")
            data.save(path)
        return Dataset.load(path)

    def _train(self, k: int, data: Dataset, deployed: Path | None = None, rejected: int = 0) -> Path:
        """Deployment k's candidate; ``rejected``: :func:`rejected_count` on this data (see
        :func:`training_seed`; a resumed retraining finds the same count, so keeps its seed)."""
        out = self.ws.train_dir(k)
        if (out / MANIFEST_FILE).is_file():
            return out
        move_aside(out)
        warm = k > 1 and self.train_cfg.ensemble.warm_start
        prev = self.ws.train_dir(k - 1) / "ensemble.pt" if warm else None
        from bremen_robot.trainer import train

        self.log(f"deployment {k}: training on {len(data)} transitions ({self.train_cfg.name})")
        train(
            self.train_cfg.model_copy(update={"seed": training_seed(self.cfg.seed, k, rejected)}),
            data,
            out,
            robot=self.robot.name,
            init_ensemble=prev if prev is not None and prev.is_file() else None,
            reporter=self.reporter,
            deployed=deployed,
        )
        return out

    def _candidate(
        self, reg: Any, k: int, data: Dataset, digests: list[str], policy_id: str, deployed: Path | None
    ) -> tuple[str, Path | None, Any, dict[str, Any]]:
        """Train (or find) deployment k's candidate on ``data``, register and evaluate it:
        ``(id, artifact, proposal, evaluation)``. A training whose candidate an operator turned
        down is set aside and trained again (:mod:`bremen_robot.campaign.rejection`)."""
        while True:
            self.status.stage("training", k)
            train_dir = self._train(k, data, deployed, rejected_count(self.ws, k, reg, digests))
            proposal = self._propose(k, train_dir, deployed)
            if proposal.keep:  # no snapshot beats the deployed policy: it collects again
                candidate, proposed = policy_id, deployed
                break
            lineage = {"data_digests": digests, "parent": policy_id, "deployment": k}
            rec = reg.register(proposal.artifact, report=proposal.report, lineage=lineage)
            if not turned_down(rec):
                candidate, proposed = rec.id, proposal.artifact
                break
            self.log(set_aside(self.ws, k, reg, rec.id)[1])
        # a selection decision's warning stays on the console until the next decision
        warning = proposal.record.get("twin_warning") if proposal.record else None
        self.status.stage("evaluating", k, candidate=candidate, warning=warning)
        # the random policy kept (nothing beat it) is the one evaluation of it, not another
        cand_seed = evaluation_seed(self.cfg.seed, self.cfg.seed_layout, random_policy=proposed is None)
        cand_eval = self._evaluate(self.ws.eval_file(k), proposed, cand_seed)
        success = f", success {100 * cand_eval['success_rate']:.0f}%" if "success_rate" in cand_eval else ""
        self.log(
            f"deployment {k}: candidate {candidate} evaluates to {cand_eval['mean']:.1f} ± "
            f"{cand_eval['std']:.1f}{success} ({self.eval_env})"
        )
        return candidate, proposed, proposal, cand_eval

    def _propose(self, k: int, train_dir: Path, deployed: Path | None) -> Any:
        """What to propose from this training (issue 16; :mod:`bremen_robot.campaign.selection`)."""
        from bremen_robot.campaign.selection import propose

        sim_robot = self.robot.sim_model or self.robot.name
        return propose(self.cfg, k, train_dir, deployed, sim_robot, self.robot.task, self.log)

    def _evaluate(self, path: Path, artifact: Path | None, seed: int) -> dict[str, Any]:
        sha = "random" if artifact is None else load_manifest(artifact).policy_sha256
        result = read_json(path)
        if result is not None and result.get("policy_sha256") != sha:
            # a retrained candidate (e.g. after a rejection) must not inherit the old one's figures;
            # the old ones are kept, its sim2real report with them (that first: eval.json is the
            # marker, so an interrupt between the two moves is finished by the next run)
            if artifact is not None:  # eval_random.json has no report; d1/sim2real is d1/eval.json's
                move_aside(path.parent / "sim2real", "replaced")
            move_aside(path, "replaced")
            result = None
        if result is None:
            result = evaluate_policy(
                artifact, self.eval_env, self.cfg.evaluation.episodes, seed, robot=self.robot
            )
            result["policy_sha256"] = sha
            if self.cfg.evaluation.sim2real and artifact is not None:
                # a report without its eval.json is an earlier, interrupted one's: kept, not overwritten
                move_aside(path.parent / "sim2real", "replaced")
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
        """Run (or resume) the campaign, holding the workspace's lock: a second campaign on the same
        workspace, from the CLI or from Python (e.g. the benchmark harness), is refused at once."""
        with self.ws.lock():
            # which campaign owns the workspace is the first question; another's status stays as it is
            current, *earlier = self.cfg.identities()
            refuse_other_seed_layout(self.ws, self.cfg)
            self.ws.claim(self.cfg.name, current, legacy_digests=earlier)
            with self.status.running():
                return self._run_locked()

    def _run_locked(self) -> dict[str, Any]:
        from bremen_robot.registry import Registry

        self._require_trust()  # trust is this campaign's own, checked after the claim
        robot_yaml = self._robot_config_for_graph()
        rows: list[dict[str, Any]] = []
        datasets: list[Dataset] = []
        final: dict[str, Any] = {}
        with Registry.open(self.ws.root) as reg:
            candidate: str | None = None
            proposed: Path | None = None  # the artifact of ``candidate`` (None: the random policy)
            retrain: Callable[[], tuple[str, Path | None, Any, dict[str, Any]]] | None = None
            for k in range(1, self.cfg.deployments + 1):
                if k == 1:
                    self.status.stage("evaluating", k, policy_id="random")
                    policy_id, evaluation = (
                        "random",
                        self._evaluate(
                            self.ws.deployment_dir(1) / "eval_random.json",
                            None,
                            evaluation_seed(self.cfg.seed, self.cfg.seed_layout, random_policy=True),
                        ),
                    )
                else:
                    assert candidate is not None
                    if (done := read_json(self.ws.collect_marker(k))) is not None:
                        self._resume_past(reg, k, candidate, done)  # it was deployed: not asked again
                    else:
                        while True:
                            if self.cfg.shadow.enabled:  # before the approval is asked: docs/ros.md
                                shadow_before_approval(self, reg, k, candidate, policy_id)
                            if self._wait_for_approval(reg, candidate, k):
                                break
                            assert retrain is not None  # deployment k-1's candidate step
                            candidate, proposed, _, _ = retrain()
                        robot_yaml = self._check_deployable(reg, candidate, k)
                    self.status.stage("evaluating", k, policy_id=candidate)
                    policy_id = candidate
                    evaluation = self._evaluate(
                        self.ws.eval_file(k - 1),
                        proposed,
                        evaluation_seed(self.cfg.seed, self.cfg.seed_layout, random_policy=False),
                    )
                count = functools.partial(self._count_deployment, reg, k, policy_id)
                collected = self._collect(k, policy_id, robot_yaml, count)
                counts = {
                    f: int(collected[f])
                    for f in ("episodes", "steps", "interventions")
                    if collected.get(f) is not None
                }
                self.status.stage("ingesting", k, **counts)
                datasets.append(self._dataset(k))
                data = merge(datasets) if len(datasets) > 1 else datasets[0]
                deployed = None if policy_id == "random" else reg.get(policy_id).artifact_dir
                digests = [d.digest() for d in datasets]
                retrain = functools.partial(self._candidate, reg, k, data, digests, policy_id, deployed)
                candidate, proposed, _, cand_eval = retrain()
                rows.append(
                    {
                        "deployment": k,
                        "samples": int(sum(len(d) for d in datasets)),
                        "policy_id": policy_id,
                        "eval_return_mean": evaluation["mean"],
                        "eval_return_std": evaluation["std"],
                        "interventions": shield_count(collected),
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


def _refuse_retired_after_collecting(rec: Any, k: int) -> None:
    """A policy retired after it collected can be neither approved nor trained again (its data
    stays), so waiting for its approval would wait forever."""
    if rec.state == "retired":
        raise BremenError(
            f"deployment {k}: policy {rec.id} was retired after it collected data, so it can never be "
            "approved again; the campaign stops here (the workspace and its data are kept): start a "
            "new campaign workspace to go on"
        )
