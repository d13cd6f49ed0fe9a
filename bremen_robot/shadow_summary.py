"""A shadow run's summary, from its bag (docs/registry.md "Shadow runs").

Every message a runner publishes for a control step carries a tag ``(episode, state stamp)``
(:mod:`bremen_robot.ros.topics`); the acting runner's and the shadow runner's messages that
answered the same ``joint_states`` message pair up by it. Only steps inside an episode count
(tag episode >= 0): between episodes both send the safe command by design.

* **action difference**: per joint, mean and max of ``|shadow command - acting command|`` (both
  after their shields: what the candidate's shield would have sent vs what was sent);
* **interventions it would have caused**: the shadow shield's interventions per reason code
  (and the acting shield's, for comparison);
* **out-of-distribution score**: per paired step, the RMS over joints of
  ``(shadow raw action - logged raw action) / noise``, where ``noise`` is the acting
  deployment's exploration noise: ``noise_sigma`` of its episodes, or the standard deviation of
  uniform actions, ``(high - low) / sqrt(12)``, for the random policy. The logged action is the
  acting policy's mean plus that noise, so a candidate acting like the data scores about 1
  (sqrt(shift² + 1) for a mean shift of ``shift`` noise units); 3 or more means its actions lie
  where the data has (almost) none. No model is needed, so it is available for every run; the
  trainer's behavior-shift figure (docs/algorithm.md) is the same unit on the training data.

:func:`summarize` is pure (mappings in, dict out); :func:`summarize_bag` reads a bag into it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Key = tuple[int, int]  # (episode, obs_stamp_ns)


def _in_episode(m: Mapping[Key, np.ndarray]) -> set[Key]:
    return {k for k in m if k[0] >= 0}


def summarize(
    *,
    acting_cmd: Mapping[Key, np.ndarray],
    shadow_cmd: Mapping[Key, np.ndarray],
    acting_raw: Mapping[Key, np.ndarray],
    shadow_raw: Mapping[Key, np.ndarray],
    acting_interventions: Sequence[str],
    shadow_interventions: Sequence[str],
    noise: float | Sequence[float] | None,
    joints: Sequence[str],
) -> dict[str, Any]:
    """The summary of one shadow run (module docstring); ``noise`` None: no OOD score."""
    n = len(joints)
    paired = sorted(_in_episode(acting_cmd) & _in_episode(shadow_cmd))
    cmd: dict[str, Any] = {"mean_abs": None, "max_abs": None, "mean_abs_all": None, "max_abs_all": None}
    if paired:
        diff = np.abs(np.stack([shadow_cmd[k][:n] - acting_cmd[k][:n] for k in paired]))
        cmd = {
            "mean_abs": {j: float(v) for j, v in zip(joints, diff.mean(axis=0), strict=True)},
            "max_abs": {j: float(v) for j, v in zip(joints, diff.max(axis=0), strict=True)},
            "mean_abs_all": float(diff.mean()),
            "max_abs_all": float(diff.max()),
        }
    ood: dict[str, Any] = {"steps": 0, "mean": None, "max": None, "noise": None}
    raw_keys = sorted(_in_episode(acting_raw) & _in_episode(shadow_raw))
    if noise is not None and raw_keys:
        scale = np.broadcast_to(np.asarray(noise, dtype=np.float64), (n,))
        if np.all(scale > 0):
            d = np.stack([(shadow_raw[k][:n] - acting_raw[k][:n]) / scale for k in raw_keys])
            z = np.sqrt((d**2).mean(axis=1))
            ood = {"steps": len(raw_keys), "mean": float(z.mean()), "max": float(z.max())}
            ood["noise"] = [float(s) for s in scale]
    return {
        "acting_steps": len(_in_episode(acting_cmd)),
        "shadow_steps": len(_in_episode(shadow_cmd)),
        "paired_steps": len(paired),
        "command_difference": cmd,
        "interventions": {
            "shadow": dict(sorted(Counter(shadow_interventions).items())),
            "acting": dict(sorted(Counter(acting_interventions).items())),
        },
        "ood": ood,
    }


def _fmt(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def summary_lines(s: Mapping[str, Any]) -> list[str]:
    """A few lines for ``bremen review``."""
    cmd = s.get("command_difference") or {}
    mean, mx = cmd.get("mean_abs") or {}, cmd.get("max_abs") or {}
    per_joint = ", ".join(f"{j} {_fmt(mean[j])}/{_fmt(mx.get(j))}" for j in mean)
    iv = s.get("interventions") or {}
    sh, ac = iv.get("shadow") or {}, iv.get("acting") or {}

    def reasons(d: Mapping[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"

    ood = s.get("ood") or {}
    return [
        f"paired steps {s.get('paired_steps', 0)} of {s.get('acting_steps', 0)} acting steps",
        f"command difference from the acting controller: mean |d| {_fmt(cmd.get('mean_abs_all'))}, "
        f"max {_fmt(cmd.get('max_abs_all'))}" + (f"; per joint mean/max: {per_joint}" if per_joint else ""),
        f"interventions it would have caused: {sum(sh.values())} ({reasons(sh)}); "
        f"the acting controller's: {sum(ac.values())} ({reasons(ac)})",
        f"out-of-distribution score (action distance from the logged actions in collection-noise "
        f"units; ~1 = like the data): mean {_fmt(ood.get('mean'))}, max {_fmt(ood.get('max'))}"
        + ("" if ood.get("mean") is not None else f" ({s.get('ood_note', 'not computed')})"),
    ]


def _array_tag(msg: Any) -> Key | None:
    from bremen_robot.ros.topics import parse_tag

    return parse_tag(msg.layout.dim[0].label) if len(msg.layout.dim) else None


def read_streams(bag: Path) -> dict[str, Any]:
    """The acting and shadow streams of a bag, keyed by tag, and its episode events."""
    from bremen_robot.data.bag_contents import listed_files
    from bremen_robot.data.mcap_salvage import read_segment
    from bremen_robot.ros import topics as T
    from bremen_robot.ros.bagfile import deserialize, read_custom, recorded_topics

    custom = read_custom(bag)
    roles = recorded_topics(bag, custom)
    by_name = {name: role for role, name in roles.items()}
    for role in T.MSG_TYPES:
        by_name.setdefault("/" + role.lstrip("/"), role)
    arrays: dict[str, dict[Key, np.ndarray]] = {
        t: {} for t in (T.COMMAND, T.SHADOW_COMMAND, T.RAW_ACTION, T.SHADOW_RAW_ACTION)
    }
    reasons: dict[str, list[str]] = {T.SAFETY: [], T.SHADOW_SAFETY: []}
    events: list[dict[str, Any]] = []
    files, _ = listed_files(bag)
    for name in files:
        seg = bag / name
        if not seg.is_file():
            continue
        for topic, msgtype, raw in read_segment(seg).messages:
            role = by_name.get(topic, "")
            if role in arrays:
                m = deserialize(raw, msgtype)
                tag = _array_tag(m)
                if tag is not None:
                    arrays[role].setdefault(tag, np.asarray(m.data, dtype=np.float64))
            elif role in reasons:
                m = deserialize(raw, msgtype)
                tag = T.parse_tag(m.header.frame_id)
                if tag is not None and tag[0] >= 0:
                    reasons[role] += [s.name.rsplit("/", 1)[-1] for s in m.status]
            elif role == T.EPISODE:
                try:
                    evt = json.loads(deserialize(raw, msgtype).data)
                except ValueError:
                    continue
                if isinstance(evt, dict):
                    events.append(evt)
    return {"custom": custom, "arrays": arrays, "reasons": reasons, "events": events}


def summarize_bag(bag: Path | str) -> dict[str, Any]:
    """:func:`summarize` of a shadow run's bag, with the acting policy and the noise it used."""
    from bremen_robot.ros import topics as T
    from bremen_robot.tasks import get_task

    bag = Path(bag)
    got = read_streams(bag)
    task = get_task(got["custom"].get("bremen.task") or "")
    starts = [e for e in got["events"] if e.get("source") == "policy_runner" and e.get("event") == "start"]
    acting = str(starts[0].get("policy_sha256", "")) if starts else ""
    sigma = float(starts[0].get("noise_sigma", 0.0) or 0.0) if starts else 0.0
    noise: Any = None
    note = ""
    if acting == "random":
        noise = (np.asarray(task.action_high) - np.asarray(task.action_low)) / math.sqrt(12.0)
    elif sigma > 0:
        noise = sigma
    else:
        note = "the acting policy ran without exploration noise: no unit to measure in"
    a, r = got["arrays"], got["reasons"]
    out = summarize(
        acting_cmd=a[T.COMMAND],
        shadow_cmd=a[T.SHADOW_COMMAND],
        acting_raw=a[T.RAW_ACTION],
        shadow_raw=a[T.SHADOW_RAW_ACTION],
        acting_interventions=r[T.SAFETY],
        shadow_interventions=r[T.SHADOW_SAFETY],
        noise=noise,
        joints=list(task.action_names),
    )
    out.update(acting_policy=acting, task=task.name, bag=str(bag))
    if note:
        out["ood_note"] = note
    return out
