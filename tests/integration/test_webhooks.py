"""Signed webhooks to the insurer's systems, end to end: a tenant admin registers a local receiver, the real
worker delivers every event from the outbox, and the receiver verifies each signature (Standard Webhooks).
Retries, the dead letter and a replay, ordering per alert, a rotated secret, and the gateway push provider
for phones without Google services (a local gateway that answers each case)."""
from __future__ import annotations

import pytest

from alerts.signing import new_secret
from tests.integration.test_alerts import Clinic
from tests.receiver import Answer, Receiver
from tests.support import start_process, stop_process, wait_for

ALL_EVENTS = ["alert.opened", "alert.claimed", "alert.contacted", "alert.resolved", "member.replied",
              "consent.changed"]
GATEWAY_SECRET = new_secret()


@pytest.fixture(scope="module")
def gateway():
    with Receiver([GATEWAY_SECRET]) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def worker(service, gateway):
    process = start_process(service, "worker", BEIDOU_PUSH_GATEWAY_URL=gateway.url,
                            BEIDOU_PUSH_GATEWAY_SECRET=GATEWAY_SECRET, BEIDOU_PUSH_BACKOFF_BASE_S="0.2",
                            BEIDOU_WEBHOOK_MAX_ATTEMPTS="3", BEIDOU_PUSH_TIMEOUT_S="2", BEIDOU_WEBHOOK_TIMEOUT_S="2")
    yield process
    stop_process(process)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def clinic(tenant, worker):
    return Clinic(tenant)


def register(clinic, receiver, events=ALL_EVENTS, **extra) -> dict:
    answer = clinic.admin.post("/v1/tenant/webhooks", json={"url": receiver.url, "events": events, **extra})
    assert answer.status_code == 201, answer.text
    endpoint = answer.json()
    receiver.secrets.append(endpoint["secret"])
    return endpoint


def wait_events(receiver, event, n=1, timeout=20):
    return wait_for(lambda: (found := receiver.of_type(event)) and len(found) >= n and found, timeout)


def test_tenant_admins_manage_endpoints_and_only_https_or_loopback_is_accepted(clinic, receiver):
    created = register(clinic, receiver, events=["alert.opened"], description="CRM")
    assert created["secret"].startswith("whsec_") and created["include_health_values"] is False
    listed = clinic.admin.get("/v1/tenant/webhooks").json()
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    assert clinic.agent.get("/v1/tenant/webhooks").status_code == 403
    assert clinic.supervisor.post("/v1/tenant/webhooks", json={"url": receiver.url, "events": ["alert.opened"]}
                                  ).status_code == 403
    for url in ("http://crm.example.com/hooks", "ftp://127.0.0.1/x", "https://u:p@crm.example.com/"):
        refused = clinic.admin.post("/v1/tenant/webhooks", json={"url": url, "events": ["alert.opened"]})
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_webhook_url", url
    assert clinic.admin.post("/v1/tenant/webhooks", json={"url": "https://crm.example.com/hooks",
                                                          "events": ["alert.exploded"]}).status_code == 422
    assert clinic.admin.post("/v1/tenant/webhooks", json={"url": "https://crm.example.com/hooks",
                                                          "events": ["alert.opened"], "secret": "whsec_short"}
                             ).json()["code"] == "invalid_secret"
    patched = clinic.admin.patch(f"/v1/tenant/webhooks/{created['id']}", json={"events": ["alert.resolved"],
                                                                               "enabled": False}).json()
    assert (patched["events"], patched["enabled"]) == (["alert.resolved"], False)
    assert clinic.admin.patch(f"/v1/tenant/webhooks/{created['id']}", json={"url": None}).status_code == 422
    assert clinic.admin.delete(f"/v1/tenant/webhooks/{created['id']}").status_code == 204
    assert clinic.admin.get(f"/v1/tenant/webhooks/{created['id']}").status_code == 404
    # Another insurer's admin cannot see or touch it.
    other = clinic.service.new_tenant()
    other_admin = other.client(other.staff_token("admin-x", "tenant_admin"))
    assert other_admin.get("/v1/tenant/webhooks").json() == []


