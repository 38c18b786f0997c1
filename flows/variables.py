"""Flow variables: ``${name}`` references, Java-style time formats, offsets and rendering.

Pure functions: no Django, no ORM. The values a run sees are, in increasing precedence:
built-ins (``bizdate``, ``cyctime``, ``flow_id``, ``run_id``), output variables of
upstream nodes, then the flow's own definitions (so a flow may override a built-in).

Rendering is a single pass: a value that itself contains ``${...}`` is inserted as is,
never expanded again, so values cannot recurse or smuggle in other variables.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from dateutil.relativedelta import relativedelta

__all__ = [
    "BUILTIN_NAMES",
    "NAME_RE",
    "REF_RE",
    "UndefinedVariables",
    "VariableError",
    "apply_offset",
    "builtin_values",
    "find_references",
    "java_format",
    "render",
    "render_config",
    "resolve",
    "validate_definitions",
]

BUILTIN_NAMES = frozenset({"bizdate", "cyctime", "flow_id", "run_id"})
VARIABLE_TYPES = ("constant", "time")

# A definable name. Dots are allowed so output variables can be namespaced ("node.col").
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")
# A reference. No length cap here, so an over-long name is reported as undefined
# instead of silently staying literal text.
REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")

BIZDATE_FORMAT = "yyyy-MM-dd"
CYCTIME_FORMAT = "yyyy-MM-dd HH:mm:ss"


class VariableError(ValueError):
    """A variable definition, format, offset or reference is invalid; ``field`` names what."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class UndefinedVariables(VariableError):
    """Text references variables that have no value; ``names`` lists every one, sorted."""

    def __init__(self, names: list[str] | set[str]) -> None:
        self.names = sorted(names)
        listed = ", ".join(f"${{{n}}}" for n in self.names)
        super().__init__(
            "variables",
            f"undefined variable{'s' if len(self.names) > 1 else ''} {listed}: define "
            f"{'them' if len(self.names) > 1 else 'it'} on the flow or export "
            f"{'them' if len(self.names) > 1 else 'it'} from an upstream node",
        )


# --------------------------------------------------------------------------- references


