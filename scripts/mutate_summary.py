"""Per-module table of a `make mutate` run, read from mutmut's result files under mutants/.

mutmut prints one total; docs/testing.md records each module's figures, so this groups the
results by the folder (or file) named in `[tool.mutmut] only_mutate`. Survivors are listed by
name so each one can be killed by a test or justified as equivalent.

    python scripts/mutate_summary.py            # the table
    python scripts/mutate_summary.py --survivors  # and every surviving mutant's name
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

# mutmut 3.8's exit codes per mutant (mutmut/stats.py); anything else is "suspicious"
STATUS = {
    None: "not checked",
    0: "survived",
    1: "killed",
    3: "killed",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    37: "caught by type check",
}
COLUMNS = ("mutants", "killed", "survived", "timeout", "no tests", "not checked", "other")


def module_of(path: Path) -> str:
    """``mutants/bremen_robot/rl/trpo.py.meta`` -> ``bremen_robot/rl/``; single files keep their name."""
    rel = path.relative_to("mutants").as_posix().removesuffix(".meta")
    if rel == "bremen_robot/policy/gaussian.py" or rel.startswith("safety/"):
        return rel  # the shield's four modules one by one
    return rel.rsplit("/", 1)[0] + "/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant")
    args = parser.parse_args(argv)
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("mutants/: no results; run `make mutate` first", file=sys.stderr)
        return 2
    counts: dict[str, Counter[str]] = {}
    survivors: list[str] = []
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        c = counts.setdefault(module_of(meta), Counter())
        for name, code in codes.items():
            status = STATUS.get(code, "other")
            c["mutants"] += 1
            c[status if status in COLUMNS else "other"] += 1
            if status == "survived":
                survivors.append(name)
    print("| module | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    total: Counter[str] = Counter()
    for module in sorted(counts):
        total.update(counts[module])
        print(f"| `{module}` | " + " | ".join(str(counts[module][k]) for k in COLUMNS) + " |")
    print("| all | " + " | ".join(str(total[k]) for k in COLUMNS) + " |")
    if args.survivors:
        print()
        print("\n".join(sorted(survivors)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
