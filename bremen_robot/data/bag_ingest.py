"""rosbag2 folders written by the collect graph -> the trainer's transition columns.

No ROS install needed: bags are read with ``rosbags`` (its ROS 2 kilted type store decodes the
standard messages). For each episode the policy_runner reported as finished, every command is
paired with the ``joint_states`` it answered through the tag it carries (see
:mod:`bremen_robot.ros.topics`), so the pairing is exact whatever order the logger received
the streams in relative to each other. Per transition ``k``: ``obs`` = the state command ``k``
answered, ``actions`` = the command actually sent (after the shield), ``next_obs`` = the state
command ``k+1`` answered (the episode's last observation for the last command). Rewards and
terminals come from the task's known functions; ``timeouts`` marks the last transition of an
episode ended by its time limit, the step budget, an operator stop or a stamp that went back
(below); ``interventions`` counts the shield's interventions logged for that step.

When several commands answer one state, the action is, in lockstep, the one the simulator
stepped with: since 2026-12-06 each tag carries the command's sequence number and sim_bridge
echoes the stepping command's tag in the ``header.frame_id`` of the state that step produced
(bags without the echo: the first command logged); in realtime the last one, which the robot
held until the next state. An episode's commands arrive in the order the runner sent them
(one writer, reliable); where their state stamp goes back (a wall clock stepped back; a
runner since 2026-12-06 ends the episode there itself, an older one went on) the episode is
cut: nothing is paired across the step.

Episodes the log marks ``incomplete`` (interrupted, logger crash) are left out unless
``include_incomplete`` (then their last transition is a timeout). Transitions whose
observation is unusable (NaN, wrong length: the shield sent the safe command) are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.data.bag_contents import BagContents
from bremen_robot.data.dataset import Dataset
from bremen_robot.errors import DatasetError
from bremen_robot.ros.bagfile import listed_episode_records
from bremen_robot.tasks import Task, get_task

COLUMNS = (
    "obs",
    "actions",
    "rewards",
    "next_obs",
    "terminals",
    "timeouts",
    "episode_ids",
    "deployment_ids",
    "policy_sha256",
    "interventions",
)
# stop reasons that cut an episode: its last transition is a timeout, not a terminal
# (``stamp_went_back``: policy_runner ended it where a state stamp went back, since 2026-12-06)
TIMEOUT_REASONS = ("time_limit", "budget", "stopped", "interrupted", "stamp_went_back")


def _observe(
    bag: BagContents, builders: dict[tuple[str, ...], Any], task: Task, extras: dict[str, float], stamp: int
) -> np.ndarray | None:
    """The task observation of the state stamped ``stamp``, or None when missing or unusable."""
    from sim.observation import ObservationBuilder

    s = bag.states.get(stamp)
    if s is None:
        return None
    names, q, qd = s
    if len(q) != len(names) or len(qd) != len(names):
        return None
    try:
        b = builders.get(names)
        if b is None:
            b = builders[names] = ObservationBuilder(task, names)
        base = bag.odom.get(stamp) if b.needs_base else None
        if b.needs_base and base is None:
            return None
        o = b(q, qd, base[0] if base else None, base[1] if base else None, extras or None)
    except Exception:
        return None
    return o if _finite_as_stored(o).all() else None


def _usable_action(a: np.ndarray, action_dim: int) -> bool:
    return a.shape[0] == action_dim and bool(_finite_as_stored(a).all())


def _finite_as_stored(x: np.ndarray) -> np.ndarray:
    """Elementwise: finite in the dataset's float32, not only here in float64 (a glitching
    sensor's 1e300 is finite now and would be written as inf)."""
    return np.isfinite(x) & (np.abs(x) <= _FLOAT32_MAX)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _episode_steps(
    commands: Sequence[tuple[int, int | None, np.ndarray]], stepped_with: dict[int, int], keep_last: bool
) -> tuple[list[tuple[int, np.ndarray | None]], bool]:
    """``(state stamp, action)`` per state an episode's commands answered, in stamp order, and
    whether the episode was cut where a stamp went back.

    ``commands``: the episode's ``(stamp, seq, data)`` in arrival order. The runner sends them in
    order and the logger receives one writer's messages reliably in order, so their stamps never
    decrease unless the runner's states went back (a wall clock stepped back in realtime, under
    a runner older than 2026-12-06 that went on with the episode). Pairs are made in stamp
    order, so none may span such a step: the steps end at the last command before it (cut).

    Several commands can answer one state: in lockstep the policy's and a watchdog's safe command
    (or a repeat of one), in realtime a timer tick before a new state came. Lockstep, the action
    is the command the simulator stepped with when the state that step produced names it
    (``stepped_with``: stamp -> seq); None when that command is not in the log (its transition
    is dropped: the action is unknown). Without that echo (bags from before 2026-12-06, or a
    state the logger lacks) the first: it stepped the physics unless it was lost on the way.
    Realtime (``keep_last``) the last: what the robot held until the next state.
    """
    by_stamp: dict[int, list[tuple[int | None, np.ndarray]]] = {}
    last = None
    for stamp, seq, data in commands:
        if last is not None and stamp < last:
            return _choose(by_stamp, stepped_with, keep_last), True
        last = stamp
        by_stamp.setdefault(stamp, []).append((seq, data))
    return _choose(by_stamp, stepped_with, keep_last), False


