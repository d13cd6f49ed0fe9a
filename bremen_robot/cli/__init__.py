"""The ``bremen`` command line.

Each subcommand lives in its own module ``bremen_robot/cli/<name>_cmd.py`` exposing
``register(subparsers)``, which adds its parser and sets ``func`` (``args -> exit code``).
Modules are discovered by name, so adding a subcommand is adding one file.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib
import os
import pkgutil
import signal
import sys
from collections.abc import Sequence

from bremen_robot.errors import BremenError


def command_modules() -> list[str]:
    """Names of the ``*_cmd`` modules in this package, sorted."""
    return sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmd"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bremen",
        description="Deployment-efficient RL on real robots (BREMEN): collect, train, review, approve.",
    )
    parser.add_argument("--version", action="version", version="bremen-robot 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in command_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bremen``: one-line errors for bad input, exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # a stderr without a file descriptor (embedded, captured) just goes without
    with contextlib.suppress(OSError, ValueError, AttributeError):
        # a crash in native code (rclpy, torch, mujoco) prints where every thread was
        faulthandler.enable(all_threads=True)
        if hasattr(signal, "SIGUSR1"):  # `kill -USR1 PID` prints every thread's stack: why a run hangs
            faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        code = args.func(args)
    except BremenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`; not an error of ours
        sys.stderr.close()
        return 0
    except OSError as exc:
        from bremen_robot.cli.common import describe_os_error

        message = describe_os_error(exc)
        if message is None or os.environ.get("BREMEN_DEBUG"):
            return _internal_error(exc)
        print(f"error: {message}", file=sys.stderr)
        return 2
    except Exception as exc:
        return _internal_error(exc)
    return int(code or 0)


def _internal_error(exc: BaseException) -> int:
    if os.environ.get("BREMEN_DEBUG"):
        raise exc
    print(
        f"error: internal error {type(exc).__name__}: {exc} (set BREMEN_DEBUG=1 for a traceback)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
