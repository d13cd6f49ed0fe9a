"""JSON in and out of the registry: reports and lineage written, stored columns read back.

Reading a stored column is reading the database: a column that is not a JSON object is damage
(:class:`RegistryDamagedError`, one line naming the file and the restore path), never an
internal ``JSONDecodeError``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bremen_robot.registry.errors import RegistryDamagedError, RegistryError
from bremen_robot.registry.guard import RESTORE_HINT, one_line


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serializable")


def to_json(value: dict[str, Any], what: str) -> str:
    if not isinstance(value, dict):
        raise RegistryError(f"{what} must be a mapping (JSON object), got {type(value).__name__}")
    try:
        return json.dumps(value, sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise RegistryError(
            f"{what} cannot be stored as JSON ({exc}); pass numbers, strings, lists and dicts"
        ) from None


def read_report(path: Path) -> dict[str, Any]:
    """Read a trainer's ``report.json``; one-line error if it is not a JSON object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(
            f"{path}: cannot read the training report ({exc}); re-run training or omit it"
        ) from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: the training report must be a JSON object")
    return data


def json_object(text: Any, column: str, sha: str, path: Path) -> dict[str, Any]:
    """Decode a stored JSON column that must hold an object; damage is a registry error."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise RegistryDamagedError(
            f"registry database '{path}' is damaged: policy {sha[:12]} {column} is not JSON "
            f"({one_line(str(exc))}); {RESTORE_HINT}"
        ) from None
    if not isinstance(value, dict):
        raise RegistryDamagedError(
            f"registry database '{path}' is damaged: policy {sha[:12]} {column} is "
            f"{type(value).__name__}, not a JSON object; {RESTORE_HINT}"
        )
    return value
