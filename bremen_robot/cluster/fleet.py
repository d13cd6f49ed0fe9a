"""The workstation side of a fleet campaign: split, send, gather, merge, record (docs/cluster.md).

Deployment k runs the same approved policy on every robot of the fleet at once, each robot's
collection pinned to its node by the node's ``robot:<name>`` resource. ``steps_per_deployment``
is split among the robots; each returns an ingested shard that is stored under
``<ws>/d<k>/shards/`` as it arrives, so a re-run only collects the robots still missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.campaign.rejection import training_seed
from bremen_robot.campaign.runner import Campaign, CollectRequest
from bremen_robot.campaign.seeds import fleet_robot_seed
from bremen_robot.campaign.workspace import read_json, write_json_atomic
from bremen_robot.cluster.ray_env import cluster_gpus, connect, robot_nodes, robot_resource
from bremen_robot.data.dataset import Dataset, merge
from bremen_robot.errors import BremenError
from bremen_robot.fsutil import extract_tar


def split_steps(total: int, robots: list[str]) -> dict[str, int]:
    """``total`` steps over ``robots`` as evenly as possible; the first ones get the remainder."""
    if not robots:
        raise BremenError("a fleet needs at least one robot")
    if total < len(robots):
        raise BremenError(
            f"steps_per_deployment {total} is fewer than the fleet's {len(robots)} robots; "
            "raise it or name fewer robots"
        )
    base, extra = divmod(int(total), len(robots))
    return {r: base + (1 if i < extra else 0) for i, r in enumerate(robots)}


def merge_shards(shards: dict[str, Dataset], deployment: int) -> Dataset:
    """One deployment's dataset from its robots' shards, in fleet order; each row keeps its robot."""
    parts = []
    for name, shard in shards.items():
        if len(shard) and set(np.unique(shard.robot)) != {name}:
            raise BremenError(
                f"the shard from robot '{name}' labels its rows {sorted(set(shard.robot))}; "
                "it was not collected by that node, nothing was merged"
            )
        shard.deployment_ids[:] = deployment
        parts.append(shard)
    return merge(parts) if len(parts) > 1 else parts[0]


def campaign_id(root: Path) -> str:
    """This workspace's campaign, unlike any other of the same name (a random id kept in
    ``campaign.json``): robot nodes keep one folder per campaign name and must not mix two."""
    import uuid

    meta_path = root / "campaign.json"
    meta = read_json(meta_path) or {}
    if not meta.get("id"):
        meta["id"] = uuid.uuid4().hex  # the campaign holds the workspace lock: no other writer
        write_json_atomic(meta_path, meta)
    return str(meta["id"])


def policy_bundle(reg: Any, policy_id: str) -> dict[str, Any] | None:
    """What a node needs to verify and run a policy: artifact bytes + the signed approval."""
    if policy_id == "random":
        return None
    rec = reg.get(policy_id)
    if rec.approval is None or rec.artifact_dir is None:
        raise BremenError(f"policy {rec.id} has no approval to send; approve it first")
    a = rec.approval
    files = {p.name: p.read_bytes() for p in sorted(rec.artifact_dir.iterdir()) if p.is_file()}
    return {
        "sha256": rec.sha256,
        "files": {n: b for n, b in files.items() if n in ("policy.pt", "manifest.json")},
        "approval": {
            "operator": a.operator,
            "approved_at": a.time,
            "note": a.note,
            "payload": a.payload,
            "signature": a.signature,
            "key_fingerprint": a.key_fingerprint,
        },
    }


class FleetCollector:
    """A campaign ``collect_fn`` that collects on every robot node of the fleet at once."""

    def __init__(self, campaign: ClusterCampaign) -> None:
        self.c = campaign

    def __call__(self, req: CollectRequest) -> dict[str, Any]:
        from bremen_robot.cluster.node import collect_on_node
        from bremen_robot.registry import Registry

        c = self.c
        ray = c.ray
        fleet = c.fleet
        shard_dir = req.out_bag.parent / "shards"
        shard_dir.mkdir(parents=True, exist_ok=True)
        budget = split_steps(req.steps, fleet)
        live = robot_nodes(ray)
        with Registry.open(req.workspace) as reg:
            bundle = policy_bundle(reg, req.policy_id)
        job = {
            "campaign": c.cfg.name,
            "campaign_id": campaign_id(c.ws.root),
            "round": req.deployment,
            "policy": bundle,
            "collect_yaml": Path(req.collect_config).read_text(),
            "sigma": req.sigma,
            "kind": {"name": c.robot.name, "task": c.robot.task, "joints": list(c.robot.joints)},
            "salvage_only": False,
            "seed_layout": c.cfg.seed_layout,  # how the node spaces a retried share
        }
        pending = {}
        for i, name in enumerate(fleet):
            if read_json(shard_dir / f"{name}.json") is not None:
                continue  # collected before an interruption: never again
            if name not in live:
                have = ", ".join(sorted(live)) or "none"
                raise BremenError(
                    f"fleet robot '{name}' has no node in the cluster (robot nodes: {have}); run "
                    f"'bremen robot join --address HEAD --robot ROBOT.yaml --name {name}' on its PC"
                )
            task = ray.remote(num_cpus=0, resources={robot_resource(name): 1}, max_retries=0)(collect_on_node)
            c.log(f"deployment {req.deployment}: robot {name} collects {budget[name]} steps")
            seed = fleet_robot_seed(req.seed, i, c.cfg.seed_layout)
            pending[name] = task.remote({**job, "steps": budget[name], "seed": seed})
        failures = self._gather(pending, shard_dir)
        if failures and c.cfg.fleet_on_robot_loss == "finish_with_others":
            failures = self._salvage(failures, job, shard_dir)
        results = {n: read_json(shard_dir / f"{n}.json") for n in fleet}
        done = {n: r for n, r in results.items() if r is not None}
        if failures and (c.cfg.fleet_on_robot_loss == "wait" or not done):
            raise BremenError(
                f"deployment {req.deployment}: {'; '.join(failures.values())}; the robots that finished "
                f"are kept ({', '.join(done) or 'none'}); re-run the same command to collect the rest"
            )
        for f in failures.values():
            c.log(f"deployment {req.deployment}: {f}; going on with {', '.join(done)} (fleet_on_robot_loss)")
        for n, r in done.items():
            if r.get("estop"):
                c.log(
                    f"deployment {req.deployment}: robot {n} stopped on its e-stop after {r['steps']} of "
                    f"{budget[n]} steps; its {r['samples']} samples are kept, the others went on"
                )
        shards = {n: Dataset.load(shard_dir / f"{n}.npz") for n in done}
        data = merge_shards(shards, req.deployment)
        data.validate()
        data.save(c.ws.data(req.deployment))
        keys = ("robot", "node", "samples", "episodes", "interventions", "data_digest", "bag")
        # the note (salvage, episodes the ingest left out) stays with the deployment's record,
        # not only in the campaign log: a share of 10 usable episodes out of 15 must be visible
        flags = ("estop", "partial")
        sessions = [
            {
                **{k: r[k] for k in keys},
                **{f: bool(r.get(f)) for f in flags},
                "note": str(r.get("note") or ""),
            }
            for r in done.values()
        ]
        return {
            "steps": int(sum(r["steps"] for r in done.values())),
            "samples": len(data),
            "episodes": int(sum(r["episodes"] for r in done.values())),
            "interventions": int(sum(r["interventions"] for r in done.values())),
            "collector": "cluster",
            "sessions": sessions,
            "estop": [n for n, r in done.items() if r.get("estop")],
            "lost": sorted(failures),  # robots that gave no sample this deployment
        }

    def _salvage(self, failures: dict[str, str], job: dict[str, Any], shard_dir: Path) -> dict[str, str]:
        """finish_with_others: ask each failed robot whose node is still in the cluster for the
        complete episodes its cut-short collection left (a salvage-only task); those it returns
        become its (partial) shard. Returns the robots that gave nothing."""
        from bremen_robot.cluster.node import collect_on_node

        ray = self.c.ray
        live = robot_nodes(ray)
        pending = {}
        for name in failures:
            if name in live:
                task = ray.remote(num_cpus=0, resources={robot_resource(name): 1}, max_retries=0)(
                    collect_on_node
                )
                pending[name] = task.remote({**job, "steps": 0, "seed": 0, "salvage_only": True})
        if not pending:
            return failures
        still = self._gather(pending, shard_dir, partial=True)
        left = {n: why for n, why in failures.items() if n not in pending or n in still}
        for name in pending:
            if name not in still:
                got = read_json(shard_dir / f"{name}.json") or {}
                self.c.log(
                    f"{failures[name]}; its node returned the {got.get('episodes')} episode(s) "
                    f"({got.get('samples')} samples) it had completed"
                )
        return left

    def _gather(self, pending: dict[str, Any], shard_dir: Path, partial: bool = False) -> dict[str, str]:
        """Store each robot's shard as it arrives (shard, then its record); return the failures."""
        ray = self.c.ray
        names = {ref: n for n, ref in pending.items()}
        failures: dict[str, str] = {}
        refs = list(names)
        while refs:
            ready, refs = ray.wait(refs, num_returns=1)
            name = names[ready[0]]
            try:
                out = ray.get(ready[0])
            except Exception as exc:  # a dead node, a refused policy, a failed graph
                failures[name] = f"robot {name}: {_one_line(exc)}"
                continue
            shard_bytes = out.pop("shard")
            path = shard_dir / f"{name}.npz"
            path.write_bytes(shard_bytes)
            try:
                intact = Dataset.load(path).digest() == out["data_digest"]
            except BremenError:  # truncated, or its header's digest differs: this robot's failure only
                intact = False
            if not intact:
                path.unlink()
                failures[name] = (
                    f"robot {name}: its shard arrived damaged (unreadable, or its digest differs)"
                )
                continue
            write_json_atomic(shard_dir / f"{name}.json", {**out, "partial": partial})
            if out.get("note"):
                self.c.log(f"robot {name}: {out['note']}")
        return failures


