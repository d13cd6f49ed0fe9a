"""Every ``bremen ...`` and ``make ...`` command the documentation tells a user to type parses.

README.md's tour runs for real (tests/campaign/test_readme_tour.py); everything else in README.md
and docs/*.md is checked here against the real argparse parser, without running anything:

* a line of a fenced block that starts with ``bremen`` (or ``$ bremen``) is a whole command: it
  must parse completely, required arguments included;
* an inline span that starts with ``bremen`` may be a fragment (`bremen collect --out`): its
  subcommand, flags, positionals and choices must exist, missing required ones may be left out;
* ``make`` commands must name targets of the Makefile;
* the commands the CLI itself prints as hints (``'bremen trust add NAME --workspace W'``) are
  checked like inline spans, and each flag a message tells the user to pass must exist.

Placeholders (``ID``, ``NAME``, ``<id>``, ``W``, ``N``) stand for a value (``1``); ``[--opt X]`` is checked
with the option; ``add|remove`` is checked once per alternative.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from bremen_robot.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ELLIPSES = ("...", "…")
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*(\.yaml)?")  # ID, NAME, ROBOT.yaml; <...> is one too
# error lines argparse gives a fragment that leaves out what a whole command needs
FRAGMENT_GAPS = ("the following arguments are required", "expected one argument")
# `make` words the docs name on purpose although the Makefile has no such target
NOT_TARGETS = {"test-slow"}  # docs/testing.md explains why it was dropped


def _fenced_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, command) of each shell line in the fenced blocks, continuations joined."""
    lang: str | None = None
    indent = 0  # a fence inside a list item is indented; its lines are, by the same amount
    pending: tuple[int, str] | None = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            if lang is None:
                lang, indent = line.strip()[3:].strip(), len(line) - len(line.lstrip())
            else:
                lang = None
            continue
        if lang not in SHELL_FENCES:
            continue
        raw = line[indent:] if not line[:indent].strip() else line
        if pending is not None:
            pending = (pending[0], pending[1] + " " + raw.strip())
        elif raw.startswith(("bremen ", "$ bremen ")) or re.match(r"make( |$)", raw):
            pending = (number, raw.rstrip().removeprefix("$ "))
        else:
            continue
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1].rstrip())
        else:
            yield pending
            pending = None


