"""Key rotation of stored passwords, and the data source admin's write-only password field."""

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from flows.models import DataSource
from tests.factories import DataSourceFactory

pytestmark = pytest.mark.django_db

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
SECRET = "Pw-Never-Shown-a41f0"


def decrypts_with(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def test_rotation_re_encrypts_every_password_with_the_newest_key(tenant, other_tenant, capsys):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        a = DataSourceFactory(tenant=tenant, password=SECRET)
        b = DataSourceFactory(tenant=other_tenant, password="second-pw")
        empty = DataSourceFactory(tenant=tenant)
    history_rows = DataSource.history.count()
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        # Before: the old key still decrypts, the new one alone does not.
        a.refresh_from_db()
        assert decrypts_with(OLD, a.password_encrypted) and not decrypts_with(
            NEW, a.password_encrypted
        )
        assert a.password == SECRET

        call_command("rotate_encryption_keys")
        assert "rotated 2, already current 0, undecryptable 0" in capsys.readouterr().out

        for ds, plain in ((a, SECRET), (b, "second-pw")):
            ds.refresh_from_db()
            assert decrypts_with(NEW, ds.password_encrypted) and not decrypts_with(
                OLD, ds.password_encrypted
            )
            assert ds.password == plain
        empty.refresh_from_db()
        assert empty.password_encrypted == ""

        # Idempotent: a second run changes nothing.
        token = a.password_encrypted
        call_command("rotate_encryption_keys")
        assert "rotated 0, already current 2" in capsys.readouterr().out
        a.refresh_from_db()
        assert a.password_encrypted == token
    # Once rotated, the old key can go.
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        a.refresh_from_db()
        assert a.password == SECRET
    # A rotation is not an audited change.
    assert DataSource.history.count() == history_rows


def test_rotation_reports_rows_no_key_decrypts(tenant):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        lost = DataSourceFactory(tenant=tenant, password=SECRET)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        with pytest.raises(CommandError, match=str(lost.pk)) as caught:
            call_command("rotate_encryption_keys")
    assert SECRET not in str(caught.value)


# --- admin -------------------------------------------------------------------------------


@pytest.fixture
def staff_admin(admin_user):
    admin_user.is_staff = True
    admin_user.save()
    return admin_user


def test_admin_creates_with_a_password_that_is_never_shown_again(
    client, staff_admin, tenant, sqlite_dir
):
    client.force_login(staff_admin)
    response = client.post(
        "/admin/flows/datasource/add/",
        {
            "tenant": tenant.pk,
            "name": "warehouse",
            "engine": "sqlite",
            "database": str(sqlite_dir / "w.db"),
            "options": '{"create": true}',
            "password": SECRET,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    ds = DataSource.objects.get(name="warehouse")
    assert ds.password == SECRET and ds.history.get().history_user == staff_admin
    page = client.get(f"/admin/flows/datasource/{ds.pk}/change/")
    assert page.status_code == 200
    assert (
        SECRET not in page.content.decode() and ds.password_encrypted not in page.content.decode()
    )
    history = client.get(f"/admin/flows/datasource/{ds.pk}/history/")
    assert history.status_code == 200 and SECRET not in history.content.decode()
    # Saving without typing a password keeps it.
    response = client.post(
        f"/admin/flows/datasource/{ds.pk}/change/",
        {
            "name": "dw",
            "engine": "sqlite",
            "database": str(sqlite_dir / "w.db"),
            "options": "{}",
            "password": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    ds.refresh_from_db()
    assert ds.name == "dw" and ds.password == SECRET


def test_admin_applies_the_same_rules_as_the_api(client, staff_admin, tenant):
    client.force_login(staff_admin)
    response = client.post(
        "/admin/flows/datasource/add/",
        {
            "tenant": tenant.pk,
            "name": "x",
            "engine": "postgresql",
            "host": "10.0.0.5",
            "database": "dw",
            "options": "{}",
        },
    )
    assert response.status_code == 200
    assert "loopback or private" in response.content.decode()
    assert not DataSource.objects.exists()


def test_admin_of_another_tenant_cannot_see_the_data_source(client, outsider, tenant):
    outsider.is_staff = True
    outsider.save()
    ds = DataSourceFactory(tenant=tenant)
    client.force_login(outsider)
    assert client.get(f"/admin/flows/datasource/{ds.pk}/change/").status_code in (302, 404)
    assert ds.name not in client.get("/admin/flows/datasource/").content.decode()


def test_admin_refuses_to_delete_a_data_source_in_use(client, staff_admin, tenant, member_user):
    from tests.factories import NodeFactory

    ds = DataSourceFactory(tenant=tenant)
    NodeFactory(
        flow__tenant=tenant,
        flow__owner=member_user,
        flow__name="nightly",
        tenant=tenant,
        name="load facts",
        type="sql",
        config={"datasource": ds.pk, "sql": "SELECT 1"},
    )
    client.force_login(staff_admin)
    page = client.get(f"/admin/flows/datasource/{ds.pk}/delete/")
    assert "nightly / load facts" in page.content.decode()
    client.post(f"/admin/flows/datasource/{ds.pk}/delete/", {"post": "yes"})
    assert DataSource.objects.filter(pk=ds.pk).exists()
    unused = DataSourceFactory(tenant=tenant)
    assert (
        client.post(f"/admin/flows/datasource/{unused.pk}/delete/", {"post": "yes"}).status_code
        == 302
    )
    assert not DataSource.objects.filter(pk=unused.pk).exists()
