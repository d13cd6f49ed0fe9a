"""Reproduction harness (issue 7): BREMEN vs recursive BC vs a recursive model-free offline baseline.

For every seed it runs, each in its own workspace under ``--out``:

* ``bremen``: the campaign (default ``halfcheetah-cpu``), as ``bremen campaign --collector direct
  --auto-approve`` would, through the Python API;
* ``bc``: the same campaign with the recursive behavior-cloning preset (campaign ``<campaign>-bc``,
  training with ``trpo.iterations: 0``, so each candidate is the cloned policy);
* ``td3bc``: the same loop with d3rlpy's TD3+BC in place of the trainer: deployment 1 uniform
  random, then each deployment collects with the previous TD3+BC actor + N(0, sigma^2), and
  TD3+BC is re-trained from scratch on all data so far (``benchmarks/td3bc_step.py`` in
  ``benchmarks/.venv-d3rlpy``).

All methods collect the same number of samples per deployment with the same seeds (deployment 1's
random data is identical across methods for a seed), and each candidate trained on deployments
1..k is evaluated with the same evaluation (mean action, ``evaluation.episodes`` episodes, same
seed). Re-running the same command skips finished work. Results go to
``benchmarks/results/<name>.json`` and ``<name>.png``, and a table is printed.

Example (the full reproduction)::

    ./benchmarks/setup_d3rlpy.sh
    python benchmarks/reproduce.py --seeds 0 1 2 --methods bremen bc td3bc --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
METHODS = ("bremen", "bc", "td3bc")
LABELS = {"bremen": "BREMEN", "bc": "recursive BC", "td3bc": "recursive TD3+BC (d3rlpy)"}
SHORT = {"bremen": "BREMEN", "bc": "recursive BC", "td3bc": "recursive TD3+BC"}
COLORS = {"bremen": "tab:blue", "bc": "tab:orange", "td3bc": "tab:green"}
TD3BC_PYTHON = HERE / ".venv-d3rlpy" / "bin" / "python"
TARGET_RETURN = 4000.0  # DESIGN.md §5, HalfCheetah, mean of 3 seeds after <= 5 deployments
TARGET_DEPLOYMENTS = 5
TD3BC_STEPS = 50_000  # per deployment: about BREMEN's halfcheetah-cpu training time on one core


# --------------------------------------------------------------------------- arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/reproduce.py",
        description="Run BREMEN, recursive BC and recursive TD3+BC campaigns for several seeds at equal "
        "deployments and samples, then aggregate per-deployment mean ± std across seeds into "
        "benchmarks/results/<name>.json and .png. Re-running the same command resumes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="campaign seeds")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to run")
    p.add_argument("--campaign", default="halfcheetah-cpu", help="BREMEN campaign preset or YAML path")
    p.add_argument(
        "--bc-campaign",
        default=None,
        help="recursive-BC campaign preset or YAML; none means '<campaign name>-bc'",
    )
    p.add_argument("--deployments", type=int, default=None, help="override the number of deployments K")
    p.add_argument("--steps-per-deployment", type=int, default=None, help="override samples per deployment")
    p.add_argument(
        "--eval-episodes", type=int, default=None, help="override evaluation episodes per candidate"
    )
    p.add_argument(
        "--train-override",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override training-config fields of bremen and bc (dotted keys, YAML values), e.g. "
        "trpo.iterations=2 ensemble.max_epochs=2 bc.steps=100; bc keeps trpo.iterations=0",
    )
    p.add_argument(
        "--td3bc-steps",
        type=int,
        default=TD3BC_STEPS,
        help="TD3+BC gradient steps per deployment (re-trained from scratch on all data so far)",
    )
    p.add_argument("--td3bc-device", default="cpu", help="torch device for d3rlpy (cpu, cuda:0)")
    p.add_argument(
        "--td3bc-python", type=Path, default=TD3BC_PYTHON, help="python of the d3rlpy venv (setup_d3rlpy.sh)"
    )
    p.add_argument("--jobs", type=int, default=1, help="(method, seed) runs in parallel (one core each)")
    p.add_argument(
        "--name", default=None, help="results name; none means the campaign's, '-smoke' if overridden"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="workspaces root; none means benchmarks/runs/<name>"
    )
    p.add_argument("--results-dir", type=Path, default=HERE / "results", help="where <name>.json/.png go")
    p.add_argument("--aggregate-only", action="store_true", help="do not run; aggregate existing workspaces")
    args = p.parse_args(argv)
    for flag in ("deployments", "steps_per_deployment", "eval_episodes", "td3bc_steps", "jobs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if len(set(args.seeds)) != len(args.seeds):
        p.error("--seeds has duplicates")
    try:
        args.overrides = parse_overrides(args.train_override)
    except ValueError as exc:
        p.error(str(exc))
    args.overridden = bool(
        args.overrides
        or args.deployments
        or args.steps_per_deployment
        or args.eval_episodes
        or args.td3bc_steps != TD3BC_STEPS
    )
    return args


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ValueError(f"--train-override '{pair}' is not KEY=VALUE (e.g. trpo.iterations=2)")
        out[key] = yaml.safe_load(raw)
    return out


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """A validated copy of a TrainConfig with dotted-key overrides; unknown keys are errors."""
    from pydantic import ValidationError

    from bremen_robot.config.loading import describe_validation_error
    from bremen_robot.config.train import TrainConfig

    data = cfg.model_dump(mode="json")
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise SystemExit(f"--train-override {key}: '{part}' is not a section of the training config")
            node = node[part]
        if parts[-1] not in node:
            raise SystemExit(f"--train-override {key}: unknown field '{parts[-1]}'; check the spelling")
        node[parts[-1]] = value
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise SystemExit(describe_validation_error(exc, "--train-override")) from None


# --------------------------------------------------------------------------- plans
@dataclass
class Job:
    method: str
    seed: int
    workspace: Path
    campaign_path: str
    campaign_update: dict[str, Any]
    overrides: dict[str, Any]
    td3bc: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"[{self.method} seed {self.seed}]"


def default_name(args: argparse.Namespace, campaign_name: str) -> str:
    return args.name or (f"{campaign_name}-smoke" if args.overridden else campaign_name)


def campaign_update(args: argparse.Namespace, cfg: Any, seed: int) -> dict[str, Any]:
    update: dict[str, Any] = {"seed": seed}
    if args.deployments:
        update["deployments"] = args.deployments
    if args.steps_per_deployment:
        update["steps_per_deployment"] = args.steps_per_deployment
    if args.eval_episodes:
        update["evaluation"] = cfg.evaluation.model_copy(update={"episodes": args.eval_episodes})
    return update


def load_campaigns(args: argparse.Namespace) -> dict[str, tuple[str, Any]]:
    """Campaign (path or name, config) per method; checks they collect equal data."""
    from bremen_robot.campaign.config import load_campaign_config

    base = load_campaign_config(args.campaign)
    out: dict[str, tuple[str, Any]] = {"bremen": (args.campaign, base), "td3bc": (args.campaign, base)}
    if "bc" in args.methods:
        bc_name = args.bc_campaign or f"{base.name}-bc"
        bc = load_campaign_config(bc_name)
        keys = ("robot", "deployments", "steps_per_deployment", "exploration_sigma", "evaluation")
        diff = [k for k in keys if getattr(bc, k) != getattr(base, k)]
        if diff:
            raise SystemExit(
                f"campaign '{bc_name}' differs from '{base.name}' in {', '.join(diff)}; "
                "the baseline must collect equal deployments and samples"
            )
        out["bc"] = (bc_name, bc)
    return out


# --------------------------------------------------------------------------- running
def _log(job: Job, msg: str) -> None:
    line = f"{job.tag} {msg}"
    print(line, flush=True)
    job.workspace.mkdir(parents=True, exist_ok=True)
    with open(job.workspace / "harness.log", "a") as f:
        f.write(f"{datetime.now().isoformat(timespec='seconds')} {line}\n")


def job_campaign(job: Job) -> Any:
    from bremen_robot.campaign.config import load_campaign_config

    return load_campaign_config(job.campaign_path).model_copy(update=job.campaign_update)


def job_train(job: Job) -> Any:
    """The training config of a bremen/bc job: the campaign's preset with the overrides."""
    from bremen_robot.config.train import load_train_config

    train = apply_overrides(load_train_config(job_campaign(job).train), job.overrides)
    # recursive BC is BC: no TRPO, whatever an override says
    if job.method == "bc" and train.trpo.iterations != 0:
        train = train.model_copy(update={"trpo": train.trpo.model_copy(update={"iterations": 0})})
    return train


