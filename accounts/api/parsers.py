"""Request parsers that answer 400, never 500, on hostile input.

Every body the API reads (JSON, forms, multipart; YAML flow documents through
`flows.exporting.parse`) passes `input_problems`: text the database cannot store (the NUL
character, which PostgreSQL refuses in text and jsonb, and lone UTF-16 surrogates, which are
not encodable as UTF-8) and nesting deeper than any document of ours, are refused here with
the field named, once for every serializer, service and model behind it.
"""

from __future__ import annotations

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser as DRFFormParser
from rest_framework.parsers import JSONParser as DRFJSONParser
from rest_framework.parsers import MultiPartParser as DRFMultiPartParser

# Deeper than any flow document, node configuration or variable list (a handful of levels);
# code behind the parsers (json.dumps, copy.deepcopy, validators) may then recurse safely.
MAX_DEPTH = 64
# Problems listed in one answer, at most.
MAX_SHOWN = 10


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return "contains the NUL character (\\u0000), which cannot be stored; remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (e.g. \\ud800), which is not valid text"
    return None


def _shown(part) -> str:
    """A path part as an answer may show it: unstorable text escaped (\\ud800), never echoed."""
    text = str(part)
    return json.dumps(text)[1:-1] if text_problem(text) else text


def _path(parts: tuple) -> str:
    out = ""
    for part in parts:
        out += (
            f"[{part}]" if isinstance(part, int) else (f".{_shown(part)}" if out else _shown(part))
        )
    return out


def input_problems(data, *, root: str = "") -> dict[str, list[str]]:
    """{top-level field: ["path: problem", ...]} for every string (keys included) of a parsed
    body that cannot be stored, and for nesting deeper than MAX_DEPTH. Walks without
    recursion, so a hostile depth cannot exhaust the stack here."""
    found: dict[str, list[str]] = {}
    shown = 0
    stack: list[tuple[object, tuple]] = [(data, (root,) if root else ())]
    while stack and shown < MAX_SHOWN:
        value, parts = stack.pop()
        field = str(parts[0]) if parts else "non_field_errors"
        where = _path(parts) or "body"
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                found.setdefault(field, []).append(f"{where}: {problem}")
                shown += 1
            continue
        if len(parts) > MAX_DEPTH:
            if isinstance(value, dict | list | tuple):
                found.setdefault(field, []).append(
                    f"{where}: nested more than {MAX_DEPTH} levels deep"
                )
                shown += 1
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str):
                    problem = text_problem(key)
                    if problem:
                        found.setdefault(field if parts else _shown(key), []).append(
                            f"{_path((*parts, key))} (a key): {problem}"
                        )
                        shown += 1
                        continue
                stack.append((item, (*parts, key)))
        elif isinstance(value, list | tuple):
            stack.extend((item, (*parts, i)) for i, item in enumerate(value))
    return found


def refuse_bad_input(data, *, root: str = ""):
    """`data`, or a ParseError (400) naming each field whose text cannot be stored."""
    problems = input_problems(data, root=root)
    if problems:
        raise ParseError(problems)
    return data


class JSONParser(DRFJSONParser):
    """DRF's JSON parser, refusing too-deep nesting and unstorable text with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the document is nested too deeply.") from exc
        return refuse_bad_input(data)


def _querydict_problems(data) -> None:
    problems: dict[str, list[str]] = {}
    for key, values in data.lists():
        for value in values:
            if isinstance(value, str):
                for field, messages in input_problems(value, root=key).items():
                    problems.setdefault(field, []).extend(messages)
        for field, messages in input_problems({key: None}).items():
            problems.setdefault(field, []).extend(messages)
    if problems:
        raise ParseError(problems)


class FormParser(DRFFormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _querydict_problems(data)
        return data


class MultiPartParser(DRFMultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        _querydict_problems(result.data)
        return result
