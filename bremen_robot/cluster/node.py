"""What runs on a robot node: receive a policy, verify it HERE, collect, ingest, return a shard.

The workstation sends the artifact's bytes and its signed approval through Ray (no shared
filesystem). Before anything runs, the node checks the approval signature against the keys its
own robot config trusts *now* (re-read at every deployment), then stores the artifact in a
node-local registry and runs every check of
:func:`~bremen_robot.registry.verify_for_deployment` but the TorchScript load
(:func:`~bremen_robot.registry.check_for_deployment`); the policy runner makes all of them, load
included, at start-up, before it publishes a command. The bag stays on the node's disk; only
the ingested shard, its digest and the bag's metadata go back.

Node layout (``$BREMEN_NODE_DIR``, written by ``bremen robot join``)::

    <node dir>/node.json                      node name, robot config path (set at join)
    <node dir>/<campaign>/registry.sqlite     node-local registry (what this robot may run)
    <node dir>/<campaign>/d<k>/bag/           the bag of round k, kept here
    <node dir>/<campaign>/d<k>/shard.npz      its ingested shard (robot column = node name)
    <node dir>/<campaign>/d<k>/bag.interrupted-N, salvage-N.npz/.json
                                              a cut-short collection's bag and its complete
                                              episodes, ingested once (cluster/salvage.py)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from bremen_robot.campaign.config import CAMPAIGN_NAME
from bremen_robot.campaign.seeds import retry_seed
from bremen_robot.child_process import die_with_parent
from bremen_robot.cluster.ray_env import NODE_DIR_ENV
from bremen_robot.errors import BremenError
from bremen_robot.fsutil import atomic_write_bytes
from bremen_robot.robot_config import RobotConfig, load_robot_config

NODE_FILE = "node.json"
CAMPAIGN_ID_FILE = "campaign-id"  # <node dir>/<campaign>/: which workspace's campaign owns it


class PolicyRefusedError(BremenError):
    """The node refused the policy it was sent (one line: which robot, which operator, the fix)."""


def node_info(node_dir: Path | None = None) -> dict[str, Any]:
    d = Path(node_dir or os.environ.get(NODE_DIR_ENV, ""))
    path = d / NODE_FILE
    if not str(d) or not path.is_file():
        raise BremenError(
            f"this Ray node was not started by 'bremen robot join' "
            f"(no {NODE_FILE} in ${NODE_DIR_ENV}='{d}'); "
            "join the robot PC with 'bremen robot join --address HEAD --robot ROBOT.yaml'"
        )
    info = dict(json.loads(path.read_text()))
    info["dir"] = str(d)
    return info


def check_signed_by_trusted(bundle: dict[str, Any], robot: RobotConfig) -> None:
    """The approval covers these bytes and verifies against one of the robot's trusted keys."""
    from bremen_robot.registry.signing import load_public_key, parse_payload, verify_signature

    appr = bundle["approval"]
    payload = parse_payload(appr["payload"])
    operator = str(payload.get("operator", "?"))
    if payload.get("artifact_sha256") != bundle["sha256"]:
        raise PolicyRefusedError(
            f"robot '{robot.name}': the approval sent with policy {bundle['sha256'][:12]} signs another "
            "artifact; nothing was run (check the workstation's registry with 'bremen registry check')"
        )
    keys = list(robot.trusted_operator_keys)
    ok = any(verify_signature(appr["payload"], appr["signature"], load_public_key(k)) for k in keys)
    if not ok:
        raise PolicyRefusedError(
            f"robot '{robot.name}' ({robot.source}) refuses policy {bundle['sha256'][:12]}: approved by "
            f"'{operator}' (key {str(appr['key_fingerprint'])[:12]}), whom it does not trust; "
            f"{robot.how_to_trust(operator)} on the robot PC; nothing was run"
        )


