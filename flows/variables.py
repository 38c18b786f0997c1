"""Flow variables: ``${name}`` references, Java-style time formats, offsets and rendering.

Pure functions: no Django, no ORM. The values a run sees are, in increasing precedence:
built-ins (``bizdate``, ``cyctime``, ``flow_id``, ``run_id``), output variables of
upstream nodes, the run's parameters, the flow's own definitions (so a flow may override a built-in), then the
node's own definitions (so one node may override a flow variable for itself).

A time variable counts its offset from a base: the run's business time (the default), or
the bizdate time point, which is the business time one day earlier (DMS counts every custom
variable from it). A list value (a ``sql_assign`` column over all rows) renders as its items
joined by commas.

Rendering is a single pass: a value that itself contains ``${...}`` is inserted as is,
never expanded again, so values cannot recurse or smuggle in other variables.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache, partial
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
    "definition_values",
    "find_references",
    "java_format",
    "render",
    "render_config",
    "resolve",
    "validate_definitions",
    "variable_value",
]

BUILTIN_NAMES = frozenset({"bizdate", "cyctime", "flow_id", "run_id"})
VARIABLE_TYPES = ("constant", "time")
# What a time variable's offset counts from; a definition without "base" uses the first.
BASE_BUSINESS_TIME = "business_time"
BASE_BIZDATE = "bizdate"
TIME_BASES = (BASE_BUSINESS_TIME, BASE_BIZDATE)
# A list value renders as its items joined by this (``IN (${ids})``).
LIST_SEPARATOR = ","

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
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _week_fields(dt: datetime) -> tuple[int, int, int]:
    """(week-based year, week of that year, week of the month) of ``dt``'s date.

    Weeks run Monday to Sunday and week 1 of a year (or month) is the week holding its first
    day: Java's WeekFields.of(MONDAY, 1), which is what DMS documents ("Y is the year in which
    the current week ends, Sunday being its last day"; "e: 1 is Monday"). So 2021-12-27
    (a Monday) is week 1 of week-year 2022, and 2024-12-29 (a Sunday) week 52 of 2024.
    """
    day = dt.date() if isinstance(dt, datetime) else dt
    monday = day - timedelta(days=day.weekday())
    try:
        year = (monday + timedelta(days=6)).year
    except OverflowError:  # the last week of year 9999 ends in it as far as we can count
        year = day.year
    january_first = date(year, 1, 1)
    first_monday = january_first - timedelta(days=january_first.weekday())
    week = (monday - first_monday).days // 7 + 1
    week_of_month = (day.day - 1 + day.replace(day=1).weekday()) // 7 + 1
    return year, week, week_of_month


def _number(value: int, count: int) -> str:
    # Java pads a numeric field to the pattern's letter count.
    return f"{value:0{count}d}"


def _year(value: int, count: int) -> str:
    # "yy" is the two-digit year; any other count is the whole year, padded to the count.
    return f"{value % 100:02d}" if count == 2 else _number(value, count)


def _text(short: str, full: str, count: int) -> str:
    return full if count >= 4 else short


# letter -> (the letter counts it accepts, formatter(dt, count)). The semantics are Java's
# DateTimeFormatter with English names and the week rule above (tests/flows/data holds its
# outputs); SimpleDateFormat agrees except that it has no "e" and prints GGGG as "AD".
_LETTER_RULES: dict[str, tuple[tuple[int, ...], Any]] = {
    "G": ((1, 2, 3, 4), lambda dt, n: "Anno Domini" if n == 4 else "AD"),
    "y": ((1, 2, 3, 4), lambda dt, n: _year(dt.year, n)),
    "Y": ((1, 2, 3, 4), lambda dt, n: _year(_week_fields(dt)[0], n)),
    "M": (
        (1, 2, 3, 4),
        lambda dt, n: (
            _number(dt.month, n)
            if n <= 2
            else _text(_MONTH_NAMES[dt.month - 1][:3], _MONTH_NAMES[dt.month - 1], n)
        ),
    ),
    "w": ((1, 2), lambda dt, n: _number(_week_fields(dt)[1], n)),
    "W": ((1,), lambda dt, n: str(_week_fields(dt)[2])),
    "D": ((1, 2, 3), lambda dt, n: _number(dt.timetuple().tm_yday, n)),
    "d": ((1, 2), lambda dt, n: _number(dt.day, n)),
    "E": (
        (1, 2, 3, 4),
        lambda dt, n: _text(_DAY_NAMES[dt.weekday()][:3], _DAY_NAMES[dt.weekday()], n),
    ),
    # The day's number in the week, Monday = 1 (DMS: "add +1d for the Western calendar").
    "e": (
        (1, 2, 3, 4),
        lambda dt, n: (
            _number(dt.weekday() + 1, n)
            if n <= 2
            else _text(_DAY_NAMES[dt.weekday()][:3], _DAY_NAMES[dt.weekday()], n)
        ),
    ),
    "a": ((1,), lambda dt, n: "AM" if dt.hour < 12 else "PM"),
    "H": ((1, 2), lambda dt, n: _number(dt.hour, n)),
    "k": ((1, 2), lambda dt, n: _number(dt.hour or 24, n)),  # 1-24: midnight is 24
    "K": ((1, 2), lambda dt, n: _number(dt.hour % 12, n)),  # 0-11
    "h": ((1, 2), lambda dt, n: _number((dt.hour % 12) or 12, n)),  # 1-12
    "m": ((1, 2), lambda dt, n: _number(dt.minute, n)),
    "s": ((1, 2), lambda dt, n: _number(dt.second, n)),
    # Fraction of the second, truncated to the count's digits (SSS: milliseconds).
    "S": ((1, 2, 3), lambda dt, n: f"{dt.microsecond:06d}"[:n]),
}


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
            rule = _LETTER_RULES.get(c)
            if rule is None:
                raise VariableError("format", f"unknown pattern letter {c!r} in {fmt!r}")
            counts, formatter = rule
            if len(run) not in counts:
                supported = ", ".join(c * k for k in counts)
                raise VariableError(
                    "format", f"unsupported pattern {run!r} in {fmt!r}; use {supported}"
                )
            parts.append(partial(formatter, n=len(run)))
            i = j
        else:
            parts.append(c)
            i += 1
    return tuple(parts)


def java_format(dt: datetime, fmt: str) -> str:
    """Format ``dt`` with Java's date pattern letters (see _LETTER_RULES; text in 'quotes')."""
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
    """Error messages ("variables[1].format: ...") for a flow's or a node's variable definitions."""
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
            base = definition.get("base", BASE_BUSINESS_TIME)
            if base not in TIME_BASES:
                errors.append(
                    f"{where}.base: {base!r} is not a base; use 'business_time' (the run's "
                    f"business time) or 'bizdate' (the business time one day earlier)"
                )
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


