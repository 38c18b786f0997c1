"""Shared fixtures: tenants, users with roles, and API clients acting as them."""

import shutil
import uuid
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from accounts.choices import Role
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.integration.receiver import webhook_receiver  # noqa: F401 - fixture


@pytest.fixture
def tenant(db):
    return TenantFactory(slug="acme", name="Acme")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(slug="globex", name="Globex")


def _member(tenant, role, username):
    user = UserFactory(username=username)
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


@pytest.fixture
def admin_user(tenant):
    return _member(tenant, Role.ADMIN, "alice-admin")


@pytest.fixture
def dba_user(tenant):
    return _member(tenant, Role.DBA, "dave-dba")


@pytest.fixture
def member_user(tenant):
    return _member(tenant, Role.MEMBER, "mary-member")


@pytest.fixture
def other_member(tenant):
    return _member(tenant, Role.MEMBER, "oscar-member")


@pytest.fixture
def outsider(other_tenant):
    """An admin of another tenant."""
    return _member(other_tenant, Role.ADMIN, "bob-globex")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def api():
    """`api(user)` returns an APIClient authenticated as that user (token auth)."""

    def make(user=None, tenant=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user=user)
        if tenant is not None:
            client.credentials(HTTP_X_TENANT=tenant.slug)
        return client

    return make


def tenant_sqlite_folder(tenant) -> Path:
    """A fresh folder inside the tenant's own SQLite folder (the first allowed directory)."""
    from django.conf import settings

    path = Path(settings.SQLITE_DATASOURCE_DIRS[0]) / tenant.slug / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    return path


@pytest.fixture
def sqlite_dir(tenant):
    """Where the test tenant's SQLite data source files go (as tmp_path is for other files)."""
    path = tenant_sqlite_folder(tenant)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _flush_goes_round_a_deadlock():
    """A transactional test's flush tries again when PostgreSQL picks it as a deadlock victim.

    Real workers and the live server keep running between tests (a pool process that starts
    warms its plan cache with a join over schedules, flows and versions). The flush's
    TRUNCATE locks every table one by one, and a statement over several tables that locked
    one of them first waits for another: PostgreSQL aborts one of the two, sometimes the
    flush, which then left the test's rows behind for the next test. The aborted flush
    rolled back whole, so trying again is safe.
    """
    from django.core.management.base import CommandError
    from django.core.management.commands import flush

    handle = flush.Command.handle

    def retried(self, **options):
        for attempt in range(5):
            try:
                return handle(self, **options)
            except CommandError as exc:
                cause = exc.__cause__
                sqlstate = getattr(getattr(cause, "__cause__", None), "sqlstate", None)
                if sqlstate != "40P01" or attempt == 4:  # deadlock_detected
                    raise

    flush.Command.handle = retried
    yield
    flush.Command.handle = handle
