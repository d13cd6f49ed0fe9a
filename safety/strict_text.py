"""YAML and JSON readers that refuse a key given twice in one mapping.

Both formats let the last of two equal keys win silently. In a limits file that drops a
joint's limits without a word (``j: {velocity: 0.1}`` … ``j: {}``), and in any config it hides
which value is in force, so every file bremen reads as configuration goes through these.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKeyError(ValueError):
    """A mapping holds the same key twice. ``line`` is 1-based, None where unknown (JSON)."""

    def __init__(self, key: Any, line: int | None) -> None:
        self.key = key
        self.line = line
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}key {key!r} is given twice in one mapping; keep one of them")


def _refuse_duplicate_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key, None)
        out[key] = value
    return out


def json_loads_unique(text: str) -> Any:
    """``json.loads`` that raises :class:`DuplicateKeyError` for a key repeated in one object."""
    return json.loads(text, object_pairs_hook=_refuse_duplicate_pairs)


def yaml_load_unique(text: str) -> Any:
    """``yaml.safe_load`` that raises :class:`DuplicateKeyError` for a key repeated in one mapping.

    Merge keys (``<<: *anchor``) still work: a key written out overrides a merged one, as YAML
    intends; only two keys written out in the same mapping are refused.
    """
    # imported here: PyYAML is optional for a robot that keeps its limits as JSON
    import yaml

    class _UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if repeated:
                    raise DuplicateKeyError(key, key_node.start_mark.line + 1)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
