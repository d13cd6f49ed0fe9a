"""``bremen operator init NAME``: create an operator's Ed25519 key pair; ``show`` prints it."""

from __future__ import annotations

import argparse
from pathlib import Path


def _init(args: argparse.Namespace) -> int:
    from bremen_robot.registry import init_operator

    priv, pub = init_operator(args.name, args.dir)
    print(f"private key {priv} (mode 0600: keep it secret, never copy it to a robot)")
    print(f"public key  {pub}")
    print(
        f"to let a campaign deploy what {args.name} approves: bremen trust add {args.name} --workspace W; "
        f"a robot outside a campaign: add to its robot config trusted_operator_keys: [{pub}]"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from bremen_robot.registry import RegistryError, key_fingerprint, key_paths, load_public_key

    _, pub = key_paths(args.name, args.dir)
    if not pub.is_file():  # load_public_key's own message is about a robot config's trusted keys
        raise RegistryError(
            f"no public key for operator {args.name} at '{pub}'; create it with "
            f"'bremen operator init {args.name}', or pass --dir / set $BREMEN_OPERATOR_DIR to its folder"
        )
    key = load_public_key(pub)
    print(f"{args.name}: {pub} (key {key_fingerprint(key)[:12]})")
    return 0


def _main(args: argparse.Namespace) -> int:
    return _show(args) if args.operator_action == "show" else _init(args)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("operator", help="manage operator signing keys")
    sub = p.add_subparsers(dest="operator_action", metavar="ACTION")
    sub.required = True
    for name, helptext in (
        ("init", "create NAME.key (0600) and NAME.pub; refuses to overwrite"),
        ("show", "print an operator's public key path and fingerprint"),
    ):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("name", help="operator name: letters, digits, '.', '_', '-'")
        s.add_argument(
            "--dir",
            type=Path,
            help="key folder (default: $BREMEN_OPERATOR_DIR or ~/.config/bremen/operators)",
        )
    p.set_defaults(func=_main)