def variable_value(value: object) -> bool:
    """True for what a node's output may export as a variable: a scalar, or a list of scalars."""
    if isinstance(value, list | tuple):
        return all(_is_scalar(item) for item in value)
    return _is_scalar(value)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _as_text(value: object) -> str:
    # A NULL column exported by a SQL node renders as empty text, not "None"; a list as its
    # items joined by commas.
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(_as_text(item) for item in value)
    return str(value)


def time_base(definition: Mapping, business_time: datetime) -> datetime:
    """The moment a time variable's offset counts from (its base)."""
    if definition.get("base", BASE_BUSINESS_TIME) == BASE_BIZDATE:
        # DMS's "bizdate time point": the business time one day earlier, same wall clock.
        return apply_offset(business_time, "-1d")
    return business_time


def definition_values(definitions: list[dict] | None, business_time: datetime) -> dict[str, str]:
    """The values of valid definitions (a flow's or a node's) at a business time."""
    values: dict[str, str] = {}
    for definition in definitions or []:
        if definition["type"] == "constant":
            values[definition["name"]] = definition["value"]
        else:
            shifted = apply_offset(time_base(definition, business_time), definition.get("offset"))
            values[definition["name"]] = java_format(shifted, definition["format"])
    return values


def resolve(
    definitions: list[dict] | None,
    business_time: datetime,
    *,
    flow_id: object = None,
    run_id: object = None,
    outputs: Mapping[str, object] | None = None,
    node_definitions: list[dict] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """All variable values for a run's node: built-ins < upstream outputs < the run's
    parameters (as text) < flow definitions < the node's own definitions (a parameter never
    shares a name with a variable: saving refuses it)."""
    definitions = definitions or []
    errors = validate_definitions(definitions)
    if errors:
        raise VariableError("variables", "; ".join(errors))
    node_errors = validate_definitions(node_definitions or [])
    if node_errors:
        raise VariableError("variables", "node variables: " + "; ".join(node_errors))
    values = builtin_values(business_time, flow_id=flow_id, run_id=run_id)
    for name, value in (outputs or {}).items():
        values[name] = _as_text(value)
    values.update(parameters or {})
    values.update(definition_values(definitions, business_time))
    values.update(definition_values(node_definitions, business_time))
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
