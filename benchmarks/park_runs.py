"""Park unfinished reproduction runs in git, and bring them back in a fresh checkout.

A session's machine, and with it ``benchmarks/runs/``, does not outlive the session, and several
runs of the suite (issue 16) take longer than one session: without this they could never finish.
``park`` packs each workspace under ``benchmarks/runs/`` whose complete record is not yet in its
results file (unfinished, or finished but not aggregated) into
``benchmarks/parked/<name>/<method>/seed<s>.tar.gz``, small enough to commit, by leaving out what
can be made again exactly:

* each deployment's ``data.npz``: collection in the harness is a seeded direct rollout in MuJoCo
  (``collect_direct`` and the TD3+BC loop), so it is re-collected from the recorded recipe (policy
  artifact in the workspace, seed, noise, steps) and must reproduce the recorded digest;
* the ensemble of every deployment but the latest trained one (only the latest warm-starts the
  next training; the analysis scripts that read older ones do not work on an unparked run);
* stage outputs that were never finished (a training folder without its manifest, anything
  set aside as ``*.incomplete-N``): the harness would set them aside and redo them anyway.

``unpark`` unpacks each parked run whose workspace does not exist yet, re-collects its data,
checks every digest, and only then moves it into place; a run whose data does not come back
identical is left beside it, never installed. A parked copy of a run whose complete record the
results file holds (aggregated after it was parked) is removed instead of unpacked. Either
command exits 1 when a run was left unparked or not installed. Neither command touches a workspace's files;
``park`` replaces a run's parked copy with its newer state, and removes the copy of a run that
has since finished (its record is in the results file; git history keeps the copy).
Stop the harness first (``park`` refuses a workspace whose lock a campaign or TD3+BC loop holds)::

    python benchmarks/park_runs.py park      # at the end of a session, then commit benchmarks/parked
    python benchmarks/park_runs.py unpark    # in a new checkout, then re-run the harness commands
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:  # loaded by file path (the tests): its sibling modules must import
    sys.path.insert(0, str(HERE))
from reproduce_common import stored_campaign  # noqa: E402

from bremen_robot.campaign.seeds import SeedLayout, collection_seed  # noqa: E402

RECIPE_FILE = "parked.json"
UNPARKED_FILE = "unparked.json"  # in an unparked workspace whose re-collected data differ
_DEPLOYMENT = re.compile(r"^d(\d+)$")
_SET_ASIDE = re.compile(r"\.(incomplete|interrupted)-\d+$")


def deployments(ws: Path) -> list[int]:
    """The deployment numbers with a ``d<k>`` folder in ``ws``, ascending."""
    found = [int(m.group(1)) for p in ws.iterdir() if p.is_dir() and (m := _DEPLOYMENT.match(p.name))]
    return sorted(found)


def finished(ws: Path) -> bool:
    """Every deployment the run asked for has its candidate's evaluation (the harness's own test)."""
    harness = json.loads((ws / "harness.json").read_text())
    wanted = int(harness["campaign"]["deployments"])
    return all((ws / f"d{k}" / "eval.json").is_file() for k in range(1, wanted + 1))


def artifacts_by_sha(ws: Path) -> dict[str, Path]:
    """Every policy artifact in ``ws`` (registry copies, training outputs, TD3+BC exports) by the
    sha256 its manifest records, as a path relative to ``ws``."""
    out: dict[str, Path] = {}
    for manifest in sorted(ws.rglob("manifest.json")):
        try:
            sha = json.loads(manifest.read_text()).get("policy_sha256")
        except (OSError, ValueError):
            continue
        rel = manifest.parent.relative_to(ws)
        if any(_SET_ASIDE.search(part) for part in rel.parts):
            continue  # set aside as incomplete: park leaves it out
        if isinstance(sha, str) and (manifest.parent / "policy.pt").is_file():
            out.setdefault(sha, rel)
    return out


def recipe(
    ws: Path,
    k: int,
    robot_model: str,
    seed: int,
    sigma: float,
    policies: dict[str, Path],
    layout: SeedLayout = "sliding",
) -> dict[str, Any] | None:
    """How to re-collect ``d<k>/data.npz`` exactly, or None when it cannot be (no collect record,
    not collected directly, or the policy that collected it is not in the workspace)."""
    from bremen_robot.data.dataset import Dataset

    path = ws / f"d{k}" / "data.npz"
    marker = ws / f"d{k}" / "collect.json"
    if not path.is_file() or not marker.is_file():
        return None
    if json.loads(marker.read_text()).get("collector") != "direct":
        return None  # through the ROS 2 graph: not a seeded rollout to repeat; the data stay packed
    data = Dataset.load(path)
    shas = {str(s) for s in data.policy_sha256}
    if len(shas) != 1:
        return None
    sha = shas.pop()
    if sha != "random" and sha not in policies:
        return None
    return {
        "file": f"d{k}/data.npz",
        "env": f"sim:{robot_model}/mujoco",
        "deployment": k,
        "steps": len(data),
        "seed": collection_seed(seed, k, layout),  # as runner._collect and td3bc_collect
        "sigma": 0.0 if sha == "random" else sigma,
        "policy_sha256": sha,
        "policy": None if sha == "random" else str(policies[sha]),
        "digest": data.digest(),
    }


def recollect(ws: Path, item: dict[str, Any]) -> str:
    """Collect one parked dataset again into ``ws``; returns its digest."""
    import numpy as np

    from bremen_robot.data.real_rollout import make_env, noisy_policy, rollout, uniform_policy
    from bremen_robot.policy.artifact import load_artifact

    env, task = make_env(item["env"])
    rng = np.random.default_rng(item["seed"])
    if item["policy"] is None:
        act = uniform_policy(task, rng)
    else:
        act = noisy_policy(load_artifact(ws / item["policy"]).act, task, item["sigma"], rng)
    data = rollout(
        env,
        task,
        act,
        steps=item["steps"],
        seed=item["seed"],
        deployment_id=item["deployment"],
        policy_sha256=item["policy_sha256"],
    )
    env.close()
    data.save(ws / item["file"])
    return data.digest()


def left_out(ws: Path, regenerated: set[str]) -> set[str]:
    """Paths (relative to ``ws``) that ``park`` does not pack."""
    out = set(regenerated)
    trained = [k for k in deployments(ws) if (ws / f"d{k}" / "train" / "manifest.json").is_file()]
    for k in deployments(ws):
        train = ws / f"d{k}" / "train"
        if train.is_dir() and not (train / "manifest.json").is_file():
            out.add(f"d{k}/train")
        elif trained and k != trained[-1] and (train / "ensemble.pt").is_file():
            out.add(f"d{k}/train/ensemble.pt")
    for p in ws.rglob("*"):
        if _SET_ASIDE.search(p.name):
            out.add(str(p.relative_to(ws)))
    return out


def park_one(ws: Path, target: Path) -> dict[str, Any]:
    """Pack workspace ``ws`` into ``target`` (a .tar.gz written whole, then renamed)."""
    from bremen_robot.robot_config import load_robot_config
    from bremen_robot.workspace_lock import LOCK_FILE

    harness = json.loads((ws / "harness.json").read_text())
    campaign = stored_campaign(harness["campaign"])
    robot = load_robot_config(Path(campaign["robot"]))
    policies = artifacts_by_sha(ws)
    items = []
    for k in deployments(ws):
        item = recipe(
            ws,
            k,
            robot.sim_model or robot.name,
            int(campaign["seed"]),
            float(campaign["exploration_sigma"]),
            policies,
            campaign["seed_layout"],
        )
        if item is not None:
            items.append(item)
    skip = left_out(ws, {i["file"] for i in items}) | {LOCK_FILE}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(ws.rglob("*")):
            rel = p.relative_to(ws)
            if p.is_dir() or any(str(rel) == s or str(rel).startswith(s + "/") for s in skip):
                continue
            tar.add(p, arcname=str(rel), recursive=False)
        info = tarfile.TarInfo(RECIPE_FILE)
        recipes = {
            "recollect": items,
            "left_out": sorted(skip - {i["file"] for i in items}),
            "cpu": cpu_name(),
        }
        body = json.dumps(recipes, indent=1).encode()
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(target)
    return {"recollect": len(items), "bytes": target.stat().st_size}


def unpark_one(archive: Path, ws: Path, accept_different_data: bool = False) -> str:
    """Unpack ``archive`` into ``ws`` (which must not exist) with its data re-collected and checked.

    A dataset that comes back with another digest (another CPU: its matrix kernels change the
    policy's actions in the last bits, and the simulation amplifies that) refuses the run,
    unless ``accept_different_data``: the run then goes on with the re-collected data, a fresh
    sample of the same policies, and says so in ``unparked.json`` (the results file shows it)."""
    if ws.exists():
        return f"{ws}: exists, left as it is (the parked copy is not needed)"
    ws.parent.mkdir(parents=True, exist_ok=True)  # staging beside it: the last step is one rename
    staging = Path(tempfile.mkdtemp(prefix=f".{ws.name}.unpark-", dir=ws.parent))
    try:
        return _unpark_staged(archive, staging, ws, accept_different_data)
    finally:  # a refused or failed unpark leaves nothing beside the runs: the archive still holds it all
        if staging.exists():
            shutil.rmtree(staging)


def _unpark_staged(archive: Path, staging: Path, ws: Path, accept_different_data: bool) -> str:
    from bremen_robot.fsutil import extract_tar

    with tarfile.open(archive, mode="r:gz") as tar:
        extract_tar(tar, staging)
    recipe_path = staging / RECIPE_FILE
    parked = json.loads(recipe_path.read_text())
    differ = []
    for item in parked["recollect"]:
        got = recollect(staging, item)
        if got == item["digest"]:
            continue
        if not accept_different_data:
            return (
                f"{archive}: {item['file']} came back with digest {got[:12]}, not {item['digest'][:12]} "
                f"(parked on {parked.get('cpu', 'an unrecorded CPU')}, here {cpu_name()}); not installed, "
                "the parked archive is unchanged: pass --accept-different-data to go on with the new "
                "data, or run the seed again"
            )
        differ.append(item["file"])
    recipe_path.unlink()
    if differ:  # an earlier unpark's list (packed with the run) is kept too
        earlier = json.loads(p.read_text()) if (p := staging / UNPARKED_FILE).is_file() else {}
        merged = sorted(set(earlier.get("recollected_differ", [])) | set(differ))
        note = {"recollected_differ": merged, "parked_on": parked.get("cpu"), "unparked_on": cpu_name()}
        p.write_text(json.dumps(note, indent=1))
    staging.rename(ws)
    n = len(parked["recollect"])
    if differ:
        return f"{ws}: unparked; {len(differ)} of {n} datasets re-collected with other digests (accepted)"
    return f"{ws}: unparked, {n} datasets re-collected with their recorded digests"


def cpu_name() -> str:
    """This machine's CPU model and torch's kernel level: what decides bit-exact re-collection."""
    import platform

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        return f"{model}, torch {torch.backends.cpu.get_cpu_capability()}"
    except (ImportError, AttributeError):
        return model


def _workspaces(runs: Path) -> list[Path]:
    return sorted(p.parent for p in runs.glob("*/*/seed*/harness.json"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["park", "unpark"])
    p.add_argument("--runs", type=Path, default=HERE / "runs", help="the harness's workspaces root")
    p.add_argument("--parked", type=Path, default=HERE / "parked", help="where parked runs go (commit it)")
    p.add_argument(
        "--accept-different-data",
        action="store_true",
        help="unpark: go on with re-collected data whose digests differ (another CPU); "
        "noted in unparked.json",
    )
    p.add_argument(
        "--results-dir", type=Path, default=HERE / "results", help="where reproduce.py wrote <name>.json"
    )
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))

    failed = 0
    if args.command == "park":  # a run left unparked is lost with the machine: the exit code says so
        for ws in _workspaces(args.runs):
            rel = ws.relative_to(args.runs)
            try:
                line = park_run(ws, rel, args.parked / rel.parent / f"{rel.name}.tar.gz", args.results_dir)
            except Exception as exc:  # noqa: BLE001  one line per run, the others still park
                line = f"{rel}: not parked: {_first_line(exc)}"
            failed += ": not parked:" in line
            print(line)
        return 1 if failed else 0
    for archive in sorted(args.parked.glob("*/*/seed*.tar.gz")):
        rel = archive.relative_to(args.parked)
        try:
            line = drop_if_recorded(archive, rel, args.results_dir) or unpark_one(
                archive, args.runs / rel.parent / rel.name.removesuffix(".tar.gz"), args.accept_different_data
            )
        except Exception as exc:  # noqa: BLE001  one line per archive, the others still unpark
            line = f"{archive}: not installed: {_first_line(exc)}"
        failed += "not installed" in line
        print(line)
    return 1 if failed else 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def recorded_complete(settings: dict[str, Any], rel: Path, results_dir: Path) -> bool:
    """Whether ``<results_dir>/<name>.json`` holds the complete record of the run ``rel``
    (``<name>/<method>/seed<s>``), made with ``settings`` (its ``harness.json``)."""
    from reproduce_common import same_settings

    name, method, seed = rel.parts[0], rel.parts[1], rel.parts[2].removeprefix("seed")
    try:
        result = json.loads((results_dir / f"{name}.json").read_text())
    except (OSError, ValueError):
        return False
    record = result.get("methods", {}).get(method, {}).get("seeds", {}).get(seed, {})
    return bool(record.get("complete")) and same_settings(record.get("settings"), settings)


def drop_if_recorded(archive: Path, rel: Path, results_dir: Path) -> str | None:
    """Remove a parked copy whose run's complete record the results file already holds (it was
    aggregated after this copy was parked: unparking it would redo finished deployments); the
    command's line, or None to unpark it. Git history keeps the copy."""
    with tarfile.open(archive, mode="r:gz") as tar:
        member = tar.extractfile("harness.json")
        settings = json.loads(member.read()) if member is not None else None
    run = rel.parent / rel.name.removesuffix(".tar.gz")
    if settings is None or not recorded_complete(settings, run, results_dir):
        return None
    archive.unlink()
    return f"{run}: complete in {results_dir / run.parts[0]}.json; its parked copy removed, not unparked"


