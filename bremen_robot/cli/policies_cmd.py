"""``bremen policies``: list the registry (``register`` and ``audit`` as sub-actions).

Also holds the ``--workspace`` / ``--db`` options the other registry commands share.
Heavy imports (torch, via the registry) happen inside the command, not at parser build time.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bremen_robot.cli.common import terminal_safe

if TYPE_CHECKING:
    from bremen_robot.registry import PolicyRecord, Registry


def add_registry_options(p: argparse.ArgumentParser, suppress: bool = False) -> None:
    """``--workspace`` and ``--db``; ``suppress`` for sub-actions so they keep the parent's value."""
    default: Any = argparse.SUPPRESS if suppress else None
    p.add_argument(
        "--workspace",
        type=Path,
        default=default,
        help="workspace folder (default: $BREMEN_WORKSPACE or ./bremen_ws)",
    )
    p.add_argument(
        "--db",
        default=default,
        metavar="URL",
        help="registry database URL, sqlite:///path (default: <workspace>/registry.sqlite "
        "or $BREMEN_REGISTRY_URL)",
    )


def open_registry(args: argparse.Namespace, create: bool = False, write: bool = False) -> Registry:
    """The registry named by ``--workspace`` / ``--db``: read-only unless ``write`` or ``create``.

    Read-only commands never create, migrate or write the database file (docs/registry.md).
    """
    from bremen_robot.registry import Registry

    ws, url = getattr(args, "workspace", None), getattr(args, "db", None)
    return Registry.open(ws, url, create=create, readonly=not (write or create))


def _lineage(rec: PolicyRecord) -> str:
    lin = rec.lineage or {}
    parts = []
    parent = lin.get("parent")
    if parent:
        parts.append(f"parent={str(parent)[:12]}")
    if lin.get("deployment"):
        parts.append(f"from-dep={lin['deployment']}")
    digests = lin.get("data_digests") or []
    if digests:
        parts.append("data=" + ",".join(str(d)[:8] for d in digests))
    return " ".join(parts) or "-"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _list(args: argparse.Namespace) -> int:
    with open_registry(args) as reg:
        records = reg.policies()
        from bremen_robot.registry.shadow_runs import shadow_counts

        shadows = shadow_counts(reg)  # shadow runs are not deployments: their own column
        print(f"registry {reg.db_path}: {reg.deployment_count()} deployment(s), {len(records)} policies")
        if not records:
            return 0
        rows = [
            [
                "ID",
                "STATE",
                "KIND",
                "ROBOT/TASK",
                "CREATED",
                "DEPLOYMENTS",
                "SHADOW",
                "APPROVED BY",
                "LINEAGE",
            ]
        ]
        for rec in records:
            rows.append(
                [
                    rec.id,
                    rec.state,
                    rec.kind,
                    f"{rec.robot or '-'}/{rec.task or '-'}",
                    rec.created_at[:16].replace("T", " "),
                    ",".join(str(n) for n in rec.deployments) or "-",
                    str(shadows.get(rec.sha256, 0)),
                    rec.approval.operator if rec.approval else "-",
                    _lineage(rec),
                ]
            )
        print(_table(rows))
        _sessions(reg)
    return 0


def _sessions(reg: Any) -> None:
    """A fleet's collection sessions (issue 17): one line per robot under its deployment's policy."""
    from bremen_robot.registry.sessions import sessions

    rows = sessions(reg)
    if not rows:
        return
    table = [["POLICY", "ROUND", "ROBOT", "NODE", "SAMPLES", "EPISODES", "INTERVENTIONS"]]
    for s in rows:
        counts = (s.round, s.samples, s.episodes, s.interventions)
        table.append([s.policy_id, str(counts[0]), s.robot, s.node, *(str(c) for c in counts[1:])])
    print("\ncollection sessions (one per robot of a fleet deployment):")
    print(_table(table))


def _register(args: argparse.Namespace) -> int:
    from bremen_robot.registry import read_report
    from bremen_robot.registry.hints import bremen_command

    report = read_report(args.report) if args.report is not None else None
    lineage: dict[str, Any] = {}
    if args.parent:
        lineage["parent"] = args.parent
    if args.deployment is not None:
        lineage["deployment"] = args.deployment
    with open_registry(args, create=True) as reg:
        before = {r.sha256 for r in reg.policies()}
        rec = reg.register(args.artifact, report=report, lineage=lineage or None)
        what = "already registered" if rec.sha256 in before else "registered"
        review = bremen_command(f"review {rec.id}", reg.workspace)
        print(f"{what}: policy {rec.id} ({rec.state}); review it with '{review}'")
    return 0


def _audit(args: argparse.Namespace) -> int:
    with open_registry(args) as reg:
        rows = reg.audit(args.id)
        for a in rows:
            note = f"  {a.note}" if a.note else ""
            move = f"{a.from_state or '-':>9} -> {a.to_state:<9}"
            # notes and actors are typed by people (--reason, --note): escapes must not reach the terminal
            print(terminal_safe(f"{a.seq:>5}  {a.at}  {a.policy_id:<12}  {move}  {a.actor}{note}"))
        if not rows:
            print("audit log is empty")
    return 0


def _main(args: argparse.Namespace) -> int:
    action = getattr(args, "policies_action", None)
    if action == "register":
        return _register(args)
    if action == "audit":
        return _audit(args)
    return _list(args)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "policies",
        help="list registered policies, deployment count and lineage",
        description="List the policy registry: state, deployments, approver and lineage of every policy.",
    )
    add_registry_options(p)
    sub = p.add_subparsers(dest="policies_action", metavar="ACTION")
    r = sub.add_parser("register", help="add an exported artifact as a candidate")
    r.add_argument("artifact", type=Path, help="artifact folder (policy.pt + manifest.json)")
    r.add_argument("--report", type=Path, help="training report JSON (default: <artifact>/report.json)")
    r.add_argument(
        "--parent", help="id of the policy whose deployment collected the training data, or 'random'"
    )
    r.add_argument("--deployment", type=int, help="number of the deployment whose data trained it")
    add_registry_options(r, suppress=True)
    a = sub.add_parser("audit", help="print the append-only audit log")
    a.add_argument("id", nargs="?", help="only this policy")
    add_registry_options(a, suppress=True)
    p.set_defaults(func=_main)
