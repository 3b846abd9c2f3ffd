"""Fixtures for the hostile-input and access tests: insurers with real objects, and a worker that opens alerts.

Each :class:`Insurer` is a fresh tenant on the shared service with a policyholder who has readings, consents,
an alert (opened by a real worker from an anomaly event), a message from the care team and a dependant; a
second policyholder with a message of their own; and one staff member of every role. Object ids and names
carry the insurer's label, so another insurer's ids never exist by accident. :func:`snapshot` fingerprints
what a refused request must not change.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.support import Service, start_process, stop_process, wait_for

NOW = datetime.now(timezone.utc).replace(microsecond=0)
STAFF_ROLES = ("care_agent", "care_supervisor", "tenant_admin")


@pytest.fixture(scope="package")
def security_worker(service: Service):
    """One worker for this package: it turns anomaly events into alerts, as in production."""
    process = start_process(service, "worker")
    yield process
    stop_process(process)


class Insurer:
    """One tenant with its people, staff and objects (see the module docstring)."""

    def __init__(self, service: Service, label: str):
        self.service = service
        self.label = label
        self.tenant = service.new_tenant(f"sec-{label}-{uuid.uuid4().hex[:8]}")
        self.id = self.tenant.id
        # Data only the owner may see; a refused answer must never contain it.
        self.marker = f"secret-{label}-{uuid.uuid4().hex[:10]}"
        self.me, self.other, self.kid = f"holder-{label}", f"holder2-{label}", f"kid-{label}"
        self.staff = {role: f"{role.replace('_', '-')}-{label}" for role in STAFF_ROLES}
        self._clients: dict[str, httpx.Client] = {}
        self.pool_people: list[str] = []

        for person in (self.me, self.other):
            self.grant(person, "heart_rate")
            self.grant(person, "heart_rate", "outreach")
            self.send_readings(person)
        for role, subject in self.staff.items():
            assert self.staff_client(role).get("/v1/care/alerts").status_code == 200  # provisions them
        linked = self.staff_client("tenant_admin").post("/v1/admin/guardianships", json={
            "guardian": self.me, "minor": self.kid, "minor_birth_date": "2018-05-01"})
        assert linked.status_code == 201, linked.text
        self.alert_id = self.open_alerts([self.me])[0]
        self.message_id = self.add_message(self.me, self.alert_id)
        self.other_message_id = self.add_message(self.other, None)
        self.webhook_id = self.add_webhook()
        self.webhook_delivery_id = self.add_webhook_delivery(self.webhook_id)

    # --- tokens and clients ---
    def person_token(self, subject: str | None = None) -> str:
        return self.tenant.person_token(subject or self.me)

    def staff_token(self, role: str) -> str:
        return self.tenant.staff_token(self.staff[role], role)

    def client_for(self, token: str) -> httpx.Client:
        if token not in self._clients:
            self._clients[token] = self.tenant.client(token)
        return self._clients[token]

    def person_client(self, subject: str | None = None) -> httpx.Client:
        return self.client_for(self.person_token(subject))

    def staff_client(self, role: str) -> httpx.Client:
        return self.client_for(self.staff_token(role))

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    # --- data ---
    def grant(self, person: str, data_type: str, purpose: str = "monitoring") -> None:
        answer = self.person_client(person).put(f"/v1/me/consents/{data_type}/{purpose}",
                                                json={"notice_version": "2026-11"})
        assert answer.status_code == 200, answer.text

    def send_readings(self, person: str, n: int = 30) -> None:
        answer = self.person_client(person).post("/v1/readings", json={"readings": [
            {"metric": "heart_rate", "time": (NOW - timedelta(minutes=m)).isoformat(), "value": 60 + m % 7}
            for m in range(n)]})
        assert answer.status_code == 200 and answer.json()["accepted"] == n, answer.text

    def person_id(self, external: str) -> uuid.UUID:
        with self.service.admin_conn() as conn:
            return conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                                (self.id, external)).fetchone()[0]

    def open_alerts(self, people: list[str]) -> list[str]:
        """An anomaly event per person (as the detector stores it); the worker opens one alert each."""
        ids = [self.person_id(p) for p in people]
        start = NOW - timedelta(days=1)
        with self.service.admin_conn() as conn:
            for person_id in ids:
                conn.execute(
                    """INSERT INTO anomaly_events (tenant_id, person_id, kind, feature, metric, tier, start_time,
                                                   end_time, value, baseline, reason)
                       VALUES (%s, %s, 'health', 'overnight_rhr', 'heart_rate', 'alert', %s, %s, 74, 65, %s)""",
                    (self.id, person_id, start, start + timedelta(hours=6),
                     f"overnight resting HR 74 bpm vs baseline 65 ({self.marker})"))
            conn.execute("SELECT pg_notify('beidou_anomaly', %s)", (str(self.id),))

        def opened():
            with self.service.admin_conn() as conn:
                rows = dict(conn.execute("SELECT person_id, id FROM alerts WHERE person_id = ANY(%s) "
                                         "AND status <> 'resolved'", (ids,)).fetchall())
            return [str(rows[i]) for i in ids] if len(rows) == len(ids) else None

        return wait_for(opened, timeout=30)

    def add_message(self, person: str, alert_id: str | None) -> str:
        """A check-in the care team sent to ``person`` (a notification row, as the sender leaves it)."""
        with self.service.admin_conn() as conn:
            return str(conn.execute(
                """INSERT INTO notifications (tenant_id, recipient_kind, person_id, alert_id, purpose, metric, status)
                   VALUES (%s, 'person', %s, %s, 'check_in', 'heart_rate', 'sent') RETURNING id""",
                (self.id, self.person_id(person), alert_id)).fetchone()[0])

    def add_webhook(self) -> str:
        """A disabled endpoint of the insurer's (disabled: nothing is ever sent to it)."""
        created = self.staff_client("tenant_admin").post("/v1/tenant/webhooks", json={
            "url": f"https://crm-{self.label}.example.com/hooks", "events": ["alert.opened"], "enabled": False})
        assert created.status_code == 201, created.text
        return created.json()["id"]

    def add_webhook_delivery(self, endpoint_id: str) -> str:
        """A dead-lettered event for the endpoint (as the sender leaves it)."""
        with self.service.admin_conn() as conn:
            return str(conn.execute(
                """INSERT INTO notifications (tenant_id, recipient_kind, endpoint_id, purpose, order_key, payload,
                                              status, attempts)
                   VALUES (%s, 'webhook', %s, 'alert.opened', 'alert:matrix', '{"type": "alert.opened"}', 'failed', 10)
                   RETURNING id""", (self.id, endpoint_id)).fetchone()[0])

    def fresh_people(self, n: int, *, outreach: bool = False) -> list[str]:
        """New policyholders with monitoring consent (and outreach consent if asked)."""
        people = [f"pool-{self.label}-{uuid.uuid4().hex[:10]}" for _ in range(n)]
        for person in people:
            self.grant(person, "heart_rate")
            if outreach:
                self.grant(person, "heart_rate", "outreach")
        self.pool_people.extend(people)
        return people

    def fresh_alerts(self, n: int) -> list[str]:
        """``n`` open alerts of their own (their people consented to outreach), for requests that change them."""
        return self.open_alerts(self.fresh_people(n, outreach=True)) if n else []


