"""The outbound network policy: what data sources and http nodes may reach."""

import pytest
from django.db import connection
from django.test import override_settings

from flows.datasources import connectors, netpolicy
from flows.datasources.netpolicy import Endpoint, NetworkPolicyError, Policy
from tests.factories import DataSourceFactory

PLATFORM_DB = Endpoint(
    "the platform's database server", "127.0.0.1", 5432, frozenset({"tributary"})
)
BROKER = Endpoint("the platform's message broker", "127.0.0.1", 6379)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.5.5.5",
        "::1",
        "::ffff:127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "fc00::1",
        "fe80::1",
    ],
)
def test_default_policy_refuses_loopback_private_and_link_local(host):
    with pytest.raises(NetworkPolicyError, match="loopback or private"):
        Policy().check(host, 5432, database="x")


def test_default_policy_allows_public_addresses():
    assert Policy().check("93.184.216.34", 443) == ["93.184.216.34"]
    assert Policy().check("[2606:4700::1]", 443) == ["2606:4700::1"]


def test_allow_list_opens_networks_and_hosts():
    policy = Policy(allow=("10.0.0.0/8", "localhost"))
    assert policy.check("10.1.2.3", 5432) == ["10.1.2.3"]
    assert "127.0.0.1" in policy.check("localhost", 5432)
    with pytest.raises(NetworkPolicyError):
        policy.check("192.168.0.1", 5432)


def test_deny_list_wins_over_allow_and_public():
    policy = Policy(allow=("10.0.0.0/8",), deny=("10.9.0.0/16", "93.184.216.0/24", ".evil.example"))
    with pytest.raises(NetworkPolicyError, match="denied"):
        policy.check("10.9.1.1", 80)
    with pytest.raises(NetworkPolicyError, match="denied"):
        policy.check("93.184.216.34", 443)
    # A denied name is refused before any DNS lookup.
    with pytest.raises(NetworkPolicyError, match="denied"):
        policy.check("db.evil.example", 5432)
    assert policy.check("10.8.1.1", 80) == ["10.8.1.1"]


def test_platform_database_server_is_refused_for_every_database_even_when_allowed():
    policy = Policy(allow=("127.0.0.0/8", "::1", "localhost"), protected=(PLATFORM_DB,))
    for host in ("127.0.0.1", "localhost", "0.0.0.0", "::1"):
        with pytest.raises(NetworkPolicyError, match="platform's own database"):
            policy.check(host, 5432, database="tributary")
        # Another database of the same server is refused too: it would connect as that
        # server's users (pg_read_file, COPY ... TO PROGRAM).
        with pytest.raises(NetworkPolicyError, match="OUTBOUND_ALLOW_PLATFORM_SERVERS"):
            policy.check(host, 5432, database="warehouse")
    # Not a database connection (an http node): host:port alone is refused.
    with pytest.raises(NetworkPolicyError, match="OUTBOUND_ALLOW_PLATFORM_SERVERS"):
        policy.check("127.0.0.1", 5432)
    assert policy.check("127.0.0.1", 5433, database="tributary") == ["127.0.0.1"]


def test_an_opted_in_server_reaches_other_databases_but_never_the_platform_database():
    # The operator names the server by another name than the platform uses: resolved.
    policy = Policy(
        allow=("127.0.0.0/8", "::1"), protected=(PLATFORM_DB,), platform_servers=("localhost:5432",)
    )
    assert policy.check("127.0.0.1", 5432, database="warehouse") == ["127.0.0.1"]
    assert policy.check("::1", 5432, database="warehouse") == ["::1"]
    with pytest.raises(NetworkPolicyError, match="platform's own database"):
        policy.check("localhost", 5432, database="TRIBUTARY")


@pytest.mark.parametrize("entry", ["127.0.0.1:5433", "93.184.216.34:5432", "127.0.0.1", "junk"])
def test_the_opt_in_must_name_that_exact_server(entry):
    policy = Policy(allow=("127.0.0.0/8",), protected=(PLATFORM_DB,), platform_servers=(entry,))
    with pytest.raises(NetworkPolicyError, match="platform's database server"):
        policy.check("127.0.0.1", 5432, database="warehouse")


def test_broker_is_refused_on_host_and_port_whatever_the_database():
    policy = Policy(allow=("127.0.0.0/8",), protected=(BROKER,))
    with pytest.raises(NetworkPolicyError, match="message broker"):
        policy.check("127.0.0.1", 6379, database="0")
    with pytest.raises(NetworkPolicyError, match="message broker"):
        policy.check("127.0.0.2", 6379)


@override_settings(
    CELERY_BROKER_URL="redis://127.0.0.1:6379/5", CELERY_RESULT_BACKEND="redis://localhost:6380/1"
)
def test_settings_broker_and_result_backend_are_protected():
    labels = {e.label for e in netpolicy.platform_endpoints()}
    assert {"the platform's message broker", "the platform's result backend"} <= labels
    # The test settings allow 127.0.0.0/8, yet the broker stays refused.
    with pytest.raises(NetworkPolicyError, match="broker"):
        netpolicy.check("127.0.0.1", 6379)
    with pytest.raises(NetworkPolicyError, match="result backend"):
        netpolicy.check("localhost", 6380)
    assert netpolicy.check("127.0.0.1", 6390) == ["127.0.0.1"]


