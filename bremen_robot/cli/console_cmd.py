"""``bremen console``: a local, read-only web page of a campaign workspace (docs/console.md)."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path

from bremen_robot.errors import BremenError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "console",
        help="serve a read-only web page of a campaign: live progress, timeline, candidates, audit log",
        description="Serves a local web page that follows a campaign (running or finished) in WORKSPACE. "
        "It only reads the workspace. Stop it with Ctrl-C.",
    )
    p.add_argument("--workspace", type=Path, required=True, help="the campaign's workspace folder")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; any other is reachable from the "
        "network and has no authentication)",
    )
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.set_defaults(func=run)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or one line saying why not (port in use, bad address)."""
    if not 0 <= port <= 65535:
        raise BremenError(f"--port {port}: not a TCP port; pass 1-65535 (or 0 for any free port)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BremenError(
            f"--host {host}: cannot resolve it ({exc.strerror}); pass an address such as 127.0.0.1"
        ) from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BremenError(f"--port {port}: already in use on {host}; pass another --port") from None
        raise BremenError(
            f"--host {host} --port {port}: cannot listen ({exc.strerror}); pass another address or port"
        ) from None
    return sock


def run(args: argparse.Namespace) -> int:
    ws = Path(args.workspace).expanduser()
    if not ws.is_dir():
        what = "is a file, not a folder" if ws.exists() else "does not exist"
        raise BremenError(
            f"--workspace {ws}: {what}; pass the folder of a campaign (bremen campaign --workspace)"
        )
    if args.host not in LOCAL_HOSTS:
        print(
            f"warning: --host {args.host}: the page is then reachable from the network and has no "
            "authentication; anyone who can reach it sees this workspace's campaign, registry and audit log",
            file=sys.stderr,
        )
    sock = bind(args.host, args.port)
    import uvicorn

    from bremen_robot.console.app import create_app

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"bremen console: http://{shown}:{port}/ (workspace {ws.resolve()}; read-only; Ctrl-C stops it)",
        flush=True,
    )
    config = uvicorn.Config(
        create_app(ws, [args.host]), log_level="warning", access_log=False, lifespan="off"
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
