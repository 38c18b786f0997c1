"""``${secret.NAME}`` references in node configurations. Pure: no database, no values.

A secret reference is a variable reference whose name starts with ``secret.``; rendering
substitutes it like any variable, but with ``***`` everywhere except in the worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from flows.variables import REF_RE

PREFIX = "secret."
MASK = "***"
# A secret's name: what may follow "secret." in a reference.
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def is_reference(variable: str) -> bool:
    """A variable name (as found by flows.variables) that names a secret."""
    return variable.startswith(PREFIX)


def variable(name: str) -> str:
    """The variable a secret's value is rendered under: secret.NAME."""
    return PREFIX + name


def references(config: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """(path of the field, secret name) for every reference inside `config`."""
    if isinstance(config, str):
        for found in REF_RE.findall(config):
            if is_reference(found):
                yield path, found[len(PREFIX) :]
    elif isinstance(config, Mapping):
        for key, value in config.items():
            yield from references(value, (*path, key))
    elif isinstance(config, list | tuple):
        for index, value in enumerate(config):
            yield from references(value, (*path, index))


def referenced_names(config: Any) -> set[str]:
    """The names of every secret `config` references."""
    return {name for _path, name in references(config)}


def problems(config: Any, available: set[str]) -> list[tuple[str, str]]:
    """(field, message) for each reference to a secret the flow cannot use (field: "a.b")."""
    found: list[tuple[str, str]] = []
    for path, name in references(config):
        if name in available:
            continue
        item = (
            ".".join(str(p) for p in path),
            f"undefined secret ${{{PREFIX}{name}}}: create it on the Secrets page "
            "(for the tenant or for this flow)",
        )
        if item not in found:
            found.append(item)
    return found


def masked(names) -> dict[str, str]:
    """Variable values that render every named secret as ***."""
    return {variable(name): MASK for name in names}