def evaluated(names: list[str]) -> int:
    """How many deployments have their candidate's evaluation among ``names`` (workspace paths)."""
    return sum(1 for n in names if re.fullmatch(r"d\d+/eval\.json", n))


def park_run(ws: Path, rel: Path, archive: Path, results_dir: Path) -> str:
    """Park one workspace (the command's line for it). A finished run whose complete record the
    results file holds needs no parked copy (an old one is removed: the next unpark would redo
    it); a finished run not yet aggregated is parked. A parked copy further along than the
    workspace (a run restarted without unpark) is never replaced."""
    from bremen_robot.workspace_lock import folder_lock

    with folder_lock(ws, "park"):
        settings = json.loads((ws / "harness.json").read_text())
        if finished(ws) and recorded_complete(settings, rel, results_dir):
            if archive.is_file():
                archive.unlink()  # git history keeps it
                return f"{rel}: finished and in {results_dir / rel.parts[0]}.json; its parked copy removed"
            return f"{rel}: finished and in {results_dir / rel.parts[0]}.json; nothing to park"
        here = evaluated([str(p.relative_to(ws)) for p in ws.glob("d*/eval.json")])
        if archive.is_file():
            with tarfile.open(archive, mode="r:gz") as tar:
                before = evaluated(tar.getnames())
            if before > here:
                return (
                    f"{rel}: not parked: its parked copy has {before} deployments done, this workspace "
                    f"{here}; unpark it (move this workspace aside first), or remove {archive} to keep "
                    "this one"
                )
        done = park_one(ws, archive)
    note = (
        "" if not finished(ws) else "; finished but not in the results file yet: aggregate, then park again"
    )
    return f"{rel}: parked ({done['bytes'] / 1e6:.1f} MB, {done['recollect']} datasets to re-collect){note}"


if __name__ == "__main__":
    sys.exit(main())
