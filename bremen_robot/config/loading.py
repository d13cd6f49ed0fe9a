"""Load YAML into pydantic models with one-line errors that name the field and the fix.

Every validation error reads ``<file>: <field>: <problem>; <fix>``. The fix comes from the
error's kind (a wrong type says what to write, a bound says which values are allowed, an unknown
field lists the known ones) and from the model itself (the field's default as an example).
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticUndefined

from bremen_robot.errors import ConfigError
from safety.strict_text import DuplicateKeyError, yaml_load_unique

M = TypeVar("M", bound=BaseModel)


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``X``, ``X | None``, ``list[X]``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _locate(
    model: type[BaseModel] | None, loc: tuple[Any, ...]
) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The model that owns the last named part of ``loc``, and that field's info."""
    owner, info = model, None
    for i, part in enumerate(loc):
        if isinstance(part, int) or owner is None:
            continue  # a list index: the item has the list's item model
        info = owner.model_fields.get(str(part))
        if info is None:
            return owner, None
        if i < len(loc) - 1:
            owner = _submodel(info.annotation)
    return owner, info


def _example(info: FieldInfo | None, kind: type | tuple[type, ...], fallback: Any) -> Any:
    default = None if info is None else info.default
    if default is not PydanticUndefined and isinstance(default, kind) and not isinstance(default, bool):
        return default
    return fallback


def _fix(err: ErrorDetails, field: str, model: type[BaseModel] | None) -> str:
    """What to do about one pydantic error (the part after ``; ``)."""
    kind, ctx = err["type"], err.get("ctx") or {}
    owner, info = _locate(model, tuple(err["loc"]))
    if kind == "extra_forbidden":
        known = sorted(owner.model_fields) if owner is not None else []
        return "remove it or fix its spelling" + (f" (known fields: {', '.join(known)})" if known else "")
    if kind == "missing":
        what = f" ({info.description})" if info is not None and info.description else ""
        return f"add {field}: <value>{what}"
    if kind.startswith("int_"):
        return f"set {field} to a whole number like {_example(info, int, 5)}"
    if kind.startswith("float_"):
        return f"set {field} to a number like {_example(info, (int, float), 0.5)}"
    if kind.startswith("bool_"):
        return f"set {field} to true or false"
    if kind.startswith("string_"):
        return f"set {field} to a text value (quote it if it looks like a number)"
    if kind in ("list_type", "tuple_type", "set_type"):
        return f"write {field} as a list like [a, b]"
    if kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type"):
        return f"write {field} as a mapping of field: value"
    if kind in ("literal_error", "enum"):
        return f"set {field} to one of {ctx.get('expected', 'the listed values')}"
    bounds = {
        "greater_than": ("above", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("below", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if kind in bounds:
        word, key = bounds[kind]
        return f"set {field} to a value {word} {ctx.get(key)}"
    if kind == "too_short":
        return f"give {field} at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"give {field} at most {ctx.get('max_length')} item(s)"
    if kind == "finite_number":
        return f"set {field} to a finite number"
    what = f" ({info.description})" if info is not None and info.description else ""
    return f"set {field} to a valid value{what}"


def _problem(err: ErrorDetails) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind in ("value_error", "assertion_error"):
        return msg.split(", ", 1)[1] if ", " in msg else msg  # drop pydantic's "Value error, "
    value = err.get("input")
    if (isinstance(value, (str, int, float, bool)) or value is None) and ", got " not in msg:
        got = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return f"{msg} (got {got})"
    return msg


def describe_validation_error(exc: ValidationError, source: str, model: type[BaseModel] | None = None) -> str:
    """First error of a pydantic ValidationError as ``source: field.path: problem; fix``."""
    # here, not at the top: importing safety loads numpy and the shield, which valid configs never need
    from safety.misspelling import describe_misspelling

    misspelled = describe_misspelling(exc, source)
    if misspelled is not None:
        return misspelled
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    problem = _problem(err)
    # a validator's own message already names the fix ("...; raise the batch or ...")
    text = (
        problem
        if err["type"] in ("value_error", "assertion_error") and "; " in problem
        else (f"{problem}; {_fix(err, loc, model)}")
    )
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {loc}: {text}{more}"


def resolve_preset(name_or_path: str | Path, presets: Path, kind: str, file_kind: str | None = None) -> Path:
    """The file ``name_or_path`` names: a YAML path, or the name of a ``kind`` preset in ``presets``.

    An argument that looks like a path (a folder separator, a .yaml/.yml suffix) is never
    reported as an unknown preset name: that hid that the file did not exist.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    names = ", ".join(sorted(p.stem for p in presets.glob("*.yaml")))
    text, file_kind = str(name_or_path), file_kind or f"{kind} file"
    if any(sep in text for sep in ("/", os.sep)) or path.suffix.lower() in (".yaml", ".yml"):
        if path.is_dir():
            raise ConfigError(f"{file_kind} '{path}' is a folder; pass a YAML file, or a preset: {names}")
        raise ConfigError(f"no such {file_kind} '{path}'; check the path, or pass a preset: {names}")
    candidate = presets / f"{text}.yaml"
    if not candidate.is_file():
        raise ConfigError(f"unknown {kind} preset '{text}'; presets: {names}")
    return candidate


def read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found; pass an existing YAML file")
    try:
        data = yaml_load_unique(path.read_text())
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (not UTF-8); pass a YAML config file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML; fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of field: value; write one field per line")
    return data


def validate_model(model: type[M], data: dict[str, Any], source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source, model)) from None


def load_yaml_model(model: type[M], path: Path) -> M:
    """Read ``path`` and validate it as ``model``; errors are one :class:`ConfigError` line."""
    return validate_model(model, read_yaml(path), str(path))
