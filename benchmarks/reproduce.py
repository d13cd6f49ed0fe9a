"""Reproduction harness (issue 7): BREMEN vs recursive BC vs a recursive model-free offline baseline.

For every seed it runs, each in its own workspace under ``--out``:

* ``bremen``: the campaign (default ``halfcheetah-cpu``), as ``bremen campaign --collector direct
  --auto-approve`` would, through the Python API;
* ``bremen_select``: the same campaign with candidate selection (issue 16): the trainer keeps BC
  and TRPO snapshots and scores them offline (``selection.enabled: true``), and the campaign runs
  the survivors in the twin, the engine that did not collect the data (``selection.twin: true``;
  PyBullet for the MuJoCo data here);
* ``bc``: the same campaign with the recursive behavior-cloning preset (campaign ``<campaign>-bc``,
  training with ``trpo.iterations: 0``, so each candidate is the cloned policy; without such a
  preset, the campaign's own training preset with TRPO off and a token ensemble);
* ``td3bc``: the same loop with d3rlpy's TD3+BC in place of the trainer: deployment 1 uniform
  random, then each deployment collects with the previous TD3+BC actor + N(0, sigma^2), and
  TD3+BC is re-trained from scratch on all data so far (``benchmarks/td3bc_step.py`` in
  ``benchmarks/.venv-d3rlpy``).

All methods collect the same number of samples per deployment with the same seeds (deployment 1's
random data is identical across methods for a seed), and each candidate trained on deployments
1..k is evaluated with the same evaluation (mean action, ``evaluation.episodes`` episodes, same
seed). Each run is a Ray task (``reproduce_ray.py``): without ``--cluster`` on a Ray the command
starts on this machine (no other node, dashboard off, token authentication, ``--jobs`` CPUs), with
``--cluster ADDRESS`` on a running cluster. Re-running the same command skips finished work. Results go to
``benchmarks/results/<name>.json`` and ``<name>.png``, and tables are printed (returns, training
wall time per deployment, and the twin steps of ``bremen_select``).

Example (the full reproduction)::

    ./benchmarks/setup_d3rlpy.sh
    python benchmarks/reproduce.py --seeds 0 1 2 --methods bremen bremen_select bc td3bc --jobs 2
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by file path (the tests): its sibling modules must import
    sys.path.insert(0, str(HERE))

from reproduce_aggregate import (  # noqa: E402
    aggregate,
    dropped_records,
    finished_elsewhere,
    overrides_record,
    plot,
    read_seed,
    results_file_lock,
    table,
)
from reproduce_args import parse_args  # noqa: E402
from reproduce_common import (  # noqa: E402  (re-exported: trpo_probe.py and others import them here)
    LABELS,
    METHODS,
    REPO,
    Job,
    apply_campaign_overrides,
    apply_overrides,
    campaign_task,
    campaign_update,
    job_campaign,
    job_record,
    job_train,
    method_campaign_overrides,
    method_train_overrides,
    parse_overrides,
    same_settings,
)
from reproduce_ray import run_campaign, run_job, run_jobs  # noqa: E402
from reproduce_td3bc import bremen_seconds  # noqa: E402

__all__ = [
    "LABELS",
    "apply_overrides",
    "job_campaign",
    "job_record",
    "job_train",
    "load_campaigns",
    "main",
    "parse_args",
    "parse_overrides",
    "plan_jobs",
    "read_seed",
    "run_campaign",
    "run_job",
    "run_jobs",
    "same_settings",
]


# --------------------------------------------------------------------------- plans
def default_name(args: argparse.Namespace, campaign_name: str) -> str:
    return args.name or (f"{campaign_name}-smoke" if args.overridden else campaign_name)


def load_campaigns(args: argparse.Namespace) -> dict[str, tuple[str, Any]]:
    """Campaign (path or name, config) per method; checks they collect equal data. Sets
    ``args.bc_derived`` when recursive BC runs on the campaign itself (no '<name>-bc' preset)."""
    from bremen_robot.campaign.config import REPO_CAMPAIGNS, load_campaign_config

    base = load_campaign_config(args.campaign)
    out: dict[str, tuple[str, Any]] = {m: (args.campaign, base) for m in ("bremen", "bremen_select", "td3bc")}
    args.bc_derived = False
    if "bc" in args.methods:
        bc_name = args.bc_campaign or f"{base.name}-bc"
        if args.bc_campaign is None and not (REPO_CAMPAIGNS / f"{bc_name}.yaml").is_file():
            args.bc_derived = True
            out["bc"] = (args.campaign, base)
            return out
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


def aggregation_scope(
    args: argparse.Namespace, out: Path, sources: list[dict[str, Any]] | None = None
) -> argparse.Namespace:
    """The arguments the results file is aggregated with: the methods and seeds asked for, every
    method and seed that already has a workspace under ``out``, and every one with a record in
    ``sources`` (the results file being rewritten, then any ``--carry-from``). Runs of one
    method or one seed at a time then each rewrite ``<name>.json`` without dropping the others'
    results (a workspace or record made with other settings is still left out, by
    ``read_seed`` and ``carried_seed``)."""
    recorded: dict[str, set[int]] = {}
    for source in sources or []:
        for m, entry in source.get("methods", {}).items():
            recorded.setdefault(m, set()).update(
                int(s) for s, r in entry.get("seeds", {}).items() if r.get("returns")
            )
    methods = [m for m in METHODS if m in args.methods or (out / m).is_dir() or recorded.get(m)]
    seeds = set(args.seeds)
    for m in methods:
        seeds |= recorded.get(m, set())
        for d in (out / m).glob("seed*"):
            if d.is_dir() and d.name[4:].isdigit():
                seeds.add(int(d.name[4:]))
    return argparse.Namespace(**{**vars(args), "methods": methods, "seeds": sorted(seeds)})


def budget_file(args: argparse.Namespace) -> Path:
    """The results file TD3+BC's seconds budget is read from: ``--td3bc-seconds-from``, else the
    campaign's own (``<results-dir>/<campaign>.json``)."""
    return args.td3bc_seconds_from or args.results_dir / f"{Path(args.campaign).stem}.json"


