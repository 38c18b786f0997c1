"""Query parameters are read as strictly as the schema publishes them: one rule for every list
filter and query of the API.

A parameter the schema types (a boolean, a number, a date, a choice, an id) is given once and
with a value. An empty or repeated one, a boolean other than true/false, an unknown choice or
ordering field is a 400 naming the parameter (`{"<param>": ["..."]}`), never "no filter" or
"the last one wins". Free text (`search`, `name`) may be empty, which means no filter; a
parameter the schema documents as a list (`?status=a&status=b`) may be repeated.

The rule (`check`) is applied, for every view, by:
- `StrictFilterBackend`, `StrictSearchFilter`, `StrictOrderingFilter`: the default filter
  backends, so every FilterSet (declared or built from `filterset_fields`) and every
  `search` / `ordering` gets it;
- `QuerySerializer`: the base of every serializer that reads a view's query parameters;
- `Pagination` (accounts/api/pagination.py): `page` and `page_size`;
- `StrictContentNegotiation`: `format`.
"""

from __future__ import annotations

from dataclasses import dataclass

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.utils import extend_schema_field
from rest_framework import filters, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer

# What the schema's `type: boolean` allows, as JSON and Python clients spell it.
BOOLEANS = frozenset({"true", "false", "True", "False"})


@dataclass(frozen=True)
class Param:
    """How one query parameter may be given."""

    name: str
    blank: bool = False  # an empty value means "no filter" (free text)
    many: bool = False  # may be repeated (the schema says array)
    boolean: bool = False


def _values(params, name: str) -> list[str]:
    if hasattr(params, "getlist"):
        return params.getlist(name)
    return [params[name]] if name in params else []


def problems(params, specs) -> dict[str, list[str]]:
    """`{name: [message]}` for each parameter of `specs` given in a way the schema rules out."""
    found: dict[str, list[str]] = {}
    for spec in specs:
        values = _values(params, spec.name)
        if len(values) > 1 and not spec.many:
            found[spec.name] = [f"Give `{spec.name}` once."]
        elif any(v == "" for v in values) and not spec.blank:
            found[spec.name] = [f"Give `{spec.name}` a value, or leave it out."]
        elif spec.boolean and any(v not in BOOLEANS for v in values):
            found[spec.name] = ["Use true or false."]
    return found


def check(params, specs) -> None:
    """Raise a 400 naming every parameter of `specs` that `params` gives wrongly."""
    found = problems(params, specs)
    if found:
        raise ValidationError(found)


# --------------------------------------------------------------------------- django-filter


MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "format": "int64", "minimum": -MAX_ID, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """An object id: a 64-bit whole number (NumberFilter reads a decimal, so `?owner=1.5`
    filtered for an id no object can have, and the schema said `number`; a larger number is
    a 400 rather than an overflow in the database driver)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", -MAX_ID)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


def filter_param(name: str, flt: django_filters.Filter) -> Param:
    return Param(
        name,
        blank=isinstance(flt, django_filters.CharFilter),
        many=isinstance(flt, django_filters.MultipleChoiceFilter),
        boolean=isinstance(flt, django_filters.BooleanFilter),
    )


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter, strict: every filter of the view's FilterSet follows `check` before the
    FilterSet's own form reads it (which refuses an unknown choice or a number that is not
    one, but reads an empty value or an unknown boolean as "no filter")."""

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        check(
            request.query_params,
            [filter_param(name, flt) for name, flt in filterset.filters.items()],
        )
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        return filterset.qs


class StrictSearchFilter(filters.SearchFilter):
    """`search` is free text (empty: no filter), given once."""

    def get_search_terms(self, request):
        check(request.query_params, [Param(self.search_param, blank=True)])
        return super().get_search_terms(request)


class StrictOrderingFilter(filters.OrderingFilter):
    """`ordering` names fields the view orders by (`-` for descending, comma-separated); an
    unknown one is a 400 listing them, where DRF would drop it. Empty: the default order."""

    def _fields(self, queryset, view, request) -> list[str]:
        context = {"request": request}
        return [name for name, _label in self.get_valid_fields(queryset, view, context)]

    def get_ordering(self, request, queryset, view):
        check(request.query_params, [Param(self.ordering_param, blank=True)])
        raw = request.query_params.get(self.ordering_param, "")
        terms = [term.strip() for term in raw.split(",") if term.strip()]
        if terms:
            valid = self._fields(queryset, view, request)
            unknown = [t for t in terms if t.lstrip("-") not in valid]
            if unknown:
                raise ValidationError(
                    {
                        self.ordering_param: [
                            f"Unknown field {', '.join(unknown)}; order by "
                            f"{', '.join(valid)} (prefix - for descending)."
                        ]
                    }
                )
        return super().get_ordering(request, queryset, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        fields = getattr(view, "ordering_fields", None)
        if isinstance(fields, list | tuple):
            for parameter in parameters:
                parameter["description"] = (
                    f"Order by {', '.join(fields)} (prefix - for descending; comma-separate "
                    "several). Another field is a 400 naming `ordering`."
                )
        return parameters


# --------------------------------------------------------------------------- serializers


def field_param(name: str, field: serializers.Field, *, many: bool = False) -> Param:
    child = getattr(field, "child", None)
    return Param(
        name,
        blank=bool(getattr(field, "allow_blank", False) or getattr(child, "allow_blank", False)),
        many=many or isinstance(field, serializers.ListField | serializers.MultipleChoiceField),
        boolean=isinstance(field, serializers.BooleanField),
    )


class QuerySerializer(serializers.Serializer):
    """Base of the serializers that read query parameters: give it `request.query_params`
    (not `.dict()`, which hides a repeated parameter) and every field follows `check`.
    `repeatable` names text fields the view documents as "comma-separated, or repeated"."""

    repeatable: tuple[str, ...] = ()

    def to_internal_value(self, data):
        check(
            data,
            [
                field_param(name, field, many=name in self.repeatable)
                for name, field in self.fields.items()
            ],
        )
        return super().to_internal_value(data)


# --------------------------------------------------------------------------- format


class StrictContentNegotiation(DefaultContentNegotiation):
    """`?format=` names one of the view's formats: an empty, repeated or unknown one is a 400
    naming `format` (DRF reads an empty one as absent and answers an unknown one with 404)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        name = self.settings.URL_FORMAT_OVERRIDE
        if name and not format_suffix and name in request.query_params:
            formats = list(dict.fromkeys(r.format for r in renderers))
            found = problems(request.query_params, [Param(name)])
            if not found and request.query_params[name] not in formats:
                found = {name: [f"Use one of: {', '.join(formats)}."]}
            if found:
                # The error is JSON, as the schema documents errors, whatever the view renders.
                request.accepted_renderer = JSONRenderer()
                request.accepted_media_type = JSONRenderer.media_type
                raise ValidationError(found)
        return super().select_renderer(request, renderers, format_suffix)