def test_the_alert_lifecycle_arrives_signed_in_order_with_ids_and_states_only(clinic, receiver):
    register(clinic, receiver)
    # The CRM is slow to take the first event: the agent's quick claim, contact and resolution queue up behind
    # it, and resolving (which cancels pushes not yet sent) must not drop the events before it.
    receiver.script(Answer(delay_s=1.5))
    clinic.anomaly()
    alert_id = clinic.wait_alert()["id"]
    for action, body in (("claim", None), ("contact", {"note": "called"}), ("resolve", {"reason": "needed_help"})):
        assert clinic.agent.post(f"/v1/care/alerts/{alert_id}/{action}", json=body).status_code == 200, action
    wait_events(receiver, "alert.resolved")
    events = [r for r in receiver.received if r.json["type"].startswith("alert.")]
    assert [r.json["type"] for r in events] == ["alert.opened", "alert.claimed", "alert.contacted", "alert.resolved"]
    assert all(r.verified_with for r in receiver.received), "every request verifies with the endpoint's secret"
    assert len({r.id for r in events}) == 4
    resolved = events[-1].json["data"]
    assert (resolved["alert_id"], resolved["person"], resolved["status"], resolved["resolution"],
            resolved["assignee"]) == (alert_id, "li", "resolved", "needed_help", "agent-1")
    assert events[2].json["data"]["channel"] == "care_team"
    for r in events:  # no health values: the detector's words quote them
        assert "summary" not in r.json["data"] and "bpm" not in r.body.decode()
    # A consent change is an event too, from the member's own transaction.
    assert clinic.app.put("/v1/me/consents/steps/outreach", json={"notice_version": "2026-11"}).status_code == 200
    [consent] = wait_events(receiver, "consent.changed")
    assert consent.verified_with
    assert {k: consent.json["data"][k] for k in ("person", "data_type", "purpose", "granted")} == {
        "person": "li", "data_type": "steps", "purpose": "outreach", "granted": True}


def test_a_tenant_that_opts_in_gets_the_detectors_words(clinic, receiver):
    register(clinic, receiver, events=["alert.opened"], include_health_values=True)
    clinic.anomaly()
    [opened] = wait_events(receiver, "alert.opened")
    assert "baseline" in opened.json["data"]["summary"]


def test_failures_back_off_then_dead_letter_and_a_replay_delivers_with_the_same_id(clinic, receiver):
    endpoint = register(clinic, receiver, events=["alert.opened", "alert.claimed"])
    receiver.default = Answer(500)
    clinic.anomaly()
    alert_id = clinic.wait_alert()["id"]
    clinic.agent.post(f"/v1/care/alerts/{alert_id}/claim")
    deliveries = f"/v1/tenant/webhooks/{endpoint['id']}/deliveries"
    [dead] = wait_for(lambda: clinic.admin.get(deliveries, params={"status": "failed"}).json(), timeout=30)
    assert dead["event"] == "alert.opened" and dead["attempts"] == 3 and "dead letter" in dead["status_detail"]
    # Ordered per alert: the claim waited behind the opening and was never sent while it was failing.
    assert {r.json["type"] for r in receiver.received} == {"alert.opened"}
    assert len(receiver.received) == 3
    receiver.default = Answer(200)
    claimed = wait_events(receiver, "alert.claimed")  # the dead letter no longer holds it back
    assert claimed[0].verified_with
    assert clinic.admin.post(f"{deliveries}/{dead['id']}/replay").status_code == 202
    replays = wait_for(lambda: [r for r in receiver.received if r.json["type"] == "alert.opened"][3:], timeout=20)
    assert replays[0].id == receiver.received[0].id == f"msg_{dead['id']}" and replays[0].verified_with
    assert clinic.admin.get(deliveries, params={"status": "failed"}).json() == []
    unknown = "00000000-0000-0000-0000-000000000000"
    assert clinic.admin.post(f"{deliveries}/{unknown}/replay").status_code == 404