def _one_line(exc: BaseException) -> str:
    """The refusal or error a node raised, without Ray's traceback wrapping."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    for line in reversed(text):
        if line.strip() and not line.startswith((" ", "Traceback")):
            return line.strip()[:400]
    return type(exc).__name__


class ClusterCampaign(Campaign):
    """The campaign loop with collection on a Ray cluster's robot nodes (``--cluster``)."""

    def __init__(self, cfg: Any, workspace: Path, *, address: str, **kw: Any) -> None:
        self.fleet = list(cfg.fleet)
        self.ray = connect(address)
        super().__init__(cfg, workspace, collect_fn=FleetCollector(self), **kw)
        self.fleet = self.fleet or [self.robot.name]
        self._check_graph_config()  # the collect config and the robot kind's safety limits, here first
        gpus = cluster_gpus(self.ray)
        self.log(
            f"cluster {address}: fleet {', '.join(self.fleet)}; training on "
            + (
                "a GPU node (Ray task, num_gpus=1)"
                if gpus
                else "this workstation (the cluster offers no GPU)"
            )
        )

    def _count_deployment(self, reg: Any, k: int, policy_id: str, collected: dict[str, Any]) -> None:
        from bremen_robot.registry.sessions import record_session

        super()._count_deployment(reg, k, policy_id, collected)
        for s in collected.get("sessions", []):
            if int(s["samples"]):
                record_session(reg, {**s, "policy_id": policy_id, "round": k})

    def _train(self, k: int, data: Dataset, deployed: Path | None = None, rejected: int = 0) -> Path:
        if not cluster_gpus(self.ray):
            return super()._train(k, data, deployed, rejected)
        return train_on_gpu(self, k, data, deployed, rejected)


