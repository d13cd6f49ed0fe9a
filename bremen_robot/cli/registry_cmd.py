"""``bremen registry check|backup|restore``: integrity of the registry database, and its copies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bremen_robot.cli.policies_cmd import add_registry_options, open_registry


def _db_path(args: argparse.Namespace) -> Path:
    from bremen_robot.registry.store import locate

    return locate(getattr(args, "workspace", None), getattr(args, "db", None))[1]


def _check(args: argparse.Namespace) -> int:
    from bremen_robot.registry.maintenance import check

    with open_registry(args) as reg:
        problems, summary = check(reg, args.operators)
        for line in problems:
            print(f"{reg.db_path}: {line}")
        if problems:
            print(f"registry {reg.db_path}: {len(problems)} problem(s)", file=sys.stderr)
            return 1
        print(f"registry {reg.db_path}: ok ({summary})")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from bremen_robot.registry.maintenance import backup

    src = _db_path(args)
    if not src.is_file():
        from bremen_robot.registry import RegistryError

        raise RegistryError(f"no registry database at '{src}'; pass --workspace / --db")
    out = backup(src, args.out)
    print(f"backed up {src} to {out}; copy the workspace's artifacts/ folder too (it is not in the file)")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from bremen_robot.registry.maintenance import restore

    dest = _db_path(args)
    moved = restore(args.backup, dest, replace=args.replace)
    aside = f"; the previous database is kept as {moved}" if moved else ""
    print(f"restored {dest} from {args.backup}{aside}; run 'bremen registry check' next")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "registry",
        help="check, back up or restore the registry database",
        description="Integrity check with signature re-verification, online backup, and restore.",
    )
    sub = p.add_subparsers(dest="registry_action", metavar="ACTION")
    sub.required = True
    c = sub.add_parser(
        "check",
        help="integrity check, re-verify every approval signature, re-hash the store (read-only)",
        description="Prints one line per problem and exits 1 if there is any; 0 and 'ok' otherwise.",
    )
    c.add_argument(
        "--operators",
        type=Path,
        help="folder of operator .pub files for approvals made before names were bound to keys "
        "(default: $BREMEN_OPERATOR_DIR or ~/.config/bremen/operators)",
    )
    c.set_defaults(func=_check)
    b = sub.add_parser(
        "backup",
        help="copy the live database to a new file (SQLite online backup; never overwrites)",
    )
    b.add_argument("--out", type=Path, required=True, help="the new backup file")
    b.set_defaults(func=_backup)
    r = sub.add_parser(
        "restore",
        help="put a backup in place; an existing database is only moved aside with --replace",
        description="Stop every bremen process that uses the registry first.",
    )
    r.add_argument("backup", type=Path, help="a file written by 'bremen registry backup'")
    r.add_argument(
        "--replace",
        action="store_true",
        help="move the existing database aside to <name>.replaced-<time> (kept) and restore",
    )
    r.set_defaults(func=_restore)
    for s in (c, b, r):
        add_registry_options(s)