def job_record(job: Job) -> dict[str, Any]:
    """Everything that decides a workspace's contents (the campaign digest misses train overrides)."""
    record: dict[str, Any] = {"method": job.method, "campaign": job_campaign(job).model_dump(mode="json")}
    if job.method == "td3bc":
        record["td3bc"] = {k: v for k, v in job.td3bc.items() if k != "python"}
    else:
        record["train"] = job_train(job).model_dump(mode="json")
    return record


# Prose, not settings: editing a preset's description must not orphan the runs made with it.
PROSE_FIELDS = ("description", "expected_time")


def same_settings(have: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    """``have`` (a workspace's harness.json) describes the same run as ``record``. Stored configs
    are re-validated first, so a config field added later with a default that keeps the old
    behavior does not orphan workspaces run before it existed; the prose fields are not compared."""
    from bremen_robot.campaign.config import CampaignConfig
    from bremen_robot.config.train import TrainConfig

    if have is None:
        return False
    have = dict(have)
    try:
        if "train" in have:
            have["train"] = TrainConfig.model_validate(have["train"]).model_dump(mode="json")
        have["campaign"] = CampaignConfig.model_validate(have["campaign"]).model_dump(mode="json")
    except (KeyError, ValueError):
        return False
    return _without_prose(have) == _without_prose(record)


def _without_prose(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    for key in ("train", "campaign"):
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if k not in PROSE_FIELDS}
    return out


def _guard(job: Job) -> None:
    """A workspace belongs to one set of settings; refuse to mix."""
    from bremen_robot.campaign.workspace import read_json, write_json_atomic

    record = job_record(job)
    path = job.workspace / "harness.json"
    have = read_json(path)
    if have is None:
        write_json_atomic(path, record)
    elif not same_settings(have, record):
        raise SystemExit(
            f"workspace '{job.workspace}' was run with other settings (see {path}); "
            "use another --out or the original options"
        )


def _add_time(job: Job, wall_s: float, complete: bool) -> None:
    from bremen_robot.campaign.workspace import read_json, write_json_atomic

    path = job.workspace / "timing.json"
    data = read_json(path) or {"runs": []}
    data["runs"].append(
        {"ended": datetime.now(timezone.utc).isoformat(), "wall_s": wall_s, "complete": complete}
    )
    data["wall_s_total"] = float(sum(r["wall_s"] for r in data["runs"]))
    write_json_atomic(path, data)


def run_job(job: Job) -> dict[str, Any]:
    """One (method, seed) run, resumable; returns {'ok': bool, 'error': str}."""
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ok = False
    try:
        if job.method == "td3bc":
            run_td3bc(job)
        else:
            run_campaign(job)
        ok = True
        return {"ok": True, "error": ""}
    except SystemExit as exc:
        _log(job, f"FAILED: {exc}")
        return {"ok": False, "error": str(exc)}
    except Exception as exc:
        _log(job, f"FAILED: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        _add_time(job, time.perf_counter() - t0, ok)


def run_campaign(job: Job) -> None:
    from bremen_robot.campaign.direct import collect_direct
    from bremen_robot.campaign.runner import Campaign

    _guard(job)
    cfg = job_campaign(job)
    camp = Campaign(
        cfg, job.workspace, auto_approve=True, collect_fn=collect_direct, log=lambda m: _log(job, m)
    )
    camp.train_cfg = train = job_train(job)
    _log(
        job,
        f"campaign {cfg.name}: {cfg.deployments} x {cfg.steps_per_deployment} samples, train {train.name}",
    )
    camp.run()
    _log(job, "done")


# --------------------------------------------------------------------------- TD3+BC loop
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
    seed = cfg.seed * 1000 + k  # the campaign's convention: equal seeds, equal random first deployment
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
            "interventions": 0,
            "return_mean": float(np.mean(returns)),
            "collector": "direct",
            "policy_id": frozen.sha256[:12],
        }
    summary["deployment"] = k
    write_json_atomic(marker, summary)
    return summary


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
    _log(job, f"deployment {k}: TD3+BC {job.td3bc['steps']} steps on d1..d{k}")
    log_path = weights.parent / "log.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=weights.parent, env=env).returncode
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
        f"{job.td3bc['steps']} gradient steps each",
    )

    def evaluate(path: Path, artifact: Path | None, seed: int) -> dict[str, Any]:
        if (have := read_json(path)) is None:
            have = evaluate_policy(artifact, env_spec, cfg.evaluation.episodes, seed)
            write_json_atomic(path, have)
        return dict(have)

    rows: list[dict[str, Any]] = []
    digests: list[str] = []
    prev: Path | None = None
    deployed = evaluate(job.workspace / "d1" / "eval_random.json", None, cfg.seed)
    for k in range(1, cfg.deployments + 1):
        if k > 1:
            deployed = evaluate(job.workspace / f"d{k - 1}" / "eval.json", prev, cfg.seed + 7)
        collected = td3bc_collect(job, cfg, robot, k, prev)
        digests.append(Dataset.load(job.workspace / f"d{k}" / "data.npz").digest())
        weights = td3bc_train(job, task, k)
        prev = td3bc_export(weights, job.workspace / f"d{k}" / "policy", task, robot, list(digests))
        cand = evaluate(job.workspace / f"d{k}" / "eval.json", prev, cfg.seed + 7)
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
                "interventions": 0,
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