def find_references(obj: Any) -> set[str]:
    """Names referenced as ``${name}`` in a string, or in any string value inside dicts/lists."""
    if isinstance(obj, str):
        return set(REF_RE.findall(obj))
    found: set[str] = set()
    if isinstance(obj, Mapping):
        # Keys are configuration field names, not text a user writes: only values count.
        for value in obj.values():
            found |= find_references(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            found |= find_references(value)
    return found


# --------------------------------------------------------------------------- java format

# Fixed English names: Java's default depends on the JVM locale, ours must not depend on
# the server's.
_DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_PATTERNS = {
    "yyyy": lambda dt: f"{dt.year:04d}",
    "yy": lambda dt: f"{dt.year % 100:02d}",
    "MM": lambda dt: f"{dt.month:02d}",
    "M": lambda dt: str(dt.month),
    "dd": lambda dt: f"{dt.day:02d}",
    "d": lambda dt: str(dt.day),
    "HH": lambda dt: f"{dt.hour:02d}",
    "H": lambda dt: str(dt.hour),
    "hh": lambda dt: f"{(dt.hour % 12) or 12:02d}",
    "h": lambda dt: str((dt.hour % 12) or 12),
    "mm": lambda dt: f"{dt.minute:02d}",
    "m": lambda dt: str(dt.minute),
    "ss": lambda dt: f"{dt.second:02d}",
    "s": lambda dt: str(dt.second),
    "SSS": lambda dt: f"{dt.microsecond // 1000:03d}",
    "a": lambda dt: "AM" if dt.hour < 12 else "PM",
    "EEE": lambda dt: _DAY_ABBR[dt.weekday()],
}
_LETTERS = {p[0] for p in _PATTERNS}


@lru_cache(maxsize=256)
def _compile_format(fmt: str) -> tuple[str | Any, ...]:
    """Split a format into literal strings and formatter callables; raise VariableError."""
    parts: list[str | Any] = []
    i, n = 0, len(fmt)
    while i < n:
        c = fmt[i]
        if c == "'":
            if fmt.startswith("''", i):
                parts.append("'")
                i += 2
                continue
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise VariableError("format", f"unterminated quote in {fmt!r}")
                if fmt[j] == "'":
                    if fmt.startswith("''", j):
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(fmt[j])
                j += 1
            parts.append("".join(buf))
            i = j + 1
        elif c in string.ascii_letters:
            j = i
            while j < n and fmt[j] == c:
                j += 1
            run = fmt[i:j]
            if c not in _LETTERS:
                raise VariableError("format", f"unknown pattern letter {c!r} in {fmt!r}")
            if run not in _PATTERNS:
                supported = " or ".join(p for p in _PATTERNS if p[0] == c)
                raise VariableError(
                    "format", f"unsupported pattern {run!r} in {fmt!r}; use {supported}"
                )
            parts.append(_PATTERNS[run])
            i = j
        else:
            parts.append(c)
            i += 1
    return tuple(parts)


def java_format(dt: datetime, fmt: str) -> str:
    """Format ``dt`` with a Java SimpleDateFormat subset (yyyy MM dd HH mm ss SSS a EEE, 'quoted')."""
    if not isinstance(fmt, str):
        raise VariableError("format", "the format must be text such as yyyy-MM-dd")
    return "".join(p if isinstance(p, str) else p(dt) for p in _compile_format(fmt))


# --------------------------------------------------------------------------- offsets

_UNITS = {
    "m": lambda n: timedelta(minutes=n),
    "h": lambda n: timedelta(hours=n),
    "d": lambda n: timedelta(days=n),
    "w": lambda n: timedelta(weeks=n),
    # relativedelta clamps to the month's end: 2024-03-31 -1M -> 2024-02-29.
    "M": lambda n: relativedelta(months=n),
    "y": lambda n: relativedelta(years=n),
}
_TERM_RE = re.compile(r"\s*([+-]?)\s*(\d+)\s*([A-Za-z]?)\s*")


@lru_cache(maxsize=256)
def _parse_offset(offset: str) -> tuple[tuple[int, str], ...]:
    """Parse "-1d+2h" into ((-1, "d"), (2, "h")); raise VariableError."""
    terms: list[tuple[int, str]] = []
    pos = 0
    while pos < len(offset):
        m = _TERM_RE.match(offset, pos)
        if not m or m.end() == pos or not m[2]:
            raise VariableError(
                "offset", f"{offset!r} is not an offset; write e.g. -1d, +2h or -1d+2h"
            )
        sign, number, unit = m.groups()
        if terms and not sign:
            # "-1d2h" could mean -(1d2h) or -1d then +2h: make the writer say which.
            raise VariableError(
                "offset", f"{offset!r}: give every term after the first a + or - sign"
            )
        if unit not in _UNITS:
            what = f"unknown unit {unit!r}" if unit else f"missing unit after {number!r}"
            raise VariableError(
                "offset",
                f"{what} in {offset!r}; use m (minute), h (hour), d (day), w (week), "
                f"M (month) or y (year)",
            )
        if len(number) > 9:
            raise VariableError("offset", f"{number} in {offset!r} is too large")
        terms.append((-int(number) if sign == "-" else int(number), unit))
        pos = m.end()
    return tuple(terms)


def apply_offset(dt: datetime, offset: str | None) -> datetime:
    """Shift ``dt`` by an offset such as "-1d", "+2h", "-1M" or "-1d+2h"; empty means none.

    Terms apply left to right on the wall clock (-1d is the same clock time a day earlier).
    """
    if offset is None or (isinstance(offset, str) and not offset.strip()):
        return dt
    if not isinstance(offset, str):
        raise VariableError("offset", "the offset must be text such as -1d")
    for amount, unit in _parse_offset(offset):
        try:
            dt = dt + _UNITS[unit](amount)
        except (OverflowError, ValueError) as exc:
            raise VariableError(
                "offset", f"{offset!r} moves {dt.isoformat()} out of the supported date range"
            ) from exc
    return dt


# --------------------------------------------------------------------------- definitions


def validate_definitions(defs: list[dict]) -> list[str]:
    """Error messages ("variables[1].format: ...") for a flow's variable definitions."""
    if not isinstance(defs, list):
        return ["variables: must be a list of variable definitions"]
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, definition in enumerate(defs):
        where = f"variables[{i}]"
        if not isinstance(definition, Mapping):
            errors.append(f"{where}: must be an object with a name and a type")
            continue
        name = definition.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            errors.append(
                f"{where}.name: {name!r} is not a valid name; start with a letter or _, "
                f"then letters, digits, _ or ., at most 64 characters"
            )
        elif name.startswith("secret."):
            errors.append(f"{where}.name: names starting with 'secret.' are kept for secrets")
        elif name in seen:
            errors.append(f"{where}.name: duplicate name {name!r} (also variables[{seen[name]}])")
        else:
            seen[name] = i
        kind = definition.get("type")
        if kind == "constant":
            if not isinstance(definition.get("value"), str):
                errors.append(f"{where}.value: a constant needs a text value")
        elif kind == "time":
            fmt = definition.get("format")
            if not isinstance(fmt, str) or not fmt:
                errors.append(f"{where}.format: a time variable needs a format such as yyyy-MM-dd")
            else:
                try:
                    _compile_format(fmt)
                except VariableError as exc:
                    errors.append(f"{where}.{exc}")
            offset = definition.get("offset")
            if offset is not None and not isinstance(offset, str):
                errors.append(f"{where}.offset: must be text such as -1d, or empty")
            elif offset:
                try:
                    _parse_offset(offset)
                except VariableError as exc:
                    errors.append(f"{where}.{exc}")
        else:
            errors.append(
                f"{where}.type: {kind!r} is not a variable type; use 'constant' or 'time'"
            )
    return errors


# --------------------------------------------------------------------------- values


def builtin_values(
    business_time: datetime, *, flow_id: object = None, run_id: object = None
) -> dict[str, str]:
    """Built-in variables for a run: bizdate (the day before), cyctime, flow_id, run_id."""
    values = {
        "bizdate": java_format(business_time.date() - timedelta(days=1), BIZDATE_FORMAT),
        "cyctime": java_format(business_time, CYCTIME_FORMAT),
    }
    if flow_id is not None:
        values["flow_id"] = str(flow_id)
    if run_id is not None:
        values["run_id"] = str(run_id)
    return values


def _as_text(value: object) -> str:
    # A NULL column exported by a SQL node renders as empty text, not "None".
    return "" if value is None else str(value)


def resolve(
    definitions: list[dict] | None,
    business_time: datetime,
    *,
    flow_id: object = None,
    run_id: object = None,
    outputs: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """All variable values for a run: built-ins < upstream outputs < flow definitions."""
    definitions = definitions or []
    errors = validate_definitions(definitions)
    if errors:
        raise VariableError("variables", "; ".join(errors))
    values = builtin_values(business_time, flow_id=flow_id, run_id=run_id)
    for name, value in (outputs or {}).items():
        values[name] = _as_text(value)
    for definition in definitions:
        if definition["type"] == "constant":
            values[definition["name"]] = definition["value"]
        else:
            shifted = apply_offset(business_time, definition.get("offset"))
            values[definition["name"]] = java_format(shifted, definition["format"])
    return values


# --------------------------------------------------------------------------- rendering


def render(text: str, values: Mapping[str, object]) -> str:
    """Replace every ``${name}`` in ``text``; raise UndefinedVariables listing all missing."""
    missing = {name for name in REF_RE.findall(text) if name not in values}
    if missing:
        raise UndefinedVariables(missing)
    return REF_RE.sub(lambda m: _as_text(values[m[1]]), text)


def _render_all(obj: Any, values: Mapping[str, object]) -> Any:
    if isinstance(obj, str):
        return render(obj, values)
    if isinstance(obj, Mapping):
        return {key: _render_all(value, values) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_render_all(value, values) for value in obj]
    if isinstance(obj, tuple):
        return tuple(_render_all(value, values) for value in obj)
    return obj


def render_config(config: Any, values: Mapping[str, object]) -> Any:
    """A copy of ``config`` with every string inside dicts/lists rendered; input untouched."""
    # Check the whole structure first so the error lists every missing name at once.
    missing = find_references(config) - values.keys()
    if missing:
        raise UndefinedVariables(missing)
    return _render_all(config, values)