def td3bc_budget(args: argparse.Namespace) -> tuple[list[float] | None, str]:
    """TD3+BC's seconds per deployment (:func:`bremen_seconds` of :func:`budget_file`) with
    ``--td3bc-seconds bremen``, and why there are none; ``(None, "")`` with ``none``."""
    if args.td3bc_seconds == "none" or "td3bc" not in args.methods:
        return None, ""
    from bremen_robot.campaign.config import load_campaign_config
    from bremen_robot.campaign.workspace import read_json
    from bremen_robot.errors import BremenError

    campaign = load_campaign_config(args.campaign)
    K = args.deployments or campaign.deployments
    path = budget_file(args)
    fix = (
        "pass a benchmarks/results/<name>.json of reproduce.py as --td3bc-seconds-from"
        if args.td3bc_seconds_from is not None
        else "move it aside, or pass --td3bc-seconds none"
    )
    try:
        result = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BremenError(f"{path} is not JSON ({type(exc).__name__}); {fix}") from None
    if result is not None and not (isinstance(result, dict) and isinstance(result.get("methods"), dict)):
        raise BremenError(f"{path} is not a results file of reproduce.py; {fix}")
    return bremen_seconds(result, K)


def budget_hint(args: argparse.Namespace, why: str) -> str:
    """What to do when TD3+BC has no seconds budget (``why``): run BREMEN's seeds first, unless
    that cannot give one (a run at another size than the campaign's results file, whose times
    were measured at the campaign's size; or seeds already complete without times, which a
    rerun skips: those get their times from a rerun under another ``--name``, passed as
    ``--td3bc-seconds-from``); else ``--td3bc-seconds none``."""
    none = "pass --td3bc-seconds none for a budget by --td3bc-steps alone"
    if args.steps_per_deployment is not None:
        return f"{none} (BREMEN's times at the campaign's size do not fit --steps-per-deployment)"
    if "no training time" in why:
        return (
            f"rerun BREMEN under another --name (the seeds of {budget_file(args)} are complete without "
            "times, so a rerun skips them) and pass that name's results file as --td3bc-seconds-from, "
            f"or {none} (docs/results.md, 'A fair budget for TD3+BC')"
        )
    if args.td3bc_seconds_from is not None:
        return (
            f"complete BREMEN's and selection's seeds 0-2 in {args.td3bc_seconds_from} first (a method run "
            f"under another name joins it with --carry-from), or {none}"
        )
    return (
        f"run 'python benchmarks/reproduce.py --campaign {args.campaign} --seeds 0 1 2 --methods bremen "
        f"bremen_select' first, or {none}"
    )