def receive_policy(ws: Path, bundle: dict[str, Any], robot: RobotConfig) -> str:
    """Check and store a sent policy in the node registry at ``ws`` (every deployment check but
    the TorchScript load, which the runner makes); returns its sha256.

    Refused (:class:`PolicyRefusedError`, one line) before the registry is touched when the signature
    does not verify against ``robot``'s trusted keys; then the registry's own checks run.
    """
    from bremen_robot.registry import ApprovalError, Registry, check_for_deployment
    from bremen_robot.registry.states import PolicyState

    check_signed_by_trusted(bundle, robot)
    ws.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=ws, prefix=".incoming-"))
    try:
        for name, data in bundle["files"].items():
            (tmp / Path(name).name).write_bytes(data)
        with Registry.open(ws) as reg:
            # no TorchScript load here (torch in the Ray worker, seconds per robot and policy):
            # the runner loads and verifies these bytes before it publishes a command
            rec = reg.register(
                tmp, report={}, lineage={"received_from": "cluster"}, actor="bremen-robot-node", load=False
            )
            if rec.sha256 != bundle["sha256"]:
                raise PolicyRefusedError(
                    f"robot '{robot.name}': the bytes received hash to {rec.sha256[:12]}, not the approved "
                    f"{bundle['sha256'][:12]}; nothing was run"
                )
            appr = bundle["approval"]
            if rec.state == PolicyState.CANDIDATE:

                def insert(sha: str, now: str) -> None:
                    reg._conn.execute(
                        "INSERT INTO approvals (policy_sha256, operator, approved_at, note, payload,"
                        " signature, key_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            sha,
                            appr["operator"],
                            appr["approved_at"],
                            appr["note"],
                            appr["payload"],
                            appr["signature"],
                            appr["key_fingerprint"],
                        ),
                    )

                reg._transition(
                    rec.sha256,
                    PolicyState.APPROVED,
                    appr["operator"],
                    "received through the cluster",
                    inside=insert,
                    at=appr["approved_at"],
                )
            try:  # every check but the load, which the runner makes
                check_for_deployment(rec.sha256, robot, reg)
            except ApprovalError as exc:
                raise PolicyRefusedError(f"robot '{robot.name}' refuses the policy: {exc}") from None
        return str(rec.sha256)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_same_kind(robot: RobotConfig, kind: dict[str, Any]) -> None:
    """A fleet is robots of one kind: same task and joints as the campaign's robot config."""
    if robot.task != kind["task"] or list(robot.joints) != list(kind["joints"]):
        raise BremenError(
            f"robot '{robot.name}' ({robot.source}) is not of the campaign's kind '{kind['name']}' "
            f"(task {robot.task} vs {kind['task']}, or other joints); join it with a {kind['name']} config "
            "or leave it out of the campaign's fleet"
        )


def claim_campaign_folder(ws: Path, campaign_id: str | None, robot: str) -> None:
    """The node folder of a campaign name serves one workspace's campaign: a second campaign of
    the same name would take the bags left in ``d<k>/`` (a finished round's bag included) as
    its own salvage and return another campaign's episodes as if collected now."""
    if not campaign_id:
        return  # a driver that names no campaign (the fleet bench, on fresh folders)
    ws.mkdir(parents=True, exist_ok=True)
    path = ws / CAMPAIGN_ID_FILE
    if not path.is_file():  # a new folder, or one from before ids: this campaign's from now on
        atomic_write_bytes(path, campaign_id.encode())
        return
    have = path.read_text().strip()
    if have != campaign_id:
        raise BremenError(
            f"robot '{robot}': {ws} holds the campaign of another workspace (id {have[:12]}, this one "
            f"{campaign_id[:12]}) under the same name; give the campaign another name, or move that "
            "folder aside on the robot PC"
        )


def collect_on_node(job: dict[str, Any]) -> dict[str, Any]:
    """The Ray task body for one robot's share of one deployment (see module docstring).

    ``job["salvage_only"]``: collect nothing; return the complete episodes an interrupted
    collection of this round left on this node (:mod:`bremen_robot.cluster.salvage`).
    """
    from bremen_robot.cluster.salvage import round_lock

    info = node_info()
    robot = load_robot_config(Path(info["robot_config"]))  # trust as it is now, not at join
    check_same_kind(robot, job["kind"])
    if not CAMPAIGN_NAME.fullmatch(str(job["campaign"])):  # a folder under this node's dir, nowhere else
        raise BremenError(f"campaign name {job['campaign']!r} is not a plain name; rename the campaign")
    ws = Path(info["dir"]) / job["campaign"]
    claim_campaign_folder(ws, job.get("campaign_id"), info["name"])
    k = int(job["round"])
    bundle = job.get("policy")
    policy_id = "random" if bundle is None else receive_policy(ws, bundle, robot)
    ddir = ws / f"d{k}"
    with round_lock(ddir, info["name"], k):
        return _share(job, info, robot, ws, ddir, policy_id)