def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(clinic, receiver):
    endpoint = register(clinic, receiver, events=["alert.opened"])
    old = endpoint["secret"]
    rotated = clinic.admin.post(f"/v1/tenant/webhooks/{endpoint['id']}/rotate-secret",
                                json={"overlap_minutes": 60}).json()
    new = rotated["secret"]
    assert new != old and rotated["previous_secret_until"] is not None
    receiver.secrets[:] = [old, new]
    clinic.anomaly(feature="overnight_rhr")
    [first] = wait_events(receiver, "alert.opened")
    assert first.verified_with == [old, new] and len(first.headers["webhook-signature"].split()) == 2
    newest = clinic.admin.post(f"/v1/tenant/webhooks/{endpoint['id']}/rotate-secret",
                               json={"overlap_minutes": 0}).json()["secret"]
    receiver.secrets[:] = [old, new, newest]
    clinic.anomaly(feature="spo2_low", metric="spo2")
    second = wait_events(receiver, "alert.opened", n=2)[1]
    assert second.verified_with == [newest]


def test_a_phone_without_google_gets_its_push_through_the_insurers_gateway(clinic, receiver, gateway):
    register(clinic, receiver, events=["member.replied", "alert.contacted"])
    assert clinic.app.put("/v1/me/quiet-hours", json={"start": "00:00", "end": "00:00"}).status_code == 200
    assert clinic.app.put("/v1/me/consents/heart_rate/outreach", json={"notice_version": "2026-11"}).status_code == 200
    device = clinic.app.post("/v1/me/devices", json={"token": "hms-li-1", "platform": "android",
                                                     "provider": "gateway"})
    assert device.status_code == 201 and device.json()["provider"] == "gateway"
    assert clinic.app.post("/v1/me/devices", json={"token": "x", "platform": "android", "provider": "apns"}
                           ).status_code == 422
    clinic.anomaly()
    alert_id = clinic.wait_alert()["id"]
    gateway.script(Answer(200, {"id": "hms-msg-1"}))
    clinic.agent.post(f"/v1/care/alerts/{alert_id}/reach-out")
    push = wait_for(lambda: next((r for r in gateway.received if r.json["data"]["token"] == "hms-li-1"), None))
    assert push.verified_with == [GATEWAY_SECRET]
    message_id = push.json["data"]["data"]["message_id"]
    wait_for(lambda: any(n["status"] == "sent" for n in clinic.agent.get(f"/v1/care/alerts/{alert_id}").json()[
        "notifications"]))
    assert clinic.app.post(f"/v1/me/messages/{message_id}/reply", json={"answer": "help"}).status_code == 200
    [replied] = wait_events(receiver, "member.replied")
    assert replied.verified_with and (replied.json["data"]["answer"], replied.json["data"]["alert_id"]) == \
        ("help", alert_id)
    assert wait_events(receiver, "alert.contacted")[0].json["data"]["channel"] == "push"


def test_a_token_the_gateway_calls_invalid_is_dropped(clinic, gateway):
    assert clinic.app.put("/v1/me/quiet-hours", json={"start": "00:00", "end": "00:00"}).status_code == 200
    assert clinic.app.put("/v1/me/consents/heart_rate/outreach", json={"notice_version": "2026-11"}).status_code == 200
    clinic.app.post("/v1/me/devices", json={"token": "hms-gone", "platform": "android", "provider": "gateway"})
    clinic.anomaly()
    alert_id = clinic.wait_alert()["id"]
    gateway.script(Answer(410, {"error": "invalid_token"}))
    clinic.agent.post(f"/v1/care/alerts/{alert_id}/reach-out")
    failed = wait_for(lambda: next((n for n in clinic.agent.get(f"/v1/care/alerts/{alert_id}").json()[
        "notifications"] if n["status"] == "failed"), None))
    assert "INVALID_TOKEN" in failed["status_detail"] and "call instead" in failed["status_detail"]
    with clinic.service.admin_conn() as conn:
        reason = conn.execute("SELECT disabled_reason FROM devices WHERE token = 'hms-gone'").fetchone()[0]
    assert reason == "INVALID_TOKEN"
