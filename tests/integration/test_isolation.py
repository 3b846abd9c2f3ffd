"""Tenants are walls and a policyholder reaches only their own rows — enforced by the database itself."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def send(client, bpm: float, minutes_ago: int = 1) -> None:
    client.put("/v1/me/consents/heart_rate")
    result = client.post("/v1/readings", json={"readings": [
        {"metric": "heart_rate", "time": (NOW - timedelta(minutes=minutes_ago)).isoformat(), "value": bpm}]}).json()
    assert result["accepted"] == 1


@pytest.fixture
def two_insurers(service):
    a, b = service.new_tenant(), service.new_tenant()
    a_alice = a.client(a.person_token("alice"))
    a_bob = a.client(a.person_token("bob"))
    b_alice = b.client(b.person_token("alice"))  # same external id at another insurer: another person
    send(a_alice, 61)
    send(a_bob, 62)
    send(b_alice, 63)
    return a, b, a_alice, a_bob, b_alice


def ids(service, tenant, external: str):
    with service.admin_conn() as conn:
        return conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                            (tenant.id, external)).fetchone()[0]


def test_a_policyholder_sees_only_their_own_readings(two_insurers):
    _, _, a_alice, a_bob, b_alice = two_insurers
    assert [r["value"] for r in a_alice.get("/v1/me/readings").json()["readings"]] == [61]
    assert [r["value"] for r in a_bob.get("/v1/me/readings").json()["readings"]] == [62]
    assert [r["value"] for r in b_alice.get("/v1/me/readings").json()["readings"]] == [63]


@pytest.mark.parametrize("table", ["readings", "people", "consent_events", "consent_state", "sources"])
def test_the_service_role_sees_only_the_tenant_set_on_the_transaction(service, two_insurers, table):
    a, b, *_ = two_insurers
    with service.app_conn(tenant_id=a.id) as conn:
        tenants = {r[0] for r in conn.execute(f"SELECT DISTINCT tenant_id FROM {table}")}
    assert tenants == {a.id}
    with service.app_conn(tenant_id=b.id) as conn:
        tenants = {r[0] for r in conn.execute(f"SELECT DISTINCT tenant_id FROM {table}")}
    assert tenants == {b.id}


@pytest.mark.parametrize("table", ["readings", "people", "staff", "consent_events", "consent_state", "audit_log",
                                   "sources", "tenants"])
def test_no_tenant_set_means_no_rows_at_all(service, two_insurers, table):
    with service.app_conn() as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_a_person_context_narrows_to_that_person(service, two_insurers):
    a, *_ = two_insurers
    alice = ids(service, a, "alice")
    with service.app_conn(tenant_id=a.id, person_id=alice) as conn:
        people = {r[0] for r in conn.execute("SELECT person_id FROM readings")}
        assert people == {alice}
        assert conn.execute("SELECT count(*) FROM people").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM staff").fetchone()[0] == 0


def test_the_service_role_cannot_write_into_another_tenant(service, two_insurers):
    a, b, *_ = two_insurers
    b_alice = ids(service, b, "alice")
    with service.app_conn(tenant_id=a.id) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                            VALUES (now(), %s, %s, 'heart_rate', 99, 'x', 0)""", (b.id, b_alice))
        # Changing another tenant's rows silently touches nothing.
        assert conn.execute("UPDATE people SET language = 'zh-CN' WHERE tenant_id = %s", (b.id,)).rowcount == 0


def test_consent_history_is_append_only_for_the_service_role(service, two_insurers):
    a, *_ = two_insurers
    with service.app_conn(tenant_id=a.id) as conn:
        assert conn.execute("SELECT count(*) FROM consent_events").fetchone()[0] >= 2
        for statement in ("UPDATE consent_events SET action = 'withdraw'", "DELETE FROM consent_events",
                          "TRUNCATE consent_events", "UPDATE consent_state SET granted = false",
                          "DELETE FROM audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_even_the_owner_cannot_rewrite_consent_history(service, two_insurers):
    with service.admin_conn() as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE consent_events SET action = 'grant'")


def test_pooled_connections_do_not_carry_a_tenant_over(service, two_insurers):
    """Many requests from two insurers through the same small pool never mix their data."""
    _, _, a_alice, _, b_alice = two_insurers
    for _ in range(30):
        assert {r["value"] for r in a_alice.get("/v1/me/readings").json()["readings"]} == {61}
        assert {r["value"] for r in b_alice.get("/v1/me/readings").json()["readings"]} == {63}