def _inline_spans(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each inline code span outside fences (a span may wrap a line)."""
    kept, fenced = [], False
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            kept.append("")
        else:
            kept.append("" if fenced else raw)
    text = "\n".join(kept)
    for m in re.finditer(r"`([^`]+)`", text):
        yield text.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split())


def documented_commands() -> list[tuple[str, str, bool]]:
    """(file:line, command, whole) for every `bremen` and `make` command in the docs."""
    found = []
    for path in DOCS:
        name = path.relative_to(REPO)
        for number, cmd in _fenced_lines(path):
            found.append((f"{name}:{number}", cmd, True))
        for number, span in _inline_spans(path):
            if re.match(r"(bremen|make)( |$)", span.replace("\\|", "|")):
                found.append((f"{name}:{number}", span.replace("\\|", "|"), False))
    return found


def printed_hints() -> list[tuple[str, str]]:
    """(file:line, command) of the `bremen ...` commands in the CLI's messages."""
    found = []
    for root in ("bremen_robot", "safety", "sim"):
        for path in sorted((REPO / root).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for m in re.finditer(r"""(?<![\w./])["']bremen ([a-z][^"';:,)]*)""", line):
                    cmd = re.sub(r"\{[^{}]*\}", "X", "bremen " + m.group(1)).strip()
                    found.append((f"{path.relative_to(REPO)}:{number}", cmd))
    return found


def _words(cmd: str) -> list[str]:
    """The shell words of `cmd`, without a comment; `<this PC's address>` is one word."""
    return shlex.split(re.sub(r"<[^<>]*>", "ID", cmd), comments=True)


def _variants(cmd: str) -> list[list[str]]:
    """The words after `bremen`, once per `a|b` alternative, placeholders given a value."""
    words = _words(re.sub(r"\[([^\[\]]*)\]", r"\1", cmd))  # [--opt X]: checked with the option
    if words and words[-1] == "&":
        words.pop()
    variants: list[list[str]] = [[]]
    for previous, word in zip(words, words[1:]):
        if word in ELLIPSES and not previous.startswith("-"):
            continue  # `bremen collect ... --dry-run`: the elided part
        options = word.split("|") if re.fullmatch(r"[a-z-]+(\|[a-z-]+)+", word) else [word]
        options = ["1" if PLACEHOLDER.fullmatch(o) else o for o in options]
        variants = [v + [o] for v in variants for o in options]
    return variants


@cache
def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The real parser, and a copy where nothing is required (for fragments)."""
    lenient = build_parser()
    stack = [lenient]
    while stack:
        parser = stack.pop()
        for group in parser._mutually_exclusive_groups:
            group.required = False
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
            elif action.option_strings:
                action.required = False
            elif action.nargs in (None, 1):
                action.nargs = "?"
            elif action.nargs == "+":
                action.nargs = "*"
    return build_parser(), lenient


def parse_error(words: list[str], whole: bool) -> str | None:
    """argparse's complaint about `bremen WORDS`, or None when it parses (or is a fair fragment)."""
    strict, lenient = _parsers()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            (strict if whole else lenient).parse_args(words)
    except SystemExit as exc:
        if exc.code == 0:  # --help
            return None
        message = err.getvalue().strip().splitlines()[-1]
        if whole or not any(gap in message for gap in FRAGMENT_GAPS):
            return message
    return None


def _is_fragment(cmd: str) -> bool:
    """`bremen collect ... --dry-run`: a bare ellipsis (not an option's value) elides a part."""
    words = _words(cmd)
    return any(w in ELLIPSES and not words[i - 1].startswith("-") for i, w in enumerate(words))


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+):(?!=)", text, re.M)}


def test_the_docs_have_commands_to_check():
    found = documented_commands()
    assert len([c for c in found if c[1].startswith("bremen ") and c[2]]) > 40
    assert len(printed_hints()) > 20


def test_every_documented_bremen_command_parses():
    bad = []
    for where, cmd, whole in documented_commands():
        if not cmd.startswith("bremen"):
            continue
        whole = whole and not _is_fragment(cmd)
        for words in _variants(cmd):
            message = parse_error(words, whole)
            if message:
                bad.append(f"{where}: {cmd!r}: {message}")
    assert not bad, "\n".join(bad)


def test_every_documented_make_command_names_a_target():
    targets = _make_targets()
    bad = []
    for where, cmd, _ in documented_commands():
        if not cmd.startswith("make"):
            continue
        words = _words(cmd)[1:]
        unknown = [w for w in words if "=" not in w and w not in targets and w not in NOT_TARGETS]
        if unknown:
            bad.append(f"{where}: {cmd!r}: no Makefile target {', '.join(unknown)}")
    assert not bad, "\n".join(bad)


def test_every_command_the_cli_prints_as_a_hint_parses():
    bad = []
    for where, cmd in printed_hints():
        for words in _variants(cmd):
            message = parse_error(words, whole=False)
            if message:
                bad.append(f"{where}: {cmd!r}: {message}")
    assert not bad, "\n".join(bad)


def test_every_flag_a_message_tells_the_user_to_pass_exists():
    """`use --backend mujoco` named a flag no command has (sim/description.py)."""
    flags, stack = set(), [_parsers()[0]]
    while stack:
        parser = stack.pop()
        for action in parser._actions:
            flags.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    bad = []
    for root in ("bremen_robot", "safety", "sim"):
        for path in sorted((REPO / root).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for m in re.finditer(r"\b(?:use|pass|with|set|add|rerun with) (--[a-z][a-z0-9-]*)", line):
                    if m.group(1) not in flags:
                        bad.append(f"{path.relative_to(REPO)}:{number}: {m.group(0)!r}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("cmd", "whole", "complaint"),
    [
        ("bremen trust list NAME --workspace W", False, "unrecognized arguments"),
        ("bremen collect --config C --random --steps 200", True, "required: --out"),
        ("bremen sim2real A --backend mujoco", False, "unrecognized arguments"),
        ("bremen reveiw ID", False, "invalid choice"),
        ("bremen collect --sim gazebo", False, "invalid choice"),
    ],
)
def test_the_check_itself_catches_each_kind_of_mistake(cmd, whole, complaint):
    message = parse_error(_variants(cmd)[0], whole)
    assert message and complaint in message


def test_commands_in_a_list_items_indented_fence_are_found(tmp_path):
    """README.md's hardware steps put their fences inside numbered items (indented 3 spaces)."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "1. Collect:\n"
        "   ```bash\n"
        "   bremen collect --config c.yaml \\\n"
        "     --random --steps 5\n"
        "   ```\n"
        "```\n"
        "make check\n"
        "```\n"
        "   ```yaml\n"
        "   bremen: not a command\n"
        "   ```\n"
    )
    assert list(_fenced_lines(doc)) == [
        (3, "bremen collect --config c.yaml --random --steps 5"),
        (7, "make check"),
    ]
