"""What a robot node keeps when its collection is cut short (issue 17, docs/cluster.md).

The trajectory logger closes each episode's segment before it lists it in the bag's
``metadata.yaml`` (:mod:`bremen_robot.ros.bagfile`), so a collection killed at any point leaves
a bag whose listed complete episodes are whole. The node never throws them away and never
counts them twice:

* a bag left in ``d<k>/bag`` by a collection whose shard never reached the workstation is
  renamed ``d<k>/bag.interrupted-N`` (kept, never deleted) at the start of the next task for
  that round;
* each such bag is ingested **once** into ``d<k>/salvage-N.npz`` (+ ``salvage-N.json``: its
  policy and counts); the JSON is written last, so its presence means "ingested";
* the next shard for that round is the salvaged episodes of the *same* policy plus a new
  collection of only the steps still missing (or, for a salvage-only task, the salvaged
  episodes alone).

A salvage part is only ever returned inside a shard, and the workstation stores one shard per
(round, robot) and never asks again once it has one, so the same episodes cannot be counted
twice.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.campaign.workspace import move_aside, read_json, write_json_atomic
from bremen_robot.data.dataset import Dataset
from bremen_robot.errors import BremenError

ASIDE_TAG = "interrupted"
WRITER_WAIT_S = 60.0  # the logger's own stop takes up to 20 s (ros/process_graph.py)


@contextmanager
def round_lock(ddir: Path, robot: str, k: int) -> Iterator[None]:
    """One task per (campaign, round) on a node: a salvage must not move a bag still being written."""
    ddir.mkdir(parents=True, exist_ok=True)
    fd = os.open(ddir / ".task.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BremenError(
                f"robot '{robot}' is still running an earlier task for round {k} ({ddir}); "
                "wait for it to end (or stop it on the robot PC) and re-run"
            ) from None
        yield
    finally:
        os.close(fd)


def _counts(data: Dataset) -> dict[str, int]:
    return {
        "samples": len(data),
        "episodes": len(np.unique(data.episode_ids)),
        "interventions": int(np.asarray(data.interventions).sum()),
    }


def salvage_kept(ddir: Path, policy_id: str, task: str, k: int) -> tuple[list[Dataset], list[str]]:
    """Set an unreturned ``ddir/bag`` aside, ingest every aside bag once, and return the salvaged
    episodes of ``policy_id`` (oldest first) with one note per bag."""
    from bremen_robot.campaign.runner import ingest_bag
    from bremen_robot.ros.bagfile import wait_until_unwritten

    notes: list[str] = []
    # a killed collection's nodes outlive it for a few seconds (they stop in order on SIGTERM):
    # moving the folder under a live logger would let it start a fresh d<k>/bag beside the aside one
    if not wait_until_unwritten(ddir / "bag", WRITER_WAIT_S):
        raise BremenError(
            f"{ddir / 'bag'} is still being written {WRITER_WAIT_S:.0f} s after its collection ended "
            "(a trajectory_logger outlived it); stop that process on the robot PC and re-run"
        )
    if (aside := move_aside(ddir / "bag", ASIDE_TAG)) is not None:
        notes.append(f"an interrupted collection was kept at {aside}")
    parts: list[Dataset] = []
    for bag in sorted(ddir.glob(f"bag.{ASIDE_TAG}-*"), key=lambda p: int(p.name.rsplit("-", 1)[1])):
        n = bag.name.rsplit("-", 1)[1]
        rec_path, npz = ddir / f"salvage-{n}.json", ddir / f"salvage-{n}.npz"
        rec = read_json(rec_path)
        if rec is None:
            try:
                data = ingest_bag(bag, k, task)
                data.validate()
            except BremenError as exc:  # killed before any episode closed, or no metadata yet
                rec = {"policy": "", "samples": 0, "episodes": 0, "interventions": 0, "why": str(exc)[:300]}
            else:
                pols = sorted(set(np.asarray(data.policy_sha256).tolist()))
                data.save(npz)
                rec = {"policy": pols[0] if len(pols) == 1 else ",".join(pols), **_counts(data)}
            write_json_atomic(rec_path, rec)
        if not int(rec["samples"]):
            continue
        if rec["policy"] != policy_id:
            notes.append(
                f"{bag}: its episodes were collected by policy {rec['policy'][:12]}, not this round's"
            )
            continue
        parts.append(Dataset.load(npz))
        notes.append(f"{bag}: {rec['episodes']} complete episode(s), {rec['samples']} samples salvaged")
    return parts, notes


def counts(data: Dataset) -> dict[str, Any]:
    """Samples, episodes and interventions of a salvaged dataset (for the shard's metadata)."""
    return _counts(data)