# --------------------------------------------------------------------------- aggregation
def read_seed(job: Job, deployments: int) -> dict[str, Any]:
    """Per-seed curve from a workspace: k = 0 is the random policy, k >= 1 the candidate
    trained on deployments 1..k (same layout for all methods). A workspace run with other
    settings than this command's is left out, never mixed in."""
    from bremen_robot.campaign.workspace import read_json

    ws = job.workspace
    have = read_json(ws / "harness.json")
    if have is None:
        return {"returns": [], "samples": [], "complete": False, "note": "not run"}
    if not same_settings(have, job_record(job)):
        return {"returns": [], "samples": [], "complete": False, "note": "left out: run with other settings"}
    returns: list[float | None] = []
    samples: list[int | None] = []
    rnd = read_json(ws / "d1" / "eval_random.json")
    returns.append(rnd["mean"] if rnd else None)
    samples.append(0)
    total = 0
    for k in range(1, deployments + 1):
        col = read_json(ws / f"d{k}" / "collect.json")
        ev = read_json(ws / f"d{k}" / "eval.json")
        if col is None or ev is None:
            break
        total += int(col["steps"])
        returns.append(float(ev["mean"]))
        samples.append(total)
    timing = read_json(ws / "timing.json") or {}
    complete = len(returns) == deployments + 1 and returns[0] is not None
    return {
        "returns": returns,
        "samples": samples,
        "complete": complete,
        "wall_s": timing.get("wall_s_total"),
    }


