"""Resolve the tenant of page requests (session users); the API resolves its own after auth."""

from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.functional import SimpleLazyObject

from .api.parsers import input_problems
from .selectors import TenantAccessDenied, tenant_context_for


def _page_tenant(request):
    try:
        return tenant_context_for(user=request.user, slug=request.session.get("tenant_slug"))
    except TenantAccessDenied:
        if request.session.get("tenant_slug"):
            # A remembered tenant the user lost access to: fall back to the default one.
            request.session.pop("tenant_slug", None)
            try:
                return tenant_context_for(user=request.user, slug=None)
            except TenantAccessDenied:
                return None
        return None


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.page_tenant = SimpleLazyObject(lambda: _page_tenant(request))
        return self.get_response(request)


class QueryTextMiddleware:
    """Query parameters follow the request bodies' text rule (accounts/api/parsers.py): a NUL
    character, which the database refuses in any lookup, is a 400 naming the parameter."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problems: dict[str, list[str]] = {}
        for key, values in request.GET.lists():
            for field, messages in input_problems({key: values}).items():
                problems.setdefault(field, []).extend(messages)
        if problems:
            if request.path.startswith("/api/"):
                return JsonResponse(problems, status=400)
            return HttpResponseBadRequest("A query parameter holds text that cannot be read.")
        return self.get_response(request)