def _choose(
    by_stamp: dict[int, list[tuple[int | None, np.ndarray]]], stepped_with: dict[int, int], keep_last: bool
) -> list[tuple[int, np.ndarray | None]]:
    """The action per state stamp among the commands that answered it (see _episode_steps)."""
    steps: list[tuple[int, np.ndarray | None]] = []
    for stamp, answers in by_stamp.items():
        used = None if keep_last else stepped_with.get(stamp)
        if used is not None:
            steps.append((stamp, next((d for q, d in answers if q == used), None)))
        else:
            steps.append((stamp, answers[-1][1] if keep_last else answers[0][1]))
    return steps


def _episode_plan(bag: BagContents) -> list[dict[str, Any]]:
    """One record per episode the runner started: start event, stop event (or None), extras."""
    recs: dict[int, dict[str, Any]] = {}
    # the simulator's reset and the runner's start come from two processes: the logger may store
    # the reset (with the episode's extras, e.g. a goal) before the start, so attach it by id
    resets: dict[int, dict[str, Any]] = {}
    for evt in bag.events:
        src, kind, eid = evt.get("source"), evt.get("event"), evt.get("id")
        if not isinstance(eid, int):
            continue
        if src == "policy_runner" and kind == "start":
            recs[eid] = {"id": eid, "start": evt, "stop": None, "extras": {}}
        elif eid in recs and src == "policy_runner" and kind == "stop":
            recs[eid]["stop"] = evt
        elif src in ("sim_bridge", "reset_node") and kind == "reset":  # topics.RESET_SOURCES
            resets[eid] = evt.get("extras") or {}
    for eid, rec in recs.items():
        rec["extras"] = resets.get(eid, {})
    listed = {r["id"]: r for r in listed_episode_records(bag.path, bag.custom)}
    for eid, rec in recs.items():
        stop = rec["stop"]
        status = listed.get(eid, {}).get("status")
        rec["complete"] = bool(stop is not None and stop.get("complete", True) and status != "incomplete")
    return [recs[k] for k in sorted(recs)]


def _damage_report(bag: BagContents, used: set[int], unusable: Sequence[int] = ()) -> dict[str, Any]:
    """What damaged segments cost: each one named, and the complete episodes that were lost
    (neither used nor read whole and found ``unusable``, which is reported as such)."""
    if not bag.damaged:
        return {}
    listed = listed_episode_records(bag.path, bag.custom)
    accounted = used | set(unusable)
    lost = sorted(r["id"] for r in listed if r.get("status") == "complete" and r["id"] not in accounted)
    warnings = [
        f"{bag.path}: segment {d['segment']} {d['problem']}; "
        f"recovered {d['recovered_messages']} messages from it"
        for d in bag.damaged
    ]
    if lost:
        warnings.append(
            f"{bag.path}: episode(s) {', '.join(map(str, lost))} logged as complete lost their end in a "
            "damaged segment and were left out (--include-incomplete keeps what remains of them)"
        )
    return {"damaged_segments": bag.damaged, "lost_episodes": lost, "warnings": warnings}


