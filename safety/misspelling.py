"""One line for a misspelled field name, which pydantic reports as two errors.

A misspelled required field is "required field is missing" for the real name and "unknown field"
for the typo. Pydantic lists the missing one first, so a one-line message showed it and hid the
typo, the actual mistake, in "(+1 more)". Shared by :mod:`safety.limits` and
``bremen_robot.config.loading``; here because safety may import nothing of bremen_robot.
"""

from __future__ import annotations

import difflib

from pydantic import ValidationError


def describe_misspelling(exc: ValidationError, source: str) -> str | None:
    """``<source>: <field.path>: unknown field (did you mean '<name>'?); rename it to <name>``.

    Only when an unknown field's name is close to that of a missing field at the same level;
    otherwise None, and the caller describes the first error as usual.
    """
    errors = exc.errors()
    missing = [tuple(e["loc"]) for e in errors if e["type"] == "missing" and e["loc"]]
    pairs: list[tuple[str, str]] = []  # (the typo's field path, the name it stands for)
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] != "extra_forbidden" or not loc:
            continue
        siblings = {str(m[-1]): m for m in missing if m[:-1] == loc[:-1]}
        close = difflib.get_close_matches(str(loc[-1]), list(siblings), n=1)
        if close:
            missing.remove(siblings[close[0]])  # each missing field stands for one typo only
            pairs.append((".".join(str(p) for p in loc), close[0]))
    if not pairs:
        return None
    where, meant = pairs[0]
    # a typo and the missing field it stands for are one mistake, counted once
    others = len(errors) - len(pairs) - 1
    more = f" (+{others} more)" if others else ""
    line = f"{source}: {where}: unknown field (did you mean '{meant}'?); rename it to {meant}{more}"
    return line.replace("\n", " ")
