"""Pages for signing in, choosing the tenant, one's password and (tenant admins) members."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import selectors, services
from .choices import Role, Scope
from .forms import MemberAddForm, MemberUpdateForm, PasswordChangeForm, apply_validation_error
from .selectors import TenantAccessDenied, tenant_context_for


def page_context(request):
    """The page's TenantContext (accounts.middleware), unwrapped from its lazy proxy, or None."""
    ctx = getattr(request, "page_tenant", None)
    if ctx is None:
        return None
    # SimpleLazyObject around a TenantContext or None: evaluate it once.
    return ctx if bool(ctx) else None


def tenant_required(view):
    """Signed in and an active member of a tenant; the view gets the context as `ctx`."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        ctx = page_context(request)
        if ctx is None:
            return render(request, "no_tenant.html", status=403)
        return view(request, *args, ctx=ctx, **kwargs)

    return wrapper


@login_required
@require_POST
def switch_tenant(request):
    slug = request.POST.get("tenant", "")
    try:
        tenant_context_for(user=request.user, slug=slug)
    except TenantAccessDenied as exc:
        raise Http404(str(exc)) from exc
    request.session["tenant_slug"] = slug
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)


def _require_admin(ctx) -> None:
    if not ctx.is_admin:
        raise PermissionDenied("Only a tenant admin can manage members.")


@tenant_required
@require_http_methods(["GET", "POST"])
def member_list(request, *, ctx):
    """Members of the tenant with their roles; tenant admins add members here."""
    _require_admin(ctx)
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.member_add(
                tenant=ctx.tenant, actor=request.user, **form.service_kwargs()
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(
                request, f"{membership.user.username} was added as {membership.get_role_display()}."
            )
            return redirect("member-list")
    memberships = selectors.membership_list(tenant=ctx.tenant)
    rows = [
        (m, MemberUpdateForm(initial={"role": m.role, "is_active": m.is_active}, prefix=f"m{m.pk}"))
        for m in memberships
    ]
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/members.html", {"form": form, "rows": rows}, status=status)


@tenant_required
@require_POST
def member_update(request, pk: int, *, ctx):
    """Change a member's role or deactivate / reactivate them (the API's rules, via the service)."""
    _require_admin(ctx)
    membership = selectors.membership_list(tenant=ctx.tenant).filter(pk=pk).first()
    if membership is None:
        raise Http404("No such member.")
    form = MemberUpdateForm(request.POST, prefix=f"m{membership.pk}")
    if form.is_valid():
        try:
            services.member_update(
                membership=membership,
                actor=request.user,
                role=form.cleaned_data["role"],
                is_active=form.cleaned_data["is_active"],
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"{membership.user.username} was updated.")
            return redirect("member-list")
    memberships = selectors.membership_list(tenant=ctx.tenant)
    rows = [
        (
            m,
            form
            if m.pk == membership.pk
            else MemberUpdateForm(
                initial={"role": m.role, "is_active": m.is_active}, prefix=f"m{m.pk}"
            ),
        )
        for m in memberships
    ]
    return render(
        request, "accounts/members.html", {"form": MemberAddForm(), "rows": rows}, status=400
    )


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request):
    """Change your own password (the API's service): your API tokens are revoked, you stay in."""
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            revoked = services.user_password_change(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            update_session_auth_hash(request, request.user)
            tokens = f" {revoked} API token(s) were revoked." if revoked else ""
            messages.success(request, f"Your password was changed.{tokens}")
            return redirect("account-password")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/password.html", {"form": form}, status=status)


@login_required
@require_GET
def token_list(request):
    """Your own API tokens (name, scopes, expiry, last use): issue one (shown once), revoke;
    the page reads and writes through /api/v1/me/tokens/."""
    return render(request, "accounts/tokens.html", {"scopes": Scope.choices})


@tenant_required
@require_GET
def service_account_list(request, *, ctx):
    """Service accounts of the tenant and their tokens, through /api/v1/service-accounts/
    (the API's rule: tenant admins manage, auditors read, everyone else is refused)."""
    from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied

    from accounts.api.tokens import require_admin as require_service_account_rights

    try:
        require_service_account_rights(ctx, write=False)
    except ApiPermissionDenied as exc:
        raise PermissionDenied(str(exc.detail)) from exc
    return render(
        request,
        "accounts/service_accounts.html",
        {
            "can_manage": ctx.is_admin,
            "roles": Role.choices,
            "scopes": Scope.choices,
            "page_data": {"can_manage": ctx.is_admin},
        },
    )
