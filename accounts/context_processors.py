from .selectors import switchable_tenants


def tenancy(request):
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    ctx = getattr(request, "page_tenant", None)
    return {
        "tenant_ctx": ctx if ctx else None,
        "my_tenants": switchable_tenants(user=user),
    }