@override_settings(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6381/2",
        },
        "sessions": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": ["127.0.0.1:11211", "localhost:11212"],
        },
    }
)
def test_the_platforms_cache_servers_are_refused():
    labels = [e.label for e in netpolicy.platform_endpoints()]
    assert labels.count("the platform's cache") == 3
    # Loopback is allowed by the test settings, yet the cache's port stays refused ...
    with pytest.raises(NetworkPolicyError, match="cache"):
        netpolicy.check("127.0.0.1", 6381)
    # ... and each memcached server of a list, on its own port only.
    for host, port in (("127.0.0.1", 11211), ("localhost", 11212)):
        with pytest.raises(NetworkPolicyError, match="cache"):
            netpolicy.check(host, port)
    assert netpolicy.check("127.0.0.1", 6382) == ["127.0.0.1"]


@pytest.mark.django_db
def test_a_data_source_on_the_platform_database_is_refused(tenant):
    """Whatever the platform runs on, a data source pointing at its database cannot connect."""
    live = connection.settings_dict
    if connection.vendor == "sqlite":
        # The platform's SQLite file lies outside every tenant's folder: the one refusal.
        ds = DataSourceFactory(tenant=tenant, database=str(live["NAME"]), options={})
        match = "this tenant's folder"
    else:
        ds = DataSourceFactory(
            tenant=tenant,
            engine="postgresql",
            host=live["HOST"] or "localhost",
            port=int(live["PORT"] or 5432),
            database=live["NAME"],
            username=live["USER"],
            options={},
        )
        match = "platform's own database"
    with pytest.raises(connectors.ConnectorError, match=match):
        connectors.connect(ds, timeout=5)


@override_settings(OUTBOUND_ALLOW=[])
def test_without_the_test_allowance_loopback_is_refused():
    with pytest.raises(NetworkPolicyError, match="loopback or private"):
        netpolicy.check("127.0.0.1", 5432, database="warehouse")


@pytest.mark.parametrize(
    "host", ["/var/run/postgresql", "a,b", "host name", "-oProxyCommand", "", "x@y"]
)
def test_hosts_that_would_bypass_the_checks_are_refused(host):
    with pytest.raises(NetworkPolicyError):
        Policy(allow=("0.0.0.0/0",)).check(host, 5432)


def test_unresolvable_hosts_are_refused():
    with pytest.raises(NetworkPolicyError, match="cannot be resolved"):
        Policy().check("no-such-host.invalid", 5432)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://93.184.216.34/x", "Only http"),
        ("file:///etc/passwd", "Only http"),
        ("http:///nohost", "no host"),
        ("http://169.254.169.254/latest/meta-data/", "loopback or private"),
    ],
)
@override_settings(OUTBOUND_ALLOW=[])
def test_check_url_refuses_other_schemes_and_internal_hosts(url, match):
    with pytest.raises(NetworkPolicyError, match=match):
        netpolicy.check_url(url)


def _platform_server():
    live = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("the platform's database is not a PostgreSQL server here")
    return live["HOST"] or "localhost", int(live["PORT"] or 5432)


@pytest.mark.django_db
def test_without_the_opt_in_no_database_of_the_platform_server_is_reachable(
    api, tenant, admin_user, pg_server
):
    """Another database name on the platform's PostgreSQL: refused by API, test action and connect."""
    host, port = _platform_server()
    ds = pg_server.datasource(tenant)  # the suite's scratch database, not the platform's
    with connectors.connect(ds, timeout=5) as conn:  # the test settings opt this server in
        assert conn.run("SELECT 1").rows == [(1,)]
    body = {
        "name": "scratch",
        "engine": "postgresql",
        "host": host,
        "port": port,
        "database": pg_server.database,
        "username": pg_server.username,
    }
    with override_settings(OUTBOUND_ALLOW_PLATFORM_SERVERS=[]):
        with pytest.raises(connectors.ConnectorError, match="platform's database server"):
            connectors.connect(ds, timeout=5)
        client = api(admin_user, tenant)
        created = client.post("/api/v1/datasources/", body, format="json")
        assert created.status_code == 400
        assert "platform's database server" in created.json()["host"][0]
        tested = client.post(f"/api/v1/datasources/{ds.pk}/test/")
        assert tested.json()["ok"] is False
        assert "platform's database server" in tested.json()["error"]
        # The superuser's own maintenance database, by name: refused the same way.
        with pytest.raises(NetworkPolicyError, match="platform's database server"):
            netpolicy.check("localhost", port, database="postgres")


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/5")
def test_opting_in_the_database_server_does_not_open_the_broker():
    assert netpolicy.current_policy().platform_servers  # the test settings opt servers in
    with pytest.raises(NetworkPolicyError, match="message broker"):
        netpolicy.check("127.0.0.1", 6379, database="0")