def plan_jobs(
    args: argparse.Namespace, campaigns: dict[str, tuple[str, Any]], out: Path
) -> tuple[list[Job], dict[str, Any]]:
    """One job per (seed, method), each in ``out/<method>/seed<s>``, and a summary of each method's
    training. Checks every job's settings now, so a bad override fails before any run starts."""
    from bremen_robot.campaign.config import data_engine
    from bremen_robot.selection import twin_engine

    # every key, also selection.* that only bremen_select's runs get: a misspelt one would
    # otherwise pass unnoticed (and be recorded) whenever bremen_select is not among the methods
    apply_campaign_overrides(campaigns["bremen"][1], args.campaign_overrides)
    td3bc = {
        "steps": args.td3bc_steps,
        "device": args.td3bc_device,
        "python": str(args.td3bc_python),
        "retrain": "from scratch on all data so far",
        "min_seconds": td3bc_budget(args)[0],
    }
    jobs = [
        Job(
            method=m,
            seed=s,
            workspace=out / m / f"seed{s}",
            campaign_path=campaigns[m][0],
            campaign_update=campaign_update(args, campaigns[m][1], s),
            overrides=method_train_overrides(
                m, args.overrides, bool(getattr(args, "bc_derived", False)), campaign_task(campaigns[m][1])
            ),
            td3bc=td3bc if m == "td3bc" else {},
            campaign_overrides=method_campaign_overrides(m, args.campaign_overrides),
        )
        for s in args.seeds
        for m in args.methods
    ]
    for job in jobs:  # --deployments and --seeds within the campaign config's bounds, before any run
        job_campaign(job)
    trains: dict[str, Any] = {}
    for job in jobs:
        if job.method in trains:
            continue
        m, cfg = job.method, job_campaign(job)
        if m == "td3bc":
            trains[m] = {k: v for k, v in td3bc.items() if k != "python"} | {"algorithm": "d3rlpy TD3PlusBC"}
            continue
        train = job_train(job)
        trains[m] = {"preset": train.name, "trpo_iterations": train.trpo.iterations}
        if m == "bc" and getattr(args, "bc_derived", False):
            trains[m]["derived"] = f"campaign {cfg.name}'s preset, TRPO off, token ensemble"
        if train.selection.enabled:
            trains[m]["selection"] = train.selection.model_dump(mode="json")
            trains[m]["campaign_selection"] = cfg.selection.model_dump(mode="json")
            if cfg.selection.twin:  # refuses a twin on the data's own engine
                trains[m]["campaign_selection"]["twin_engine"] = twin_engine(
                    data_engine(cfg), cfg.selection.twin_engine
                )
    return jobs, trains


def parked_not_unparked(jobs: list[Job], out: Path) -> list[Path]:
    """The parked copies (``benchmarks/park_runs.py``) of jobs that have no workspace here: running
    them would start the seed over while its further-along run waits in git."""
    parked = HERE / "parked" / out.name
    if out.parent != HERE / "runs":
        return []  # a custom --out: park_runs.py parks benchmarks/runs only
    return [
        p
        for j in jobs
        if not (j.workspace / "harness.json").is_file()
        and (p := parked / j.method / f"seed{j.seed}.tar.gz").is_file()
    ]


def previous_results(path: Path) -> dict[str, Any] | None:
    """The results file ``path`` as the harness last wrote it, None if there is none yet. One line
    (BremenError) when the file is something else, which the harness would otherwise write over
    without a copy (a study's JSON in benchmarks/results/ under the same --name), or is not JSON."""
    from bremen_robot.campaign.workspace import read_json
    from bremen_robot.errors import BremenError

    try:
        data = read_json(path)
    except ValueError as exc:
        raise BremenError(
            f"{path} is not JSON ({exc}); move it aside, or pick another --name or --results-dir"
        ) from None
    if data is not None and not (isinstance(data, dict) and isinstance(data.get("methods"), dict)):
        raise BremenError(
            f"{path} is not a results file of reproduce.py and would be written over; "
            "pick another --name or --results-dir"
        )
    return data


def other_settings(jobs: list[Job]) -> list[Job]:
    """The jobs whose workspace was run with other settings. Each run refuses its own (``_guard``),
    but only once it starts, after the others have run, and the results file is then rewritten
    without that run's records; so the command refuses before anything runs."""
    from bremen_robot.campaign.workspace import read_json

    return [
        j
        for j in jobs
        if (have := read_json(j.workspace / "harness.json")) is not None
        and not same_settings(have, job_record(j))
    ]


def carry_sources(paths: list[Path]) -> list[dict[str, Any]]:
    """The ``--carry-from`` results files, read; one line naming a file that is not one."""
    from bremen_robot.campaign.workspace import read_json
    from bremen_robot.errors import BremenError

    out = []
    for path in paths:
        try:
            data = read_json(path)
        except ValueError:
            data = None
        if not isinstance(data, dict) or "methods" not in data or "name" not in data:
            raise BremenError(
                f"--carry-from {path}: not a results file of reproduce.py; "
                "pass a benchmarks/results/<name>.json"
            )
        out.append(data)
    return out