@pytest.fixture(scope="package")
def insurers(service: Service, security_worker) -> tuple[Insurer, Insurer]:
    """Insurer A (whose callers the access matrix mostly plays) and insurer B (the other tenant)."""
    a, b = Insurer(service, "a"), Insurer(service, "b")
    yield a, b
    a.close()
    b.close()


_SNAPSHOT_SQL = {
    "people": "SELECT id, external_id, time_zone, language, birth_date, erased_at, quiet_start, quiet_end "
              "FROM people WHERE tenant_id = ANY(%(t)s) AND external_id <> ALL(%(pool)s)",
    "staff": "SELECT id, external_id, role, on_duty FROM staff WHERE tenant_id = ANY(%(t)s)",
    "alerts": "SELECT a.id, a.status, a.assignee_id, a.urgent, a.resolution, a.severity, a.updated_at FROM alerts a "
              "JOIN people p ON p.id = a.person_id WHERE a.tenant_id = ANY(%(t)s) AND p.external_id <> ALL(%(pool)s)",
    "timeline": "SELECT count(*) FROM alert_timeline t JOIN people p ON p.id = t.person_id "
                "WHERE t.tenant_id = ANY(%(t)s) AND p.external_id <> ALL(%(pool)s)",
    "messages": "SELECT n.id, n.status, n.opened_at, n.answer FROM notifications n JOIN people p ON p.id = n.person_id "
                "WHERE n.tenant_id = ANY(%(t)s) AND p.external_id <> ALL(%(pool)s)",
    "consent_events": "SELECT count(*) FROM consent_events WHERE tenant_id = ANY(%(t)s)",
    "guardianships": "SELECT guardian_id, minor_id, ended_at FROM guardianships WHERE tenant_id = ANY(%(t)s)",
    "devices": "SELECT id, person_id, staff_id, token, disabled_at FROM devices WHERE tenant_id = ANY(%(t)s)",
    "readings": "SELECT count(*) FROM readings WHERE tenant_id = ANY(%(t)s)",
    "records": "SELECT count(*) FROM records WHERE tenant_id = ANY(%(t)s)",
    "source_priority": "SELECT person_id, metric, sources FROM source_priority WHERE tenant_id = ANY(%(t)s)",
    "audit_log": "SELECT count(*) FROM audit_log WHERE tenant_id = ANY(%(t)s)",
    "policies": "SELECT tenant_id, policy, updated_at FROM escalation_policies WHERE tenant_id = ANY(%(t)s)",
}


def snapshot(service: Service, *insurers: Insurer, conn=None) -> dict:
    """What a refused request must leave exactly as it was, in these insurers (their fresh-pool people aside:
    requests that were allowed change those, and the worker keeps sending their messages)."""
    params = {"t": [i.id for i in insurers], "pool": [p for i in insurers for p in i.pool_people] or [""]}
    if conn is None:
        with service.admin_conn() as own:
            return snapshot(service, *insurers, conn=own)
    return {name: sorted(map(repr, conn.execute(query, params).fetchall())) for name, query in _SNAPSHOT_SQL.items()}


def changes(before: dict, after: dict) -> dict:
    return {k: {"before": before[k], "after": after[k]} for k in before if before[k] != after[k]}
