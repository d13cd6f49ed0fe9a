"""The recursive TD3+BC baseline of the reproduction harness: deployment 1 uniform random, then
each deployment collects with the previous TD3+BC actor + N(0, sigma^2), and TD3+BC is re-trained
from scratch on all data so far (``td3bc_step.py`` in ``benchmarks/.venv-d3rlpy``), its actor
exported as a regular frozen artifact and evaluated like the campaign's candidates.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from reproduce_common import HERE, Job, _guard, _log, job_campaign

from bremen_robot.campaign.seeds import collection_seed, evaluation_seed
from bremen_robot.child_process import die_with_parent


def td3bc_collect(job: Job, cfg: Any, robot: Any, k: int, prev_policy: Path | None) -> dict[str, Any]:
    """Deployment k's data, written like the campaign's (collect.json marks it done)."""
    from bremen_robot.campaign.direct import collect_direct
    from bremen_robot.campaign.runner import CollectRequest
    from bremen_robot.campaign.workspace import move_aside, read_json, write_json_atomic
    from bremen_robot.data.real_rollout import make_env, noisy_policy, rollout
    from bremen_robot.policy.artifact import load_artifact

    d = job.workspace / f"d{k}"
    marker = d / "collect.json"
    if (done := read_json(marker)) is not None:
        return dict(done)
    seed = collection_seed(cfg.seed, k, cfg.seed_layout)  # the campaign's: equal random first deployment
    move_aside(d / "data.npz")  # from an attempt killed before its marker: kept aside, collected again
    if prev_policy is None:
        req = CollectRequest(
            deployment=k,
            policy_id="random",
            steps=cfg.steps_per_deployment,
            out_bag=d / "bag",
            seed=seed,
            sigma=0.0,
            robot_config=cfg.robot,
            collect_config=cfg.collect,
            workspace=job.workspace,
        )
        summary = collect_direct(req)
        summary["policy_id"] = "random"
    else:
        frozen = load_artifact(prev_policy)
        env, task = make_env(f"sim:{robot.sim_model or robot.name}/mujoco")
        rng = np.random.default_rng(seed)
        act = noisy_policy(frozen.act, task, cfg.exploration_sigma, rng)
        data = rollout(
            env,
            task,
            act,
            steps=cfg.steps_per_deployment,
            seed=seed,
            deployment_id=k,
            policy_sha256=frozen.sha256,
        )
        env.close()
        data.save(d / "data.npz")
        returns = data.episode_returns()
        summary = {
            "steps": len(data),
            "episodes": len(returns),
            "interventions": None,  # no shield: like the campaign's direct collector
            "shielded": False,
            "return_mean": float(np.mean(returns)),
            "collector": "direct",
            "policy_id": frozen.sha256[:12],
        }
    summary["deployment"] = k
    write_json_atomic(marker, summary)
    return summary


BUDGET_SEEDS = (0, 1, 2)  # the suite's seeds: every TD3+BC seed gets the same budget


# Methods whose training is BREMEN's (selection adds the scoring of snapshots, never less work).
BREMEN_TRAINED = ("bremen", "bremen_select")


def _seeds(methods: dict[str, Any], method: str) -> dict[str, Any]:
    return methods.get(method, {}).get("seeds", {})


def _budget_seeds(methods: dict[str, Any], method: str) -> dict[str, Any]:
    """``method``'s records of :data:`BUDGET_SEEDS` only: another seed (run later, perhaps still
    running) must neither enter the budget nor move it."""
    records = _seeds(methods, method)
    return {str(s): records[str(s)] for s in BUDGET_SEEDS if str(s) in records}


def flushed_seconds(records: dict[str, Any], k: int) -> list[float]:
    """Deployment ``k``'s training seconds of every seed in ``records`` that trained it with
    subnormal floats flushed (``train_flushed``, from the trainer report's
    ``timing.subnormal_flush``)."""
    out = []
    for rec in records.values():
        secs, flushed = rec.get("train_s") or [], rec.get("train_flushed") or []
        if k < len(secs) and k < len(flushed) and flushed[k] and secs[k] is not None:
            out.append(float(secs[k]))
    return out


def bremen_seconds(result: dict[str, Any] | None, deployments: int) -> tuple[list[float] | None, str]:
    """BREMEN's training seconds at each deployment 1..K on this campaign (its results file
    ``result``), and ``""``; or None and why not. Issue 16: TD3+BC gets at least the wall time
    BREMEN gets, deployment by deployment (a fixed step count falls behind as BREMEN's ensemble
    fit grows with the data).

    Until 2026-12-06 subnormal weights slowed the trainer's fits 10-20x (docs/performance.md,
    "Subnormal weights"), so times recorded before are no measure of what BREMEN costs. At a
    deployment that any BREMEN or BREMEN + selection run trained since (``train_flushed``), the
    budget is the largest of those times; elsewhere it is BREMEN's mean over its 3 seeds, as
    before. Only the suite's seeds (:data:`BUDGET_SEEDS`) count. BREMEN's 3 seeds and
    selection's must be complete: their times enter the budget, which must not move while
    TD3+BC's seeds run (a selection run that had not yet written a record would otherwise move it
    later), so TD3+BC runs last."""
    if result is None:
        return None, "the campaign has no results file yet"
    methods = result.get("methods", {})
    for method, label in (("bremen", "BREMEN"), ("bremen_select", "BREMEN + selection")):
        records = _budget_seeds(methods, method)
        done = [s for s in BUDGET_SEEDS if records.get(str(s), {}).get("complete")]
        if len(done) < len(BUDGET_SEEDS):
            return None, f"{len(done)} of {len(BUDGET_SEEDS)} {label} seeds are complete in its results file"
    bremen = _seeds(methods, "bremen")
    out = []
    for k in range(1, deployments + 1):
        flushed = [t for m in BREMEN_TRAINED for t in flushed_seconds(_budget_seeds(methods, m), k)]
        if flushed:
            out.append(round(max(flushed), 1))
            continue
        per_seed = [(bremen[str(s)].get("train_s") or [])[k : k + 1] for s in BUDGET_SEEDS]
        if any(not v or v[0] is None for v in per_seed):
            return None, f"a BREMEN seed has no training time for deployment {k} in its results file"
        out.append(round(float(np.mean([v[0] for v in per_seed])), 1))
    return out, ""


def td3bc_train(job: Job, task: Any, k: int) -> Path:
    weights = job.workspace / f"d{k}" / "td3bc" / "weights.npz"
    if weights.is_file():
        return weights
    py = Path(job.td3bc["python"])
    if not py.is_file():
        raise SystemExit(
            f"no d3rlpy venv at '{py}'; run benchmarks/setup_d3rlpy.sh (or drop td3bc from --methods)"
        )
    weights.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(py),
        str(HERE / "td3bc_step.py"),
        "--data",
        *[str(job.workspace / f"d{j}" / "data.npz") for j in range(1, k + 1)],
        "--out",
        str(weights),
        "--steps",
        str(job.td3bc["steps"]),
        "--seed",
        str(job.seed * 1000 + k),
        "--action-low",
        *[repr(float(x)) for x in task.action_low],
        "--action-high",
        *[repr(float(x)) for x in task.action_high],
        "--threads",
        "1",
        "--device",
        job.td3bc["device"],
    ]
    budget = f"{job.td3bc['steps']} steps"
    if seconds := job.td3bc.get("min_seconds"):
        cmd += ["--min-seconds", repr(float(seconds[k - 1]))]
        budget = f"at least {job.td3bc['steps']} steps and {seconds[k - 1]:.0f} s (BREMEN's)"
    _log(job, f"deployment {k}: TD3+BC {budget} on d1..d{k}")
    log_path = weights.parent / "log.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log_path, "w") as log:
        rc = subprocess.run(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=weights.parent, env=env, preexec_fn=die_with_parent
        ).returncode  # the fit ends with its run (a stopped harness, a killed Ray worker)
    if rc != 0 or not weights.is_file():
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-5:])
        raise SystemExit(f"td3bc_step.py failed (exit {rc}) for deployment {k}; see {log_path}:\n{tail}")
    return weights


def td3bc_export(weights: Path, out_dir: Path, task: Any, robot: Any, data_digests: list[str]) -> Path:
    """Rebuild the TD3+BC actor as the project's GaussianPolicy (its mean) and export an artifact."""
    import torch

    from bremen_robot.campaign.workspace import move_aside
    from bremen_robot.policy.artifact import MANIFEST_FILE, export_policy, load_artifact
    from bremen_robot.policy.gaussian import GaussianPolicy

    if (out_dir / MANIFEST_FILE).is_file():
        return out_dir
    with np.load(weights, allow_pickle=False) as z:
        w = {key: z[key] for key in z.files}
    info = json.loads(str(w.pop("info")))
    hidden: list[int] = []
    while f"hidden_W{len(hidden)}" in w:
        hidden.append(int(w[f"hidden_W{len(hidden)}"].shape[0]))
    A = task.action_dim
    if w["out_W"].shape != (A, hidden[-1]) or not np.allclose(w["action_low"], task.action_low):
        raise SystemExit(f"{weights}: actor shape or action box does not match task '{task.name}'")
    policy = GaussianPolicy(task.obs_dim, task.action_low, task.action_high, hidden)
    policy.set_obs_normalizer(w["obs_mean"], w["obs_scale"])
    linears = [m for m in policy.net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for i, lin in enumerate(linears[:-1]):
            lin.weight.copy_(torch.from_numpy(w[f"hidden_W{i}"]))
            lin.bias.copy_(torch.from_numpy(w[f"hidden_b{i}"]))
        last = linears[-1]
        last.weight.zero_()
        last.bias.zero_()  # log-std head: constant, unused (only the mean is evaluated or deployed)
        last.weight[:A] = torch.from_numpy(w["out_W"])
        last.bias[:A] = torch.from_numpy(w["out_b"])
    probe, expected = w["probe_obs"], w["probe_actions"]
    tmp = out_dir.with_name(out_dir.name + ".partial")
    move_aside(tmp)
    export_policy(
        policy,
        tmp,
        robot=robot.name,
        task=task.name,
        observation_names=list(task.obs_names),
        action_names=list(task.action_names),
        control_rate_hz=1.0 / task.dt,
        data_digests=data_digests,
        kind="td3bc",
        config=info,
        metrics={"d3rlpy_parity_max_abs": info["parity_max_abs"]},
    )
    gap = float(np.abs(load_artifact(tmp).act(probe) - expected).max())
    if gap > 1e-4:
        raise SystemExit(f"exported TD3+BC artifact differs from d3rlpy's predict by {gap:.2e}; not using it")
    tmp.rename(out_dir)
    return out_dir


def run_td3bc(job: Job) -> None:
    """The TD3+BC loop of one seed, resumable, holding its workspace's lock as a campaign does: a
    second harness on the same workspace, or ``park_runs.py park``, is refused while it runs."""
    from bremen_robot.workspace_lock import folder_lock

    with folder_lock(job.workspace, "workspace"):
        _run_td3bc_locked(job)


def _run_td3bc_locked(job: Job) -> None:
    from bremen_robot.campaign.runner import evaluate_policy
    from bremen_robot.campaign.workspace import read_json, write_json_atomic
    from bremen_robot.data.dataset import Dataset
    from bremen_robot.robot_config import load_robot_config
    from bremen_robot.tasks import get_task

    _guard(job)
    cfg = job_campaign(job)
    robot = load_robot_config(cfg.robot)
    task = get_task(robot.task)
    env_spec = cfg.evaluation.env or f"sim:{robot.sim_model or robot.name}/mujoco"
    _log(
        job,
        f"TD3+BC loop: {cfg.deployments} x {cfg.steps_per_deployment} samples, "
        f"at least {job.td3bc['steps']} gradient steps each"
        + (", and at least BREMEN's training seconds" if job.td3bc.get("min_seconds") else ""),
    )

    def evaluate(path: Path, artifact: Path | None, seed: int) -> dict[str, Any]:
        if (have := read_json(path)) is None:
            have = evaluate_policy(artifact, env_spec, cfg.evaluation.episodes, seed)
            write_json_atomic(path, have)
        return dict(have)

    rows: list[dict[str, Any]] = []
    digests: list[str] = []
    prev: Path | None = None
    random_seed = evaluation_seed(cfg.seed, cfg.seed_layout, random_policy=True)
    eval_seed = evaluation_seed(cfg.seed, cfg.seed_layout, random_policy=False)
    deployed = evaluate(job.workspace / "d1" / "eval_random.json", None, random_seed)
    for k in range(1, cfg.deployments + 1):
        if k > 1:
            deployed = evaluate(job.workspace / f"d{k - 1}" / "eval.json", prev, eval_seed)
        collected = td3bc_collect(job, cfg, robot, k, prev)
        digests.append(Dataset.load(job.workspace / f"d{k}" / "data.npz").digest())
        weights = td3bc_train(job, task, k)
        prev = td3bc_export(weights, job.workspace / f"d{k}" / "policy", task, robot, list(digests))
        cand = evaluate(job.workspace / f"d{k}" / "eval.json", prev, eval_seed)
        rows.append(
            {
                "deployment": k,
                "samples": int(
                    sum(
                        (read_json(job.workspace / f"d{j}" / "collect.json") or {})["steps"]
                        for j in range(1, k + 1)
                    )
                ),
                "policy_id": collected["policy_id"],
                "eval_return_mean": deployed["mean"],
                "eval_return_std": deployed["std"],
                "interventions": None,
            }
        )
        _log(job, f"deployment {k}: TD3+BC candidate evaluates to {cand['mean']:.1f} ± {cand['std']:.1f}")
    final = {
        "policy_id": f"td3bc-d{cfg.deployments}",
        "trained_on_samples": rows[-1]["samples"],
        "eval_return_mean": cand["mean"],
        "eval_return_std": cand["std"],
        "state": "candidate",
    }
    summary = {
        "campaign": f"{cfg.name} (TD3+BC)",
        "robot": robot.name,
        "task": task.name,
        "deployment_count": cfg.deployments,
        "deployments": rows,
        "final_candidate": final,
    }
    write_json_atomic(job.workspace / "summary.json", summary)
    from bremen_robot.campaign.plots import plot_campaign

    plot_campaign(summary, job.workspace / "summary.png")
    _log(job, "done")