def plan_scope(
    args: argparse.Namespace, out: Path, sources: list[dict[str, Any]]
) -> tuple[argparse.Namespace, list[Job], dict[str, tuple[str, Any]], dict[str, Any]]:
    """The aggregation's arguments, jobs, campaigns and training summaries (``aggregation_scope``)."""
    scope = aggregation_scope(args, out, sources)
    campaigns = load_campaigns(scope)
    jobs, trains = plan_jobs(scope, campaigns, out)
    return scope, jobs, campaigns, trains


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
    from bremen_robot.campaign.workspace import write_json_atomic

    base = campaigns["bremen"][1]
    name = default_name(args, base.name)
    out = (args.out or HERE / "runs" / name).resolve()
    json_path = args.results_dir / f"{name}.json"
    try:
        jobs, trains = plan_jobs(args, campaigns, out)
        extra = carry_sources(args.carry_from)
        previous = previous_results(json_path)
        sources = [previous, *extra] if previous else extra
        plan_scope(args, out, sources)  # fails now, not after hours of runs
    except BremenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for job in finished_elsewhere(jobs, sources, trains, overrides_record(args)):
        if not args.aggregate_only:
            print(f"{job.tag} complete in {json_path} (same settings); not run again")
        jobs.remove(job)
    if not args.aggregate_only and (unparked := parked_not_unparked(jobs, out)):
        print(
            f"error: {unparked[0]} holds a parked run that is not unparked; run 'python "
            "benchmarks/park_runs.py unpark' first, or remove that file to start the seed over",
            file=sys.stderr,
        )
        return 2
    if args.aggregate_only and not sources and not any(out.glob("*/seed*/harness.json")):
        print(
            f"error: nothing to aggregate: no workspace under {out} and no results file {json_path}; "
            "check --campaign, --name, --out and --results-dir (as the runs were started with)",
            file=sys.stderr,
        )
        return 2
    budget, why = td3bc_budget(args)
    if "td3bc" in args.methods and not args.aggregate_only and args.td3bc_seconds == "bremen" and not budget:
        hint = budget_hint(args, why)
        print(
            f"error: TD3+BC trains at least BREMEN's time per deployment, but {why}; {hint}", file=sys.stderr
        )
        return 2
    if not args.aggregate_only and (clash := other_settings(jobs)):
        print(
            f"error: workspace '{clash[0].workspace}' was run with other settings (see its "
            "harness.json); use the options it was run with, or another --name or --out",
            file=sys.stderr,
        )
        return 2
    if "td3bc" in args.methods and not args.aggregate_only and not args.td3bc_python.is_file():
        print(
            f"error: no d3rlpy venv at {args.td3bc_python}; run benchmarks/setup_d3rlpy.sh first",
            file=sys.stderr,
        )
        return 2
    failed: list[str] = []
    ran_on: dict[str, object] = {}
    if not args.aggregate_only and jobs:
        # started in the background (nohup ... &) it inherits SIGINT ignored, and Python then
        # never raises KeyboardInterrupt: 'pkill -INT' would not stop the runs before they end
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        where = f"on Ray cluster {args.cluster}" if args.cluster else "on Ray on this machine"
        print(f"workspaces under {out}; {len(jobs)} runs, {args.jobs} at a time {where}", flush=True)
        try:
            results, ran_on = run_jobs(jobs, out, parallel=args.jobs, cluster=args.cluster)
        except BremenError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # Ray and its runs are stopped (run_jobs); their stages resume
            print(
                "interrupted: the runs stopped; re-run the same command to resume them "
                "(the stage each was in is done again)",
                file=sys.stderr,
            )
            return 130
        failed = [f"{j.tag} {r['error']}" for j, r in zip(jobs, results) if not r["ok"]]
    with results_file_lock(json_path):  # read again: another harness may have rewritten it meanwhile
        try:
            previous = previous_results(json_path)
        except BremenError as exc:  # replaced while the runs ran: the workspaces keep every result
            print(
                f"error: {exc}; the runs' workspaces are kept: aggregate them with --aggregate-only",
                file=sys.stderr,
            )
            return 2
        sources = [previous, *extra] if previous else extra
        scope, scope_jobs, scope_campaigns, scope_trains = plan_scope(args, out, sources)
        result = aggregate(scope, name, scope_jobs, scope_campaigns, scope_trains, sources)
        result["workspaces"] = os.path.relpath(out, REPO) if out.is_relative_to(REPO) else str(out)
        result["failed_runs"] = failed
        if ran_on:
            result["ran_on"] = ran_on
        dropped = dropped_records(previous, result)
        if dropped:  # left out or replaced: the old file stays beside the new one, never overwritten
            stamp = str(previous.get("created", "undated")).replace(":", "")  # type: ignore[union-attr]
            kept = json_path.with_name(f"{name}.replaced-{stamp}.json")
            n = 1
            while kept.exists():  # two rewrites within one second: the first copy stays
                kept, n = json_path.with_name(f"{name}.replaced-{stamp}-{n}.json"), n + 1
            write_json_atomic(kept, previous)
            print(f"note: {', '.join(dropped)} left out or replaced; the file they were in is kept as {kept}")
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