def train_on_gpu(c: ClusterCampaign, k: int, data: Dataset, deployed: Path | None, rejected: int = 0) -> Path:
    """Train as a Ray task on a GPU node; the training folder comes back as a tar archive."""
    import io
    import tarfile

    from bremen_robot.campaign.workspace import move_aside
    from bremen_robot.policy.manifest import MANIFEST_FILE

    out = c.ws.train_dir(k)
    if (out / MANIFEST_FILE).is_file():
        return out
    move_aside(out)
    prev = c.ws.train_dir(k - 1) / "ensemble.pt"
    warm = k > 1 and c.train_cfg.ensemble.warm_start and prev.is_file()

    def pack(d: Path | None) -> bytes | None:
        if d is None:
            return None
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(d, arcname=".")
        return buf.getvalue()

    job = {
        "cfg": c.train_cfg.model_copy(
            update={"seed": training_seed(c.cfg.seed, k, rejected), "device": "auto"}
        ).model_dump(mode="json"),
        "data": _dataset_bytes(data),
        "robot": c.robot.name,
        "init": prev.read_bytes() if warm else None,
        "deployed": pack(deployed),
    }
    c.log(f"deployment {k}: training on {len(data)} transitions on a GPU node ({c.train_cfg.name})")
    task = c.ray.remote(num_gpus=1, num_cpus=1, max_retries=0)(_train_remote)
    archive = c.ray.get(task.remote(job))
    tmp = out.with_name(out.name + ".incoming")
    move_aside(tmp)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        extract_tar(tar, tmp)
    tmp.rename(out)
    return out


def _dataset_bytes(data: Dataset) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return data.save(Path(d) / "data.npz").read_bytes()


def _train_remote(job: dict[str, Any]) -> bytes:
    import io
    import tarfile
    import tempfile

    from bremen_robot.config.train import TrainConfig
    from bremen_robot.trainer import train

    with tempfile.TemporaryDirectory() as tmpd:
        d = Path(tmpd)
        (d / "data.npz").write_bytes(job["data"])
        init = None
        if job["init"] is not None:
            init = d / "init.pt"
            init.write_bytes(job["init"])
        deployed = None
        if job["deployed"] is not None:
            deployed = d / "deployed"
            with tarfile.open(fileobj=io.BytesIO(job["deployed"])) as tar:
                extract_tar(tar, deployed)
        out = d / "train"
        train(
            TrainConfig(**job["cfg"]),
            Dataset.load(d / "data.npz"),
            out,
            robot=job["robot"],
            init_ensemble=init,
            deployed=deployed,
        )
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(out, arcname=".")
        return buf.getvalue()


__all__ = ["ClusterCampaign", "FleetCollector", "merge_shards", "split_steps", "json"]