def aggregate(
    args: argparse.Namespace,
    name: str,
    jobs: list[Job],
    campaigns: dict[str, tuple[str, Any]],
    trains: dict[str, Any],
) -> dict[str, Any]:
    from bremen_robot.robot_config import load_robot_config

    base = campaigns["bremen"][1].model_copy(update=campaign_update(args, campaigns["bremen"][1], 0))
    K = base.deployments
    per_method: dict[str, Any] = {}
    for method in args.methods:
        seeds = {j.seed: read_seed(j, K) for j in jobs if j.method == method}
        per_method[method] = {
            "label": LABELS[method],
            "campaign": campaigns[method][1].name + (" + TD3+BC loop" if method == "td3bc" else ""),
            "train": trains.get(method),
            "seeds": {str(s): v for s, v in seeds.items()},
        }
    rows = []
    for k in range(K + 1):
        row: dict[str, Any] = {"deployments": k, "samples": k * base.steps_per_deployment}
        for method in args.methods:
            vals = [
                v["returns"][k]
                for v in per_method[method]["seeds"].values()
                if len(v["returns"]) > k and v["returns"][k] is not None
            ]
            row[method] = {
                "mean": float(np.mean(vals)) if vals else None,
                "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else None),
                "n_seeds": len(vals),
                "per_seed": vals,
            }
        rows.append(row)
    robot = load_robot_config(base.robot)
    target: dict[str, Any] = {"applies": robot.task == "halfcheetah"}
    if target["applies"]:
        kt = min(TARGET_DEPLOYMENTS, K)
        b = rows[kt].get("bremen", {})
        c = rows[kt].get("bc", {})
        target.update(
            {
                "rule": f"BREMEN mean of 3 seeds after <= {TARGET_DEPLOYMENTS} deployments "
                f">= {TARGET_RETURN:.0f} and above recursive BC at equal data (DESIGN.md §5)",
                "at_deployments": kt,
                "bremen": b.get("mean"),
                "bc": c.get("mean"),
            }
        )
        if b.get("n_seeds", 0) >= 3 and c.get("n_seeds", 0) >= 3 and kt == TARGET_DEPLOYMENTS:
            target["met"] = bool(b["mean"] >= TARGET_RETURN and b["mean"] > c["mean"])
        else:
            target["met"] = None
            target["why_undecided"] = "needs 3 complete seeds of bremen and bc with 5 deployments"
    import torch

    return {
        "name": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + shlex.join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]]),
        "smoke": args.overridden,
        "campaign": base.name,
        "task": robot.task,
        "deployments": K,
        "steps_per_deployment": base.steps_per_deployment,
        "exploration_sigma": base.exploration_sigma,
        "evaluation_episodes": base.evaluation.episodes,
        "overrides": {
            "deployments": args.deployments,
            "steps_per_deployment": args.steps_per_deployment,
            "eval_episodes": args.eval_episodes,
            "train": args.overrides,
            "td3bc_steps": args.td3bc_steps,
        },
        "seeds": args.seeds,
        "std": "sample std across seeds (ddof=1) of each seed's mean evaluation return",
        "x_axis": "deployments = number of deployments whose data trained the candidate (0 = the uniform "
        "random policy); samples = transitions collected in those deployments",
        "per_deployment": rows,
        "methods": per_method,
        "target": target,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        },
    }


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in (
        (axes[0], "deployments", "deployments"),
        (axes[1], "samples", "samples collected"),
    ):
        for method in result["methods"]:
            pts = [(r[key], r[method]) for r in result["per_deployment"] if r[method]["mean"] is not None]
            if not pts:
                continue
            xs = np.array([p[0] for p in pts], float)
            mean = np.array([p[1]["mean"] for p in pts])
            std = np.array([p[1]["std"] for p in pts])
            n = max(p[1]["n_seeds"] for p in pts)
            ax.plot(xs, mean, marker="o", color=COLORS[method], label=f"{LABELS[method]} (n={n})")
            ax.fill_between(xs, mean - std, mean + std, color=COLORS[method], alpha=0.2)
        if result["target"].get("applies"):
            ax.axhline(TARGET_RETURN, color="gray", ls="--", lw=1, label="DESIGN.md §5 target")
        if key == "deployments":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(label)
        ax.set_ylabel("evaluation return (mean action)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    title = f"{result['campaign']}: {result['task']}, mean ± std over seeds {result['seeds']}"
    if result["smoke"]:
        o = result["overrides"]
        pairs = {
            **{k: v for k, v in o.items() if k not in ("train", "td3bc_steps") and v is not None},
            **o["train"],
        }
        changed = ", ".join(f"{k}={v}" for k, v in pairs.items()) or "sizes"
        title = f"OVERRIDDEN ({changed}), not the preset's result - " + title
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def table(result: dict[str, Any]) -> str:
    methods = list(result["methods"])
    head = f"{'deployments':>11} {'samples':>9} " + " ".join(f"{SHORT[m]:>26}" for m in methods)
    lines = [head]
    for r in result["per_deployment"]:
        cells = []
        for m in methods:
            c = r[m]
            cells.append(
                f"{'-':>26}"
                if c["mean"] is None
                else f"{c['mean']:9.1f} ± {c['std']:7.1f} (n={c['n_seeds']})".rjust(26)
            )
        k = "0 (random)" if r["deployments"] == 0 else str(r["deployments"])
        lines.append(f"{k:>11} {r['samples']:>9} " + " ".join(cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from bremen_robot.errors import BremenError

    try:
        campaigns = load_campaigns(args)
    except BremenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base = campaigns["bremen"][1]
    name = default_name(args, base.name)
    out = (args.out or HERE / "runs" / name).resolve()
    td3bc = {
        "steps": args.td3bc_steps,
        "device": args.td3bc_device,
        "python": str(args.td3bc_python),
        "retrain": "from scratch on all data so far",
    }
    jobs = [
        Job(
            method=m,
            seed=s,
            workspace=out / m / f"seed{s}",
            campaign_path=campaigns[m][0],
            campaign_update=campaign_update(args, campaigns[m][1], s),
            overrides=args.overrides,
            td3bc=td3bc if m == "td3bc" else {},
        )
        for s in args.seeds
        for m in args.methods
    ]
    from bremen_robot.config.train import load_train_config

    trains: dict[str, Any] = {}
    for m in args.methods:
        if m == "td3bc":
            trains[m] = {k: v for k, v in td3bc.items() if k != "python"} | {"algorithm": "d3rlpy TD3PlusBC"}
        else:
            cfg = apply_overrides(load_train_config(campaigns[m][1].train), args.overrides)
            trains[m] = {"preset": cfg.name, "trpo_iterations": 0 if m == "bc" else cfg.trpo.iterations}
    if "td3bc" in args.methods and not args.aggregate_only and not args.td3bc_python.is_file():
        print(
            f"error: no d3rlpy venv at {args.td3bc_python}; run benchmarks/setup_d3rlpy.sh first",
            file=sys.stderr,
        )
        return 2
    failed: list[str] = []
    if not args.aggregate_only:
        print(f"workspaces under {out}; {len(jobs)} runs, {args.jobs} at a time", flush=True)
        if args.jobs == 1:
            results = [run_job(j) for j in jobs]
        else:
            with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
                results = list(pool.map(run_job, jobs))
        failed = [f"{j.tag} {r['error']}" for j, r in zip(jobs, results) if not r["ok"]]
    result = aggregate(args, name, jobs, campaigns, trains)
    result["workspaces"] = os.path.relpath(out, REPO) if out.is_relative_to(REPO) else str(out)
    result["failed_runs"] = failed
    from bremen_robot.campaign.workspace import write_json_atomic

    json_path = args.results_dir / f"{name}.json"
    write_json_atomic(json_path, result)
    png_path = plot(result, args.results_dir / f"{name}.png")
    print()
    print(table(result))
    t = result["target"]
    if t.get("applies"):
        verdict = {True: "MET", False: "NOT MET", None: "undecided"}[t["met"]]
        print(f"\ntarget: {t['rule']}: {verdict}")
    print(f"results: {json_path}, plot: {png_path}")
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
