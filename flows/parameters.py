"""Run parameters: what a flow declares, and the typed values a run is started with.

Pure functions, no ORM. A flow declares
``[{"name", "type", "required", "default", "choices", "description"}]``; a run's values are
coerced to the declared types (the one place: `run_values`), stored with the run and
referenced in node configurations as ``${name}``, like a variable. Coercion is idempotent,
so values coerced once (a rerun, a parent run's values) pass again unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from .variables import BUILTIN_NAMES

TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
KEYS = ("name", "type", "required", "default", "choices", "description")
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_PARAMETERS = 50
MAX_CHOICES = 200
MAX_TEXT = 10_000
MAX_DESCRIPTION = 500
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ParameterError(ValueError):
    """A value that cannot be the declared type; ``message`` says what to give instead."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def coerce(kind: str, value: Any) -> Any:
    """`value` as the JSON value of a parameter of type `kind` (dates as ISO text)."""
    if kind == "string":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ParameterError("give text")
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_TEXT:
            raise ParameterError(f"at most {MAX_TEXT} characters")
        return text
    if kind == "integer":
        number = value
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,19}\s*", value):
            number = int(value)
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int):
            raise ParameterError("give a whole number")
        if not INT_MIN <= number <= INT_MAX:
            raise ParameterError("give a whole number within 64 bits")
        return number
    if kind == "number":
        number = value
        if isinstance(value, str):
            try:
                number = float(value) if len(value) < 100 else None
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ParameterError("give a number")
        if isinstance(number, float) and not math.isfinite(number):
            raise ParameterError("give a finite number")
        if isinstance(number, int) and not INT_MIN <= number <= INT_MAX:
            raise ParameterError("give a number within 64 bits")
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ParameterError("give true or false")
    if kind == "date":
        if isinstance(value, str) and _DATE_RE.fullmatch(value.strip()):
            try:
                return date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise ParameterError("give a date as YYYY-MM-DD")
    if kind == "datetime":
        if isinstance(value, str) and len(value) < 64:
            try:
                moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                moment = None
            if moment is not None:
                return moment.isoformat()
        raise ParameterError("give a date and time in ISO 8601, e.g. 2024-01-15T10:00:00+00:00")
    raise ParameterError(f"unknown type {kind!r}")


def declarations_problems(declarations: Any) -> list[str]:
    """Messages ("parameters[1].type: ...") for a flow's parameter declarations."""
    if declarations is None:
        return []
    if not isinstance(declarations, list):
        return ["parameters: must be a list of parameter declarations"]
    if len(declarations) > MAX_PARAMETERS:
        return [f"parameters: at most {MAX_PARAMETERS} parameters"]
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(declarations):
        where = f"parameters[{i}]"
        if not isinstance(item, Mapping):
            errors.append(f"{where}: must be an object with a name and a type")
            continue
        unknown = sorted(set(item) - set(KEYS), key=str)
        if unknown:
            errors.append(f"{where}: unknown keys {', '.join(map(str, unknown))}")
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            errors.append(
                f"{where}.name: {name!r} is not a valid name; start with a letter or _, then "
                "letters, digits or _, at most 64 characters"
            )
        elif name in BUILTIN_NAMES:
            errors.append(f"{where}.name: {name!r} is a built-in variable")
        elif name in seen:
            errors.append(f"{where}.name: duplicate name {name!r} (also parameters[{seen[name]}])")
        else:
            seen[name] = i
        kind = item.get("type")
        if kind not in TYPES:
            errors.append(f"{where}.type: {kind!r} is not a type; use one of {', '.join(TYPES)}")
            continue
        if not isinstance(item.get("required", False), bool):
            errors.append(f"{where}.required: must be true or false")
        description = item.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            errors.append(f"{where}.description: text of at most {MAX_DESCRIPTION} characters")
        choices = item.get("choices")
        clean_choices = None
        if choices is not None:
            if not isinstance(choices, list) or not choices or len(choices) > MAX_CHOICES:
                errors.append(f"{where}.choices: a list of 1 to {MAX_CHOICES} values, or null")
            else:
                clean_choices = []
                for j, choice in enumerate(choices):
                    try:
                        clean_choices.append(coerce(kind, choice))
                    except ParameterError as exc:
                        errors.append(f"{where}.choices[{j}]: {exc.message}")
        default = item.get("default")
        if default is not None:
            try:
                default = coerce(kind, default)
            except ParameterError as exc:
                errors.append(f"{where}.default: {exc.message}")
            else:
                if clean_choices is not None and default not in clean_choices:
                    errors.append(f"{where}.default: must be one of the choices")
    return errors


def declarations_clean(declarations: Any) -> list[dict]:
    """Valid declarations with every key present and defaults and choices coerced
    (call `declarations_problems` first)."""
    clean = []
    for item in declarations or []:
        kind = item["type"]
        choices = item.get("choices")
        default = item.get("default")
        clean.append(
            {
                "name": item["name"],
                "type": kind,
                "required": bool(item.get("required", False)),
                "default": None if default is None else coerce(kind, default),
                "choices": None if choices is None else [coerce(kind, c) for c in choices],
                "description": item.get("description") or "",
            }
        )
    return clean


def names(declarations: Any) -> set[str]:
    """The declared names (of well-formed declarations)."""
    if not isinstance(declarations, list):
        return set()
    return {
        d["name"] for d in declarations if isinstance(d, Mapping) and isinstance(d.get("name"), str)
    }


def run_values(
    declarations: list[dict] | None, given: Mapping | None
) -> tuple[dict, dict[str, str]]:
    """A run's parameter values and the problems, keyed ``parameters.<name>``.

    `given` None means nobody chose (a scheduled run): every default, and a required
    parameter without one is left out (a node using it fails as an undefined variable).
    Otherwise each given value is coerced; unknown names, missing required ones and values
    outside the choices are problems. An optional parameter without a default is null.
    """
    declarations = declarations or []
    problems: dict[str, str] = {}
    values: dict = {}
    supplied = given if given is not None else {}
    if not isinstance(supplied, Mapping):
        return {}, {"parameters": "must be an object of parameter names and values"}
    declared = {d.get("name"): d for d in declarations if isinstance(d, Mapping)}
    for name in supplied:
        if name not in declared:
            known = ", ".join(sorted(map(str, declared))) or "none"
            problems[f"parameters.{name}"] = (
                f"the flow declares no such parameter (declared: {known})"
            )
    for name, decl in declared.items():
        kind = decl.get("type")
        if name in supplied and supplied[name] is not None:
            try:
                value = coerce(kind, supplied[name])
            except ParameterError as exc:
                problems[f"parameters.{name}"] = f"{exc.message} ({kind})"
                continue
            choices = decl.get("choices")
            if choices is not None and value not in choices:
                listed = ", ".join(map(str, choices[:20]))
                problems[f"parameters.{name}"] = f"must be one of {listed}"
                continue
            values[name] = value
        elif decl.get("default") is not None:
            values[name] = decl["default"]
        elif not decl.get("required"):
            values[name] = None
        elif given is not None:
            problems[f"parameters.{name}"] = "this parameter is required"
    return values, problems


def as_text(value: Any) -> str | None:
    """A parameter value as ``${name}`` writes it (booleans as true/false, null as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
