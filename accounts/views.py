"""Pages for signing in and choosing the tenant."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .selectors import TenantAccessDenied, tenant_context_for


@login_required
def home(request):
    return render(request, "home.html", {})


@login_required
@require_POST
def switch_tenant(request):
    slug = request.POST.get("tenant", "")
    try:
        tenant_context_for(user=request.user, slug=slug)
    except TenantAccessDenied as exc:
        raise Http404(str(exc)) from exc
    request.session["tenant_slug"] = slug
    return redirect(request.POST.get("next") or "home")
