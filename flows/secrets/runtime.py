"""Secrets in the worker: the values one node references, and their redaction.

`render_with_secrets()` is the one place a secret's value is decrypted. It renders a node's
configuration twice: `shown` with ``***`` for every secret (what is stored as the run's
rendered configuration and displayed) and `executed` with the values (what the node runs
with, never stored). `redact` then replaces every value (and its URL and JSON encodings)
with ``***`` in whatever the node reports: log lines, error messages, outputs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

from flows.models import Secret
from flows.variables import VariableError, render_config

from .references import MASK, PREFIX, masked, referenced_names, variable

# Characters left unencoded by URL builders (urllib, httpx) in query values, path
# segments and paths: a value may be logged or echoed in any of these forms.
URL_SAFE = ("", "/", "!$&'()*+,;=:@", "!$&'()*+,;=:@/")


class UndefinedSecrets(VariableError):
    """The configuration references secrets the flow cannot use (or that cannot be decrypted)."""

    def __init__(self, names: set[str], reason: str = "undefined"):
        listed = ", ".join(f"${{{PREFIX}{n}}}" for n in sorted(names))
        super().__init__("secrets", f"{reason} secret{'s' if len(names) > 1 else ''} {listed}")


class Redactor:
    """Replaces secret values in text and in JSON-like values with ***."""

    def __init__(self, values: Iterable[str] = ()):
        forms: set[str] = set()
        for value in values:
            if value:
                forms |= {value, quote_plus(value), json.dumps(value)[1:-1], repr(value)[1:-1]}
                # Percent-encoded as a query value, a path segment, or a whole path.
                forms |= {quote(value, safe=safe) for safe in URL_SAFE}
        ordered = sorted((f for f in forms if f), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        if self._pattern is None or not isinstance(text, str):
            return text
        return self._pattern.sub(MASK, text)

    __call__ = text

    def value(self, obj: Any) -> Any:
        """A copy of a JSON-like value (a node's output) with every string redacted."""
        if self._pattern is None:
            return obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {
                self.text(k) if isinstance(k, str) else k: self.value(v) for k, v in obj.items()
            }
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        return obj


NO_SECRETS = Redactor()


@dataclass
class RenderedConfig:
    """A node's configuration for one execution (see the module docstring)."""

    shown: Any
    executed: Any
    redact: Redactor


def render_with_secrets(
    config: Any, values: Mapping[str, object], *, tenant_id: int, flow_id: int
) -> RenderedConfig:
    """Render `config` with the run's variable values and the secrets it references.

    Raises VariableError (UndefinedSecrets for a secret the flow cannot use).
    """
    names = referenced_names(config)
    if not names:
        rendered = render_config(config, values)
        return RenderedConfig(rendered, rendered, NO_SECRETS)
    secrets = secret_values(tenant_id=tenant_id, flow_id=flow_id, names=names)
    # Secrets are added last: a flow variable or an output named "secret.X" never wins.
    shown = render_config(config, {**values, **masked(names)})
    executed = render_config(config, {**values, **{variable(n): v for n, v in secrets.items()}})
    return RenderedConfig(shown, executed, Redactor(secrets.values()))


def render_config_masked(config: Any, values: Mapping[str, object]) -> Any:
    """`config` rendered with every secret as *** (nothing decrypted: dry runs, previews)."""
    return render_config(config, {**values, **masked(referenced_names(config))})


def secret_values(*, tenant_id: int, flow_id: int, names: set[str]) -> dict[str, str]:
    """{name: value} of the named secrets this flow may use; the flow's own win."""
    rows = (
        Secret.objects.filter(tenant_id=tenant_id, name__in=names)
        .filter(Q(flow__isnull=True) | Q(flow_id=flow_id))
        .values_list("name", "flow_id", "value_encrypted")
    )
    chosen: dict[str, tuple[int | None, str]] = {}
    for name, owner, token in rows:
        if name not in chosen or owner is not None:
            chosen[name] = (owner, token)
    missing = names - chosen.keys()
    if missing:
        raise UndefinedSecrets(missing)
    values, broken = {}, set()
    for name, (_owner, token) in chosen.items():
        try:
            values[name] = Secret(value_encrypted=token).value
        except ImproperlyConfigured:
            broken.add(name)
    if broken:
        raise UndefinedSecrets(broken, "undecryptable (check FIELD_ENCRYPTION_KEYS)")
    return values
