"""The reproduction harness's (method, seed) runs as Ray tasks (issue 17).

Without ``--cluster`` the harness starts Ray on this machine for the duration of the command:
no other node, dashboard off, token authentication on (a fresh token in a private temporary
file unless ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH`` name one), ``num_cpus = --jobs``. With
``--cluster ADDRESS`` it is a driver of that running cluster (``auto``: the one started on this
machine) and keeps at most ``--jobs`` runs in flight there. Every run asks Ray for one CPU, so
Ray never places one on a robot node (those offer no CPUs, docs/cluster.md).

A run's workspace is written by the node that runs it, under the same ``--out`` path, so on a
multi-machine cluster ``--out`` must be a filesystem every CPU node mounts and the project must
be checked out at the same path there. Each run first checks that it sees a marker the driver
wrote under ``--out`` and fails in one line (nothing run) when it does not. The marker's name
carries the driver's token, so two drivers sharing one ``--out`` (one per method, say) never
read or remove each other's.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reproduce_common import HERE, REPO, Job, _add_time, _guard, _log, job_campaign, job_train

MARKER = ".harness-driver"


def driver_marker(out: Path, token: str) -> Path:
    """This driver's marker under ``out``: its own file, named by its token."""
    return out / f"{MARKER}-{token}"


def sees_driver_out(marker: str, token: str) -> bool:
    """Whether this node reads the driver's token in the driver's marker."""
    try:
        return Path(marker).read_text().strip() == token
    except OSError:
        return False


# --------------------------------------------------------------------------- one run
def run_job(job: Job) -> dict[str, Any]:
    """One (method, seed) run, resumable; returns {'ok': bool, 'error': str}."""
    import torch
    from reproduce_td3bc import run_td3bc

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


def run_on_node(job: Job, cwd: str, marker: str, token: str) -> dict[str, Any]:
    """The Ray task body: the driver's working directory (relative config paths), a check that
    this node sees the driver's ``--out``, then the run."""
    if not sees_driver_out(marker, token):
        return {
            "ok": False,
            "error": f"node {socket.gethostname()} does not see the driver's --out ({Path(marker).parent}); "
            "put --out on a filesystem every CPU node of the cluster mounts, or run without --cluster",
        }
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return run_job(job)


# --------------------------------------------------------------------------- Ray
def _runtime_env() -> dict[str, Any]:
    """What every run's worker needs: the harness modules and the project importable, and the
    GPUs visible as they were to the old process pool (Ray hides them from a task that asks for
    none; the trainer's ``device: auto`` and ``--td3bc-device cuda:0`` decide instead)."""
    path = os.pathsep.join(p for p in (str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path, "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}}


def start_local(ray: Any, jobs: int, tmp: Path) -> None:
    """Ray on this machine only: dashboard off, token authentication on.

    Ray turns token authentication on by itself for a new local cluster when ``RAY_AUTH_MODE``
    is unset (it re-reads its cached config then; setting the variable here, after ray was
    imported, would not reach this process's own client). The token is a fresh one in a private
    file unless the environment names one. Checked after start: token mode or nothing runs."""
    from bremen_robot.errors import BremenError

    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None and mode.lower() != "token":
        raise BremenError(
            f"RAY_AUTH_MODE={mode}: the harness runs Ray with token authentication only; "
            "unset RAY_AUTH_MODE or set it to 'token'"
        )
    if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        token = tmp / "auth_token"
        token.touch(mode=0o600)
        token.write_text(secrets.token_hex(32))
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)
    ray.init(
        address="local",
        num_cpus=jobs,
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,  # runs exchange small dicts only
        _temp_dir=str(tmp / "ray"),
        runtime_env=_runtime_env(),
        logging_level="ERROR",
        configure_logging=True,
        log_to_driver=True,  # the runs' progress lines, prefixed by Ray with the worker's pid
    )
    if not _token_auth():
        ray.shutdown()
        raise BremenError(
            "Ray started without token authentication; set RAY_AUTH_MODE=token before running "
            "(docs/cluster.md)"
        )


def _token_auth() -> bool:
    from ray._raylet import AuthenticationMode, get_authentication_mode

    return bool(get_authentication_mode() == AuthenticationMode.TOKEN)


def connect_cluster(ray: Any, address: str) -> None:
    from bremen_robot.cluster.ray_env import connect

    try:
        ray.init(
            address=address,
            runtime_env=_runtime_env(),
            logging_level="ERROR",
            configure_logging=True,
            log_to_driver=True,
        )
    except (ConnectionError, RuntimeError, ValueError):
        connect(address)  # its one-line error names the fix


def run_jobs(
    jobs: list[Job],
    out: Path,
    *,
    parallel: int,
    cluster: str | None = None,
    task: Callable[..., dict[str, Any]] = run_on_node,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every job as a Ray task (one CPU each, at most ``parallel`` at once); results in job order,
    and where they ran (for the results file)."""
    from bremen_robot.cluster.ray_env import require_ray

    ray = require_ray()
    out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    marker = driver_marker(out, token)
    marker.write_text(token)
    tmp = Path(tempfile.mkdtemp(prefix="brrep-", dir="/tmp"))  # short: Ray's socket paths
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    try:
        if cluster is None:
            start_local(ray, parallel, tmp)
        else:
            connect_cluster(ray, cluster)
        where = {
            "ray": ray.__version__,
            "cluster": cluster or "local",
            "runs_at_once": parallel,
            "token_auth": _token_auth(),
            "nodes": sorted({str(n.get("NodeManagerAddress")) for n in ray.nodes() if n.get("Alive")}),
        }
        remote = ray.remote(num_cpus=1, max_retries=0)(task)
        results: list[dict[str, Any] | None] = [None] * len(jobs)
        todo = list(enumerate(jobs))
        running: dict[Any, int] = {}
        cwd = os.getcwd()
        while todo or running:
            while todo and len(running) < parallel:
                i, job = todo.pop(0)
                running[remote.remote(job, cwd, str(marker), token)] = i
            ready, _ = ray.wait(list(running), num_returns=1)
            i = running.pop(ready[0])
            try:
                results[i] = dict(ray.get(ready[0]))
            except Exception as exc:  # the worker or its node died: the run resumes when re-run
                from bremen_robot.cluster.fleet import _one_line

                results[i] = {"ok": False, "error": f"Ray: {_one_line(exc)}"}
        return [r or {"ok": False, "error": "not run"} for r in results], where
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for key, value in saved.items():  # the private token is gone with tmp
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        marker.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["driver_marker", "run_campaign", "run_job", "run_jobs", "run_on_node", "sees_driver_out"]