def _share(
    job: dict[str, Any], info: dict[str, Any], robot: RobotConfig, ws: Path, ddir: Path, policy_id: str
) -> dict[str, Any]:
    from bremen_robot.campaign.runner import CollectRequest, ingest_bag
    from bremen_robot.campaign.workspace import move_aside
    from bremen_robot.cluster.salvage import counts, salvage_kept
    from bremen_robot.data.bag_ingest import ingest_warnings
    from bremen_robot.data.dataset import merge

    k = int(job["round"])
    parts, notes = salvage_kept(ddir, policy_id, robot.task, k)
    salvaged = sum(len(p) for p in parts)
    # interventions: the salvaged episodes' (all a cut-short bag still tells) + the new run's all
    summary: dict[str, Any] = {"steps": salvaged, "interventions": 0, "estop": False}
    for p in parts:
        summary["interventions"] += counts(p)["interventions"]
    remaining = int(job["steps"]) - salvaged
    bag = ddir / "bag"
    if job.get("salvage_only"):
        if not parts:
            raise BremenError(
                f"robot '{info['name']}': no complete episode of round {k} to salvage in {ddir}"
            )
    elif remaining > 0:
        source = ddir / "collect.source.yaml"
        source.write_text(job["collect_yaml"])
        req = CollectRequest(
            deployment=k,
            policy_id=policy_id,
            steps=remaining,
            out_bag=bag,
            # a re-run does not replay the same episodes; a job of a workstation from before the
            # seed layouts has none and was sliding
            seed=retry_seed(int(job["seed"]), len(parts), job.get("seed_layout", "sliding")),
            sigma=float(job["sigma"]),
            robot_config=Path(info["robot_config"]),
            collect_config=source,
            workspace=ws,
            stop_on_estop=True,  # an e-stop ends this robot's share alone (docs/cluster.md)
        )
        new = _collect_in_child(req)
        for key in ("steps", "interventions"):
            summary[key] += int(new[key])
        summary["estop"] = bool(new.get("estop"))
        try:
            parts.append(ingest_bag(bag, k, robot.task))
        except BremenError:
            if not summary["estop"]:  # an e-stop may come before the first episode closed
                raise
    if salvaged:
        notes.append(f"{salvaged} samples salvaged, {max(remaining, 0)} steps collected anew")
    # episodes the ingest left out (lost, unusable) reach the campaign's log, as in the embedded one
    notes += [line for p in parts for line in ingest_warnings(p)]
    if not parts:
        raise BremenError(
            f"robot '{info['name']}': the e-stop latched before any episode of round {k} was complete; "
            "nothing was collected (reset the e-stop on the robot PC)"
        )
    data = merge(parts) if len(parts) > 1 else parts[0]
    data.robot[:] = info["name"]
    data.deployment_ids[:] = k
    data.validate()
    shard = ddir / "shard.npz"
    move_aside(shard)
    data.save(shard)
    return {
        "robot": info["name"],
        "robot_kind": robot.name,
        "node": f"{socket.gethostname()}:{info['name']}",
        "round": k,
        "policy_id": policy_id,
        "samples": len(data),
        "steps": int(summary["steps"]),
        "episodes": counts(data)["episodes"],  # the episodes whose samples it returns
        "interventions": int(summary["interventions"]),
        "estop": bool(summary["estop"]),
        "salvaged_samples": salvaged,
        "bag": str(bag if bag.exists() else ddir),
        "shard": shard.read_bytes(),
        "data_digest": data.digest(),
        "note": "; ".join(notes),
    }


def _collect_in_child(req: Any) -> dict[str, Any]:
    """``collect_through_graph`` in its own process and session: the graph's stop-in-order signal
    handling must not share a process with Ray's worker, which has its own signal handlers."""
    import subprocess
    import sys
    from dataclasses import asdict

    args = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(req).items()}
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from bremen_robot.campaign.runner import CollectRequest, collect_through_graph\n"
        "a = json.loads(sys.argv[1])\n"
        "for k in ('out_bag', 'robot_config', 'collect_config', 'workspace'):\n"
        "    a[k] = Path(a[k])\n"
        "print('BREMEN_SUMMARY ' + json.dumps(collect_through_graph(CollectRequest(**a))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,  # SIGTERM: the collection stops in order and closes its bag
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BREMEN_SUMMARY "):
            return dict(json.loads(line[len("BREMEN_SUMMARY ") :]))
    tail = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
    raise BremenError(tail[-1] if tail else f"collection exited with code {proc.returncode}")
