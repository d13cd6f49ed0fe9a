"""``bremen review``: a candidate's report as text, and its curves as PNG files.

The report is the dict the trainer stored with the candidate (``report.json``). Sections read,
each optional (a missing one prints "not run"):

* ``ensemble``: per-epoch ``train``/``holdout`` losses (a dict of lists or a list of per-epoch
  dicts) and the holdout error per member (``holdout_per_member``: one value per member, or
  per epoch a list of values);
* ``bc``: the behavior-cloning loss curve;
* ``trpo``: per-iteration ``kl``, ``surrogate``, ``imagined_return``, ``entropy`` (and
  optionally ``kl_to_behavior`` / ``disagreement``);
* ``evaluation``: real returns in simulation and ``safety_interventions`` (a count or a dict
  of counts per reason);
* ``sim2real``: anything measured on the target system;
* top level ``kl_to_behavior`` and ``disagreement`` (ensemble disagreement on the policy's own
  imagined states) when the trainer reports them as single figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bremen_robot.registry.store import PolicyRecord

Series = dict[str, list[float]]

_INDEX_KEYS = ("epoch", "epochs", "iteration", "iterations", "iter", "step", "steps")
# per-member figures, not curves over time: shown in the holdout-per-member line and plot
_MEMBER_KEYS = ("best_holdout_mse", "holdout_per_member", "member_holdout")
# one value per ensemble member, among the section's curves: plotted over members, not epochs
_PER_MEMBER_CURVES = {"best_epoch": "epoch of its best holdout loss"}
_CURVE_X = {"ensemble": "epoch", "bc": "block of 1000 BC steps (mean loss)", "trpo": "TRPO iteration"}


def curve_axes(section: str, key: str) -> tuple[str, str]:
    """``(x label, y label)`` of the report curve ``section.key``."""
    if section == "ensemble" and key in _PER_MEMBER_CURVES:
        return "ensemble member", _PER_MEMBER_CURVES[key]
    return _CURVE_X.get(section, "episode" if section in ("evaluation", "sim2real") else "step"), key


def _num(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if x is None:
        return math.nan
    return None


def _numbers(x: Any) -> list[float] | None:
    """A list of numbers (None counted as NaN), else None."""
    if not isinstance(x, Sequence) or isinstance(x, (str, bytes)) or not x:
        return None
    out = [_num(v) for v in x]
    if any(v is None for v in out):
        return None
    return [float(v) for v in out if v is not None]


def _matrix(x: Any) -> list[list[float]] | None:
    """A list of equal-length number lists (e.g. epochs x members), else None."""
    if not isinstance(x, Sequence) or isinstance(x, (str, bytes)) or not x:
        return None
    rows = [_numbers(r) for r in x]
    if any(r is None for r in rows):
        return None
    clean = [r for r in rows if r is not None]
    if len({len(r) for r in clean}) != 1:
        return None
    return clean


def series_of(section: Any) -> Series:
    """Numeric curves in a section: ``{name: [..]}`` from a dict of lists or a list of dicts."""
    out: Series = {}
    if isinstance(section, Mapping):
        for k, v in section.items():
            nums = _numbers(v)
            if nums is not None and len(nums) > 1 and str(k) not in _INDEX_KEYS + _MEMBER_KEYS:
                out[str(k)] = nums
    elif isinstance(section, Sequence) and not isinstance(section, (str, bytes)):
        rows = [r for r in section if isinstance(r, Mapping)]
        if rows and len(rows) == len(section):
            keys = [k for k in rows[0] if str(k) not in _INDEX_KEYS]
            for k in keys:
                vals = [_num(r.get(k)) for r in rows]
                if all(v is not None for v in vals) and len(vals) > 1:
                    out[str(k)] = [float(v) for v in vals if v is not None]
        else:
            nums = _numbers(section)
            if nums is not None and len(nums) > 1:
                out["value"] = nums
    return out


def scalars_of(section: Any) -> dict[str, Any]:
    """Single figures (numbers, strings, booleans) in a dict section."""
    if not isinstance(section, Mapping):
        return {}
    return {str(k): v for k, v in section.items() if isinstance(v, (int, float, str, bool)) or v is None}


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _summary(name: str, ys: list[float]) -> str:
    finite = [y for y in ys if math.isfinite(y)]
    if not finite:
        return f"{name}: {len(ys)} points, none finite"
    return (
        f"{name}: {len(ys)} points, first {_fmt(ys[0])} -> last {_fmt(ys[-1])} "
        f"(min {_fmt(min(finite))}, max {_fmt(max(finite))})"
    )


def _get(report: Mapping[str, Any], *paths: str) -> Any:
    """First present value among dotted key paths."""
    for path in paths:
        cur: Any = report
        for part in path.split("."):
            if not isinstance(cur, Mapping) or part not in cur:
                break
            cur = cur[part]
        else:
            return cur
    return None


def _last(x: Any) -> float | None:
    """A single figure, or the last point of a curve; None when absent or not numeric."""
    if x is None:
        return None
    nums = _numbers(x)
    if nums:
        return nums[-1]
    return _num(x)


def holdout_per_member(report: Mapping[str, Any]) -> tuple[list[float] | None, list[list[float]] | None]:
    """(final holdout error per member, per-epoch matrix epochs x members when given).

    The final figure prefers the members' best (restored) holdout error when reported.
    """
    mat = None
    for key in ("ensemble.holdout_mse", "ensemble.holdout_per_member", "ensemble.member_holdout"):
        mat = _matrix(_get(report, key))
        if mat is not None:
            break
    final = _numbers(
        _get(report, "ensemble.best_holdout_mse", "ensemble.holdout_per_member", "ensemble.member_holdout")
    )
    if final is None and mat is not None:
        final = mat[-1]
    return final, mat


def _pairs(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {_fmt(v)}" for k, v in d.items())


def _header(record: PolicyRecord) -> list[str]:
    m = record.manifest or {}
    lines = [
        f"policy {record.id}  ({record.sha256})",
        f"  state {record.state}, kind {record.kind}, robot {record.robot or '-'}, task {record.task or '-'}",
        f"  created {record.created_at}, registered {record.registered_at}",
    ]
    if m:
        lines.append(
            f"  {len(m.get('observation_names', []))} observations, {len(m.get('action_names', []))} actions "
            f"({', '.join(m.get('joint_order', []))}), {_fmt(m.get('control_rate_hz'))} Hz"
        )
    lin = record.lineage or {}
    digests = ", ".join(str(d)[:12] for d in lin.get("data_digests") or []) or "none recorded"
    parent = lin.get("parent")
    lines.append(
        f"  lineage: parent {parent[:12] if isinstance(parent, str) else '-'}, "
        f"from deployment {lin.get('deployment') or '-'}, data {digests}"
    )
    if record.approval:
        a = record.approval
        lines.append(f"  approved by {a.operator} at {a.time}" + (f": {a.note}" if a.note else ""))
    if record.deployments:
        lines.append(f"  deployment(s): {', '.join(str(n) for n in record.deployments)}")
    return lines


def _curves(r: Mapping[str, Any]) -> list[str]:
    lines = ["training curves"]
    for name in ("ensemble", "bc", "trpo"):
        curves = series_of(r.get(name))
        if not curves:
            lines.append(f"  {name}: not run")
            continue
        for k, ys in curves.items():
            lines.append(f"  {name}.{_summary(k, ys)}")
        sc = scalars_of(r.get(name))
        if sc:
            lines.append(f"  {name}: {_pairs(sc)}")
    return lines


def _members(r: Mapping[str, Any]) -> str:
    final, mat = holdout_per_member(r)
    if not final:
        return "holdout error per ensemble member: not run"
    worst = max(range(len(final)), key=lambda i: final[i] if math.isfinite(final[i]) else math.inf)
    epochs = f", {len(mat)} epochs" if mat else ""
    return (
        "holdout error per ensemble member: "
        + ", ".join(f"#{i} {_fmt(v)}" for i, v in enumerate(final))
        + f" (worst #{worst}{epochs})"
    )


def _returns(r: Mapping[str, Any]) -> str:
    imagined = _last(_get(r, "imagined_return_final", "trpo.imagined_return", "imagined_return"))
    real = _last(
        _get(
            r,
            "evaluation.return_mean",
            "evaluation.mean_return",
            "evaluation.return",
            "evaluation.real_return",
        )
    )
    if imagined is None and real is None:
        return "imagined vs real return: not run"
    gap = ""
    if imagined is not None and real is not None and math.isfinite(imagined - real):
        gap = f", imagined - real {_fmt(imagined - real)}"
    return (
        f"imagined vs real return: imagined {_fmt(imagined) if imagined is not None else 'not known'}, "
        f"real {_fmt(real) if real is not None else 'not run'}{gap}"
    )


def _kl(r: Mapping[str, Any]) -> str:
    kl_b = _last(_get(r, "kl_to_bc", "kl_to_behavior", "trpo.kl_to_bc", "trpo.kl_to_behavior"))
    kl_step = _last(_get(r, "trpo.kl"))
    parts = []
    if kl_b is not None:  # BC's std sits at its floor: any mean change reads in the thousands
        parts.append(f"KL(pi || pi_BC) {_fmt(kl_b)} (not a distance to judge: read the behavior shift)")
    if kl_step is not None:
        parts.append(f"last TRPO step KL {_fmt(kl_step)}")
    return "KL to the behavior policy: " + ("; ".join(parts) if parts else "not run")


def _behavior_shift(r: Mapping[str, Any]) -> str:
    # KL to BC counts mean changes in units of BC's floored std (thousands); this is readable
    shift = _last(_get(r, "behavior_shift", "trpo.behavior_shift"))
    if shift is None:
        return "distance from the deployed behavior: not run"
    return (
        f"distance from the deployed behavior: the mean action moved {_fmt(shift)} exploration-noise std "
        "from BC's on the behavior data's states (behavior_shift)"
    )


def _disagreement(r: Mapping[str, Any]) -> str:
    own_keys = ("policy_imagined", "imagined", "policy")
    raw = _get(r, "disagreement", "trpo.disagreement", "ensemble.disagreement")
    if isinstance(raw, Mapping):  # e.g. {"policy_imagined": .., "dataset": ..}
        own = _last(_get(raw, *own_keys))
        others = {k: v for k, v in scalars_of(raw).items() if k not in own_keys}
        text = _fmt(own) if own is not None else "not run"
        if others:
            text += f" (for comparison: {_pairs(others)})"
    else:
        value = _last(raw)
        text = _fmt(value) if value is not None else "not run"
    return "ensemble disagreement on the policy's imagined states: " + text


def _interventions(r: Mapping[str, Any]) -> str:
    si = _get(r, "evaluation.safety_interventions", "evaluation.interventions", "safety_interventions")
    if si is None:
        return "safety interventions in evaluation: not run"
    if isinstance(si, Mapping):
        total = sum(v for v in si.values() if isinstance(v, (int, float)) and not isinstance(v, bool))
        return f"safety interventions in evaluation: {_fmt(total)} ({_pairs(si)})"
    return f"safety interventions in evaluation: {_fmt(si)}"


def _ret(v: Any) -> str:
    return f"{v:.1f}" if isinstance(v, int | float) and not isinstance(v, bool) else str(v)


def _beat_deployed(camp: Any, train: Any) -> bool:
    """Whether the proposal beat a deployed policy (so that ``pick: earliest`` chose it): not at
    deployment 1, not a kept policy, not a snapshot proposed with a warning."""
    if isinstance(camp, Mapping):
        return bool(
            camp.get("deployed_estimate") is not None and camp.get("proposed") and not camp.get("warning")
        )
    return (
        isinstance(train, Mapping)
        and train.get("deployed_estimate") is not None
        and bool(train.get("beats_deployed"))
    )


def selection_lines(r: Mapping[str, Any]) -> list[str]:
    """The candidate-selection table (issue 16): the campaign's record when there is one (it adds
    the twin), else the trainer's; nothing when the training did not select."""
    camp, train = r.get("campaign_selection"), r.get("selection")
    if not isinstance(camp, Mapping) and not isinstance(train, Mapping):
        return []
    if isinstance(camp, Mapping):
        rows = [dict(x) for x in camp.get("table") or [] if isinstance(x, Mapping)]
        ref = camp.get("deployed_estimate")
        twin = camp.get("twin") if isinstance(camp.get("twin"), Mapping) else None
    else:
        assert isinstance(train, Mapping)
        rows = [
            {
                "snapshot": x.get("name"),
                "offline_estimate": x.get("estimate"),
                "shift": x.get("shift"),
                "twin": None,
                "chosen": x.get("chosen"),
            }
            for x in train.get("snapshots") or []
            if isinstance(x, Mapping)
        ]
        ref, twin = train.get("deployed_estimate"), None
    source = camp if isinstance(camp, Mapping) else train or {}
    limit, margin = source.get("max_action_shift"), source.get("margin")
    head = "candidate selection (offline estimate: lower bound across ensemble members of imagined return)"
    out = [head, f"  {'snapshot':<12} {'offline estimate':>16} {'shift':>6} {'twin score':>11}  chosen"]
    for x in rows:
        tw = "-" if x.get("twin") is None else _ret(x.get("twin"))
        sh = x.get("shift")
        shift = f"{sh:.2f}" if isinstance(sh, int | float) and not isinstance(sh, bool) else "-"
        if isinstance(limit, int | float) and isinstance(sh, int | float) and sh > limit:
            shift += "*"
        out.append(
            f"  {x.get('snapshot')!s:<12} {_ret(x.get('offline_estimate')):>16} {shift:>6} {tw:>11}  "
            + ("yes" if x.get("chosen") else "")
        )
    if ref is not None or twin is not None:
        deployed_twin = "-" if twin is None else _ret(twin.get("deployed"))
        out.append(f"  {'deployed':<12} {'-' if ref is None else _ret(ref):>16} {'':>6} {deployed_twin:>11}")
    if isinstance(margin, int | float) and margin > 0 and isinstance(ref, int | float):
        out.append(
            f"  beating the deployed policy takes an offline estimate above {ref + margin * abs(ref):.1f} "
            f"(its {ref:.1f} + {margin:g} x |{ref:.1f}|)"
        )
    if source.get("pick") == "earliest" and _beat_deployed(camp, train):
        out.append(
            "  chosen: the earliest snapshot (fewest TRPO updates) that beats the deployed policy, "
            "not the highest estimate (selection.pick: earliest)"
        )
    if isinstance(limit, int | float):
        out.append(
            f"  shift: mean-action change from BC in units of the data's action spread; "
            f"* beyond the limit {limit:g}, never proposed"
        )
    if twin is not None:
        steps = camp.get("twin_steps") if isinstance(camp, Mapping) else None
        out.append(f"  twin: {twin.get('engine')}, {steps} simulated steps (not deployments)")
    if isinstance(camp, Mapping):
        if camp.get("warning"):
            out.append(f"  WARNING: {camp['warning']}")
        elif camp.get("line"):
            out.append(f"  {camp['line']}")
    return out


