"""Alerts from the care team's side: queue, lifecycle, escalation, consent, isolation, audit, live feed."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from websockets.sync.client import connect

from tests.support import start_process, stop_process, wait_for

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def worker(service):
    process = start_process(service, "worker")
    yield process
    stop_process(process)


class Clinic:
    """One insurer with a person who streams, an agent, a second agent, a supervisor and an admin."""

    def __init__(self, tenant, person: str = "li"):
        self.tenant = tenant
        self.service = tenant.service
        self.person = person
        self.app = tenant.client(tenant.person_token(person))
        for data_type in ("heart_rate", "steps", "spo2"):
            self.app.put(f"/v1/me/consents/{data_type}")
        self.app.post("/v1/readings", json={"readings": [
            {"metric": "heart_rate", "time": (NOW - timedelta(minutes=m)).isoformat(), "value": 60 + m % 7}
            for m in range(30)]})
        self.agent = tenant.client(tenant.staff_token("agent-1"))
        self.agent2 = tenant.client(tenant.staff_token("agent-2"))
        self.supervisor = tenant.client(tenant.staff_token("sup-1", "care_supervisor"))
        self.admin = tenant.client(tenant.staff_token("admin-1", "tenant_admin"))
        for client in (self.agent, self.agent2, self.supervisor, self.admin):
            assert client.get("/v1/care/alerts").status_code == 200  # provisions the staff member

    def person_id(self):
        with self.service.admin_conn() as conn:
            return conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                                (self.tenant.id, self.person)).fetchone()[0]

    def anomaly(self, feature="overnight_rhr", metric="heart_rate", tier="alert", kind="health", days_ago=1,
                reason="overnight resting HR 74 bpm vs your 28-day baseline 65 (+9), 2 nights running") -> int:
        """What the detector would store; NOTIFY wakes the worker as the detector does."""
        start = NOW - timedelta(days=days_ago)
        with self.service.admin_conn() as conn:
            event_id = conn.execute(
                """INSERT INTO anomaly_events (tenant_id, person_id, kind, feature, metric, tier, start_time, end_time,
                                               value, baseline, reason)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 74, 65, %s) RETURNING id""",
                (self.tenant.id, self.person_id(), kind, feature, metric, tier, start, start + timedelta(hours=6),
                 reason)).fetchone()[0]
            conn.execute("SELECT pg_notify('beidou_anomaly', %s)", (str(self.tenant.id),))
        return event_id

    def queue(self, client=None, **params) -> list[dict]:
        return (client or self.agent).get("/v1/care/alerts", params=params).json()["alerts"]

    def wait_alert(self, predicate=lambda a: True, **params) -> dict:
        return wait_for(lambda: next((a for a in self.queue(**params) if predicate(a)), None), timeout=15)


@pytest.fixture
def clinic(tenant, worker):
    return Clinic(tenant)


def test_an_anomaly_opens_one_alert_that_later_events_extend(clinic):
    clinic.anomaly(tier="watch", reason="overnight resting HR 70 bpm vs your baseline 65 (+5)")
    alert = clinic.wait_alert()
    assert (alert["severity"], alert["status"], alert["person"]) == ("low", "open", "li")
    assert "baseline" in alert["summary"]
    clinic.anomaly(tier="alert", days_ago=1)
    raised = clinic.wait_alert(lambda a: a["severity"] == "high")
    assert raised["id"] == alert["id"] and len(clinic.queue()) == 1
    detail = clinic.agent.get(f"/v1/care/alerts/{alert['id']}").json()
    assert len(detail["evidence"]) == 2
    assert [t["action"] for t in detail["timeline"]] == ["opened", "severity_raised"]


def test_the_queue_puts_the_most_severe_first_then_the_oldest_and_pages(clinic):
    clinic.anomaly(feature="daily_steps", metric="steps", tier="watch")
    clinic.anomaly(feature="spo2", metric="spo2", tier="alert")
    clinic.anomaly(feature="overnight_rhr", tier="alert")
    wait_for(lambda: len(clinic.queue()) == 3, timeout=15)
    assert [a["severity"] for a in clinic.queue()] == ["critical", "high", "low"]
    first = clinic.agent.get("/v1/care/alerts", params={"limit": 2}).json()
    second = clinic.agent.get("/v1/care/alerts", params={"limit": 2, "page": first["next_page"]}).json()
    assert [a["feature"] for a in first["alerts"] + second["alerts"]] == ["spo2", "overnight_rhr", "daily_steps"]
    assert second["next_page"] is None
    assert [a["feature"] for a in clinic.queue(severity="critical")] == ["spo2"]


def test_the_lifecycle_records_who_did_what_and_why(clinic):
    clinic.anomaly()
    alert_id = clinic.wait_alert()["id"]
    assert clinic.agent.post(f"/v1/care/alerts/{alert_id}/claim").json()["assignee"] == "agent-1"
    assert clinic.agent.post(f"/v1/care/alerts/{alert_id}/contact", json={"note": "called, no answer"}).json()[
        "status"] == "contacted"
    assert clinic.agent.post(f"/v1/care/alerts/{alert_id}/resolve", json={}).status_code == 422
    done = clinic.agent.post(f"/v1/care/alerts/{alert_id}/resolve",
                             json={"reason": "member_fine", "note": "feels well, had a late workout"}).json()
    assert (done["status"], done["resolution"]) == ("resolved", "member_fine")
    steps = [(t["action"], t["actor_id"], t["from_status"], t["to_status"]) for t in done["timeline"]]
    assert steps == [("opened", "detector", None, "open"), ("claim", "agent-1", "open", "claimed"),
                     ("contact", "agent-1", "claimed", "contacted"), ("resolve", "agent-1", "contacted", "resolved")]
    assert done["timeline"][2]["detail"]["note"] == "called, no answer"
    assert clinic.queue() == []
    assert [a["id"] for a in clinic.queue(status="resolved")] == [alert_id]


def test_two_agents_claiming_at_once_cannot_both_win(clinic):
    clinic.anomaly()
    alert_id = clinic.wait_alert()["id"]
    barrier = threading.Barrier(2)

    def claim(client):
        barrier.wait()
        return client.post(f"/v1/care/alerts/{alert_id}/claim").status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(claim, [clinic.agent, clinic.agent2]))
    assert codes == [200, 409]
    detail = clinic.agent.get(f"/v1/care/alerts/{alert_id}").json()
    assert [t["action"] for t in detail["timeline"]].count("claim") == 1


def test_only_supervisors_reassign_and_a_false_alarm_reaches_the_detector(clinic):
    clinic.anomaly()
    alert_id = clinic.wait_alert()["id"]
    clinic.agent.post(f"/v1/care/alerts/{alert_id}/claim")
    assert clinic.agent2.post(f"/v1/care/alerts/{alert_id}/reassign", json={"assignee": "agent-2"}).status_code == 403
    moved = clinic.supervisor.post(f"/v1/care/alerts/{alert_id}/reassign", json={"assignee": "agent-2"}).json()
    assert moved["assignee"] == "agent-2"
    clinic.agent2.post(f"/v1/care/alerts/{alert_id}/resolve", json={"reason": "false_alarm"})
    with clinic.service.admin_conn() as conn:
        rows = conn.execute("SELECT feature, until > now() + interval '13 days' FROM detector_feedback "
                            "WHERE person_id = %s", (clinic.person_id(),)).fetchall()
    assert rows == [("overnight_rhr", True)]


def test_withdrawn_monitoring_consent_closes_open_alerts_for_that_data_type(clinic):
    clinic.anomaly()
    clinic.anomaly(feature="spo2", metric="spo2")
    wait_for(lambda: len(clinic.queue()) == 2, timeout=15)
    clinic.app.delete("/v1/me/consents/heart_rate")
    assert [a["feature"] for a in clinic.queue()] == ["spo2"]  # hidden at once, before the worker acts
    with clinic.service.admin_conn() as conn:
        closed = wait_for(lambda: conn.execute(
            "SELECT feature, resolution FROM alerts WHERE person_id = %s AND status = 'resolved'",
            (clinic.person_id(),)).fetchall(), timeout=10)
    assert closed == [("overnight_rhr", "consent_withdrawn")]
    # Not shown any more, not even among resolved alerts: the person withdrew that data from monitoring.
    assert clinic.queue(status="resolved") == []


def test_an_event_without_monitoring_consent_never_becomes_an_alert(clinic):
    clinic.app.delete("/v1/me/consents/steps")
    event_id = clinic.anomaly(feature="daily_steps", metric="steps")
    with clinic.service.admin_conn() as conn:
        wait_for(lambda: conn.execute("SELECT handled_at FROM anomaly_events WHERE id = %s",
                                      (event_id,)).fetchone()[0], timeout=10)
        assert conn.execute("SELECT count(*) FROM alerts WHERE person_id = %s", (clinic.person_id(),)).fetchone()[0] == 0


def test_escalation_fires_each_step_once_with_the_policy_the_alert_opened_with(clinic):
    clinic.supervisor.put("/v1/care/me/on-duty", json={"on_duty": True})
    clinic.anomaly(feature="spo2", metric="spo2")
    alert = clinic.wait_alert()
    assert alert["severity"] == "critical" and alert["next_escalation_at"]
    # Editing the policy now does not change the alert in flight.
    assert clinic.admin.put("/v1/care/escalation-policy", json={"steps": []}).status_code == 200
    assert clinic.agent.put("/v1/care/escalation-policy", json={"steps": []}).status_code == 403
    with clinic.service.admin_conn() as conn:  # forty minutes pass
        conn.execute("UPDATE alerts SET opened_at = opened_at - interval '40 minutes', "
                     "next_escalation_at = now() - interval '1 second' WHERE id = %s", (alert["id"],))
    schedulers = [start_process(clinic.service, "scheduler") for _ in range(2)]  # one too many, on purpose
    def escalated():
        detail = clinic.agent.get(f"/v1/care/alerts/{alert['id']}").json()
        return detail if detail["escalations_done"] == ["critical-unclaimed-10m", "unclaimed-30m"] else None

    try:
        detail = wait_for(escalated, timeout=20)
        import time
        time.sleep(2)  # let the second scheduler have its go too
        detail = clinic.agent.get(f"/v1/care/alerts/{alert['id']}").json()
    finally:
        for process in schedulers:
            stop_process(process)
    escalations = [t["detail"]["step"] for t in detail["timeline"] if t["action"] == "escalated"]
    assert escalations == ["critical-unclaimed-10m", "unclaimed-30m"]
    recipients = sorted((n["recipient"], n["purpose"]) for n in detail["notifications"])
    # On duty: the supervisor; supervisors: the supervisor and the admin.
    assert recipients == [("admin-1", "escalation"), ("sup-1", "escalation"), ("sup-1", "escalation")]
    assert detail["next_escalation_at"] is not None  # the 24-hour step is still ahead


def test_another_insurers_staff_get_404_and_policyholders_403(service, clinic):
    clinic.anomaly()
    alert_id = clinic.wait_alert()["id"]
    other = service.new_tenant()
    stranger = other.client(other.staff_token("agent-1"))
    assert stranger.get(f"/v1/care/alerts/{alert_id}").status_code == 404
    assert stranger.post(f"/v1/care/alerts/{alert_id}/claim").status_code == 404
    assert stranger.get("/v1/care/people/li/readings", params={"metric": "heart_rate"}).status_code == 404
    assert stranger.get("/v1/care/alerts").json()["alerts"] == []
    for path in ("/v1/care/alerts", f"/v1/care/alerts/{alert_id}", "/v1/care/escalation-policy"):
        assert clinic.app.get(path).status_code == 403


def test_looking_at_a_persons_data_is_audited(clinic):
    clinic.anomaly()
    alert_id = clinic.wait_alert()["id"]
    series = clinic.agent.get("/v1/care/people/li/readings",
                              params={"metric": "heart_rate", "bucket": "5m", "why": "alert review",
                                      "from": (NOW - timedelta(hours=1)).isoformat()}).json()
    assert sum(p["count"] for p in series["points"]) == 30
    assert all(p["min"] <= p["avg"] <= p["max"] for p in series["points"])
    clinic.agent.get(f"/v1/care/alerts/{alert_id}")
    with clinic.service.admin_conn() as conn:
        rows = conn.execute("SELECT actor_id, action, detail->>'why', detail->>'note' FROM audit_log "
                            "WHERE tenant_id = %s ORDER BY id", (clinic.tenant.id,)).fetchall()
    # Why each look was allowed (the alert in the agent's queue), and the agent's own note on it.
    assert ("agent-1", "readings.viewed", f"alert {alert_id}", "alert review") in rows
    assert ("agent-1", "alert.evidence_viewed", f"alert {alert_id}", None) in rows


def test_the_live_feed_announces_new_alerts_to_the_insurers_staff_only(service, clinic):
    other = service.new_tenant()
    with connect(service.base_url.replace("http", "ws") + "/v1/care/live",
                 additional_headers={"Authorization": f"Bearer {clinic.tenant.staff_token('agent-1')}"}) as mine, \
         connect(service.base_url.replace("http", "ws") + "/v1/care/live",
                 additional_headers={"Authorization": f"Bearer {other.staff_token('agent-9')}"}) as theirs:
        clinic.anomaly()
        message = json.loads(mine.recv(timeout=15))
        assert message["type"] == "alert" and message["action"] == "opened"
        with pytest.raises(TimeoutError):
            theirs.recv(timeout=1)