def ingest_bags(
    bag_paths: Sequence[str | Path],
    task: Task | str | None = None,
    *,
    include_incomplete: bool = False,
) -> dict[str, Any]:
    """Transitions of every bag, as numpy columns (see module docstring).

    Returns a dict with :data:`COLUMNS` plus ``task`` (name) and ``report`` (per-bag counts of
    episodes used/skipped and transitions dropped). ``task`` defaults to the one the bags record;
    bags of different tasks, or of another task than ``task``, are refused.
    """
    if not bag_paths:
        raise DatasetError("no bags given; pass one or more rosbag2 folders written by 'bremen collect'")
    folders = [Path(p).resolve() for p in bag_paths]
    twice = next((p for i, p in enumerate(folders) if p in folders[:i]), None)
    if twice is not None:  # episode ids are renumbered per bag: its episodes would count twice
        raise DatasetError(f"bag '{twice}' is given twice; pass each bag once")
    the_task: Task | None = get_task(task) if isinstance(task, str) else task
    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    report: list[dict[str, Any]] = []
    next_episode = 0
    for path in map(Path, bag_paths):
        bag = BagContents(path, include_unfinished=include_incomplete)
        bag_task = bag.custom.get("bremen.task", "")
        if the_task is None:
            if not bag_task:
                raise DatasetError(f"{path}: the bag does not say its task; pass --task")
            the_task = get_task(bag_task)
        elif bag_task and get_task(bag_task).name != the_task.name:
            raise DatasetError(
                f"{path} was recorded for task '{bag_task}' but the dataset is for '{the_task.name}'; "
                "ingest bags of one task together"
            )
        t = the_task
        counts = {"episodes": 0, "skipped_incomplete": 0, "dropped_transitions": 0}
        used: set[int] = set()
        unusable: list[int] = []  # complete episodes without one usable transition
        cut: list[int] = []  # episodes cut where a state stamp went back
        builders: dict[tuple[str, ...], Any] = {}
        # several commands can answer one state: which one is the action, see _episode_steps
        keep_last = bag.custom.get("bremen.mode") == "realtime"
        by_episode: dict[int, list[tuple[int, int | None, np.ndarray]]] = {}
        for eid, stamp, seq, data in bag.commands:
            by_episode.setdefault(eid, []).append((stamp, seq, data))
        for rec in _episode_plan(bag):
            if not rec["complete"] and not include_incomplete:
                counts["skipped_incomplete"] += 1
                continue
            stepped = bag.stepped_with.get(rec["id"], {})
            steps, went_back = _episode_steps(by_episode.get(rec["id"], []), stepped, keep_last)
            stop = rec["stop"] or {}
            stamps = [s for s, _ in steps]
            last = stop.get("last_obs_stamp_ns")
            if went_back:  # the stop's last state came after the step back: not the next state
                cut.append(rec["id"])
                last = None
            if isinstance(last, int) and (not stamps or last != stamps[-1]) and last in bag.states:
                stamps.append(last)
            extras = {k: float(v) for k, v in rec["extras"].items()}

            obs_list = [_observe(bag, builders, t, extras, s) for s in stamps]
            rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
            kept: list[int] = []
            # the last command's next state may be missing: then it makes no transition
            for k in range(min(len(steps), len(stamps) - 1)):
                o, o2, a = obs_list[k], obs_list[k + 1], steps[k][1]
                if o is None or o2 is None or a is None or not _usable_action(a, t.action_dim):
                    counts["dropped_transitions"] += 1
                    continue
                rows.append((o, a, o2, bag.safety.get((rec["id"], stamps[k]), 0)))
                kept.append(k)
            if rows:  # rewards too must survive float32 (finite observations can square past it)
                o = np.stack([r[0] for r in rows])  # (n, obs_dim)
                a = np.stack([r[1] for r in rows])  # (n, action_dim)
                o2 = np.stack([r[2] for r in rows])  # (n, obs_dim)
                rew = np.asarray(t.reward(o, a, o2), dtype=np.float64)
                ok = _finite_as_stored(rew)
                if not ok.all():
                    counts["dropped_transitions"] += int((~ok).sum())
                    rows = [r for r, keep in zip(rows, ok, strict=True) if keep]
                    kept = [k for k, keep in zip(kept, ok, strict=True) if keep]
                    o, a, o2, rew = o[ok], a[ok], o2[ok], rew[ok]
            if not rows:
                if rec["complete"]:
                    unusable.append(rec["id"])
                continue
            n = len(rows)
            term = np.asarray(t.terminated(o, a, o2), dtype=bool)
            timeouts = np.zeros(n, dtype=bool)
            reason = stop.get("reason", "interrupted") if rec["complete"] else "interrupted"
            if went_back:
                reason = "stamp_went_back"
            # the episode's own end was dropped: the data stops before it, like a time limit
            # (an unflagged last row would read as the episode going on)
            tail_dropped = kept[-1] != len(steps) - 1
            if (reason in TIMEOUT_REASONS or tail_dropped) and not term[-1]:
                timeouts[-1] = True
            cols["obs"].append(o)
            cols["actions"].append(a)
            cols["next_obs"].append(o2)
            cols["rewards"].append(rew)
            cols["terminals"].append(term)
            cols["timeouts"].append(timeouts)
            cols["episode_ids"].append(np.full(n, next_episode, dtype=np.int64))
            dep = rec["start"].get("deployment")
            cols["deployment_ids"].append(
                np.full(n, int(dep) if isinstance(dep, int) else -1, dtype=np.int64)
            )
            cols["policy_sha256"].append(np.full(n, str(rec["start"].get("policy_sha256", "")), dtype="<U64"))
            cols["interventions"].append(np.array([r[3] for r in rows], dtype=np.int32))
            next_episode += 1
            counts["episodes"] += 1
            used.add(rec["id"])
        entry: dict[str, Any] = {"bag": str(path), **counts, **_damage_report(bag, used, unusable)}
        if cut:
            entry["cut_episodes"] = cut
            entry["warnings"] = [
                *entry.get("warnings", []),
                f"{path}: in episode(s) {', '.join(map(str, cut))} a state stamp went back (the clock "
                "stepped back?); each was cut there and its commands after the step left out",
            ]
        if unusable:
            entry["unusable_episodes"] = unusable
            entry["warnings"] = [
                *entry.get("warnings", []),
                f"{path}: episode(s) {_ids(unusable)} logged as complete gave no usable "
                "transition (observations missing, not finite or not matching the task) and were left out",
            ]
        report.append(entry)
    if the_task is None or not cols["obs"]:
        where = ", ".join(map(str, bag_paths))
        unusable_in = [
            f"{e['bag']} episode(s) {_ids(e['unusable_episodes'])}"
            for e in report
            if e.get("unusable_episodes")
        ]
        if unusable_in:  # collecting longer would not help: the states themselves are unusable
            raise DatasetError(
                f"no usable transition in {where}: the complete episodes ({'; '.join(unusable_in)}) have "
                "observations missing, not finite or not matching the task; check the robot config's "
                "joints against the joint_states the robot sent"
            )
        raise DatasetError(
            f"no complete episode with transitions in {where}; collect longer, or ingest the "
            "incomplete ones too (--include-incomplete)"
        )
    out: dict[str, Any] = {
        "obs": np.concatenate(cols["obs"]).astype(np.float32),
        "actions": np.concatenate(cols["actions"]).astype(np.float32),
        "rewards": np.concatenate(cols["rewards"]).astype(np.float32),
        "next_obs": np.concatenate(cols["next_obs"]).astype(np.float32),
        "terminals": np.concatenate(cols["terminals"]),
        "timeouts": np.concatenate(cols["timeouts"]),
        "episode_ids": np.concatenate(cols["episode_ids"]),
        "deployment_ids": np.concatenate(cols["deployment_ids"]),
        "policy_sha256": np.concatenate(cols["policy_sha256"]),
        "interventions": np.concatenate(cols["interventions"]),
        "task": the_task.name,
        "report": report,
    }
    return out


__all__ = ["COLUMNS", "ingest_bags"]


def ingest_dataset(
    bag_paths: Sequence[str | Path], task: Task | str | None = None, *, include_incomplete: bool = False
) -> Dataset:
    """:func:`ingest_bags` as the trainer's :class:`Dataset` (the per-bag report goes to ``meta``)."""
    cols = ingest_bags(bag_paths, task, include_incomplete=include_incomplete)
    return Dataset(task=cols["task"], meta={"bags": cols["report"]}, **{k: cols[k] for k in COLUMNS})


def ingest_warnings(data: Dataset) -> list[str]:
    """The warnings in an ingested dataset's per-bag report (episodes lost or left out), in order."""
    return [line for report in data.meta.get("bags", []) for line in report.get("warnings", [])]


def _ids(ids: list[int]) -> str:
    """Episode ids for a message: ``1, 2, 3``."""
    return ", ".join(map(str, ids))