def render_text(record: PolicyRecord) -> str:
    """The review as text: header and lineage, then each report section ("not run" when absent)."""
    r = record.report or {}
    lines = _header(record)
    lines += [""] + _curves(r) + [""]
    lines += [_members(r), _returns(r), _kl(r), _behavior_shift(r), _disagreement(r)]
    for name, title in (("evaluation", "simulation evaluation"), ("sim2real", "sim2real")):
        sc = {
            k: v
            for k, v in scalars_of(r.get(name)).items()
            if k not in ("safety_interventions", "interventions")
        }
        lines.append(f"{title}: " + (_pairs(sc) if sc else "not run"))
    lines.append(_interventions(r))
    lines += selection_lines(r)
    for name in ("data", "timing"):
        sc = scalars_of(r.get(name))
        if sc:
            lines.append(f"{name}: {_pairs(sc)}")
    metrics = scalars_of((record.manifest or {}).get("metrics") or {})
    if metrics:
        lines.append(f"manifest metrics: {_pairs(metrics)}")
    return "\n".join(lines)


def write_plots(record: PolicyRecord, out_dir: Path) -> list[Path]:
    """Write one PNG per report section with curves; returns the files written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r = record.report or {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig: Figure, name: str) -> None:
        FigureCanvasAgg(fig)
        path = out_dir / f"{record.id}-{name}.png"
        fig.savefig(path, dpi=100)
        written.append(path)

    for section in ("ensemble", "bc", "trpo", "evaluation", "sim2real"):
        curves = series_of(r.get(section))
        if not curves:
            continue
        n = len(curves)
        cols = min(n, 3)
        rows = (n + cols - 1) // cols
        fig = Figure(figsize=(4 * cols, 3 * rows), layout="constrained")
        fig.suptitle(f"{record.id} {section}")
        for i, (k, ys) in enumerate(curves.items()):
            ax = fig.add_subplot(rows, cols, i + 1)
            xlabel, ylabel = curve_axes(section, k)
            if xlabel == "ensemble member":
                ax.bar([str(m) for m in range(len(ys))], ys)
            else:
                ax.plot(range(len(ys)), ys)
            ax.set_title(k)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
        save(fig, section)

    final, mat = holdout_per_member(r)
    if final:
        fig = Figure(figsize=(8 if mat else 5, 3.5), layout="constrained")
        ax = fig.add_subplot(1, 2 if mat else 1, 1)
        ax.bar([str(i) for i in range(len(final))], final)
        ax.set_title("final holdout error per member")
        ax.set_xlabel("member")
        if mat:
            ax2 = fig.add_subplot(1, 2, 2)
            for j in range(len(mat[0])):
                ax2.plot([row[j] for row in mat], label=f"#{j}")
            ax2.set_title("holdout error per member")
            ax2.set_xlabel("epoch")
            ax2.legend(fontsize="small")
        save(fig, "holdout_members")

    imagined = _numbers(_get(r, "trpo.imagined_return", "imagined_return"))
    real_v = _last(
        _get(
            r,
            "evaluation.return_mean",
            "evaluation.mean_return",
            "evaluation.return",
            "evaluation.real_return",
        )
    )
    if imagined:
        fig = Figure(figsize=(5, 3.5), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(imagined, label="imagined")
        if real_v is not None:
            ax.axhline(real_v, color="C1", linestyle="--", label="real (evaluation)")
        ax.set_title("imagined vs real return")
        ax.set_xlabel("TRPO iteration")
        ax.legend()
        save(fig, "returns")
    return written
