"""Request bodies cannot say who the caller is: fields that try to set a tenant, person, role or owner are refused.

Who acts, for which insurer and for which person comes from the verified token only. A reading item with such
a field is rejected on its own (its neighbours are stored); every other body is a model that forbids unknown
fields, so the request is refused with 422 — and the database is exactly as it was.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from websockets.sync.client import connect

from alerts.policy import DEFAULT_POLICY
from tests.security.conftest import Insurer, changes, snapshot

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def reading(minutes_ago: int, **extra) -> dict:
    return {"metric": "heart_rate", "time": (NOW - timedelta(minutes=minutes_ago, seconds=7)).isoformat(),
            "value": 66, "source": "inject", **extra}


def readings_of(service, insurer: Insurer, person: str) -> int:
    with service.admin_conn() as conn:
        return conn.execute("SELECT count(*) FROM readings WHERE person_id = %s",
                            (insurer.person_id(person),)).fetchone()[0]


def staff_id(service, insurer: Insurer, role: str) -> str:
    with service.admin_conn() as conn:
        return str(conn.execute("SELECT id FROM staff WHERE tenant_id = %s AND external_id = %s",
                                (insurer.id, insurer.staff[role])).fetchone()[0])


def test_reading_items_naming_a_person_tenant_or_role_are_rejected_alone(service, insurers):
    a, b = insurers
    victim = str(a.person_id(a.other))
    hostile = [reading(301, person=a.other), reading(302, person_id=victim), reading(303, tenant_id=str(b.id)),
               reading(304, role="tenant_admin"), reading(305, person_id=victim, tenant_id=str(b.id))]
    before = {p: readings_of(service, a, p) for p in (a.me, a.other)} | {"b": readings_of(service, b, b.me)}
    answer = a.person_client().post("/v1/readings", json={"readings": [reading(300), *hostile]})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert results[0]["status"] == "accepted"
    assert [(r["status"], r["reason"]) for r in results[1:]] == [("rejected", "invalid")] * len(hostile)
    after = {p: readings_of(service, a, p) for p in (a.me, a.other)} | {"b": readings_of(service, b, b.me)}
    assert after == {**before, a.me: before[a.me] + 1}


def test_a_batch_naming_a_tenant_is_refused_whole(service, insurers):
    a, b = insurers
    before = snapshot(service, a, b)
    answer = a.person_client().post("/v1/readings", json={"readings": [reading(310)], "tenant_id": str(b.id)})
    assert answer.status_code == 422
    assert changes(before, snapshot(service, a, b)) == {}


def test_stream_frames_cannot_name_a_person_either(service, insurers):
    a, b = insurers
    victim = str(a.person_id(a.other))
    before = readings_of(service, a, a.other)
    url = service.base_url.replace("http", "ws", 1) + "/v1/stream"
    with connect(url, additional_headers={"Authorization": f"Bearer {a.person_token()}"}, open_timeout=10) as ws:
        ws.send(json.dumps({"seq": 1, "readings": [reading(320, person_id=victim), reading(321, tenant_id=str(b.id))]}))
        ws.send(json.dumps({"seq": 2, "readings": [reading(322)], "person_id": victim}))
        answers = [json.loads(ws.recv(timeout=10)) for _ in range(2)]
    ack = next(m for m in answers if m["type"] == "ack")
    assert ack["seq"] == 1 and ack["rejected"] == 2 and ack["accepted"] == 0
    assert any(m["type"] == "error" and m["code"] == "malformed_frame" for m in answers)
    assert readings_of(service, a, a.other) == before


class Ids:
    """The real ids a hostile body names: another person of the insurer, another insurer, other staff."""

    def __init__(self, service, a: Insurer, b: Insurer):
        self.victim, self.other_tenant = str(a.person_id(a.other)), str(b.id)
        self.supervisor, self.agent = staff_id(service, a, "care_supervisor"), staff_id(service, a, "care_agent")
        self.paths = {"alert": f"/v1/care/alerts/{a.alert_id}", "kid": a.kid, "message": a.message_id,
                      "other": a.other, "agent": a.staff["care_agent"], "me": a.me}


GRANT = {"notice_version": "2026-11"}
POLICY = DEFAULT_POLICY.model_dump(mode="json")


def _device() -> dict:
    return {"token": f"tok-{uuid.uuid4().hex}", "platform": "android"}


# (caller, method, path, the field, body from Ids): each body carries a field its model must refuse.
CASES = [
    ("policyholder", "PUT", "/v1/me/consents/heart_rate/monitoring", "person_id",
     lambda i: {**GRANT, "person_id": i.victim}),
    ("policyholder", "PUT", "/v1/me/consents/heart_rate/monitoring", "tenant_id",
     lambda i: {**GRANT, "tenant_id": i.other_tenant}),
    ("policyholder", "PUT", "/v1/me/consents/heart_rate/research", "actor", lambda i: {**GRANT, "actor": "guardian"}),
    ("policyholder", "PUT", "/v1/me/consents/sleep", "role", lambda i: {"role": "tenant_admin"}),
    ("policyholder", "DELETE", "/v1/me/consents/heart_rate/monitoring", "person_id", lambda i: {"person_id": i.victim}),
    ("policyholder", "DELETE", "/v1/me/consents/heart_rate", "tenant_id", lambda i: {"tenant_id": i.other_tenant}),
    ("policyholder", "PUT", "/v1/me/dependants/{kid}/consents/sleep/monitoring", "person_id",
     lambda i: {**GRANT, "person_id": i.victim}),
    ("policyholder", "DELETE", "/v1/me/dependants/{kid}/consents/sleep/monitoring", "guardian_id",
     lambda i: {"guardian_id": i.victim}),
    ("policyholder", "PATCH", "/v1/me", "external_id",
     lambda i: {"language": "zh-CN", "external_id": i.paths["other"]}),
    ("policyholder", "PATCH", "/v1/me", "person_id", lambda i: {"language": "zh-CN", "person_id": i.victim}),
    ("policyholder", "PATCH", "/v1/me", "tenant_id", lambda i: {"language": "zh-CN", "tenant_id": i.other_tenant}),
    ("policyholder", "PATCH", "/v1/me", "role", lambda i: {"time_zone": "Asia/Shanghai", "role": "tenant_admin"}),
    ("policyholder", "PATCH", "/v1/me", "erased_at", lambda i: {"erased_at": None}),
    ("policyholder", "POST", "/v1/me/devices", "person_id", lambda i: {**_device(), "person_id": i.victim}),
    ("policyholder", "POST", "/v1/me/devices", "staff_id", lambda i: {**_device(), "staff_id": i.supervisor}),
    ("policyholder", "POST", "/v1/me/devices", "tenant_id", lambda i: {**_device(), "tenant_id": i.other_tenant}),
    ("policyholder", "DELETE", "/v1/me/devices", "person_id", lambda i: {"token": "tok-x", "person_id": i.victim}),
    ("policyholder", "PUT", "/v1/me/quiet-hours", "person_id",
     lambda i: {"start": "21:00", "end": "07:00", "person_id": i.victim}),
    ("policyholder", "POST", "/v1/me/messages/{message}/reply", "person_id",
     lambda i: {"answer": "fine", "person_id": i.victim}),
    ("care_agent", "POST", "{alert}/claim", "assignee_id", lambda i: {"assignee_id": i.supervisor}),
    ("care_agent", "POST", "{alert}/claim", "tenant_id", lambda i: {"tenant_id": i.other_tenant}),
    ("care_agent", "POST", "{alert}/claim", "role", lambda i: {"note": "mine", "role": "care_supervisor"}),
    ("care_agent", "POST", "{alert}/contact", "person_id", lambda i: {"note": "called", "person_id": i.victim}),
    ("care_agent", "POST", "{alert}/resolve", "assignee_id",
     lambda i: {"reason": "false_alarm", "assignee_id": i.agent}),
    ("care_agent", "POST", "{alert}/resolve", "status", lambda i: {"reason": "false_alarm", "status": "open"}),
    ("care_supervisor", "POST", "{alert}/reassign", "tenant_id",
     lambda i: {"assignee": i.paths["agent"], "tenant_id": i.other_tenant}),
    ("care_supervisor", "POST", "{alert}/reassign", "assignee_id",
     lambda i: {"assignee": i.paths["agent"], "assignee_id": i.supervisor}),
    ("care_agent", "POST", "{alert}/reopen", "role", lambda i: {"role": "tenant_admin"}),
    ("care_agent", "PUT", "/v1/care/me/on-duty", "staff_id", lambda i: {"on_duty": True, "staff_id": i.supervisor}),
    ("care_agent", "PUT", "/v1/care/me/on-duty", "role", lambda i: {"on_duty": True, "role": "tenant_admin"}),
    ("care_agent", "POST", "/v1/care/me/devices", "staff_id", lambda i: {**_device(), "staff_id": i.supervisor}),
    ("care_agent", "POST", "/v1/care/me/devices", "person_id", lambda i: {**_device(), "person_id": i.victim}),
    ("tenant_admin", "PUT", "/v1/care/escalation-policy", "tenant_id",
     lambda i: {**POLICY, "tenant_id": i.other_tenant}),
    ("tenant_admin", "PUT", "/v1/care/escalation-policy", "tenant_id in a step",
     lambda i: {"steps": [{**POLICY["steps"][0], "tenant_id": i.other_tenant}]}),
    ("tenant_admin", "POST", "/v1/admin/people/{other}/erasure", "tenant_id",
     lambda i: {"reason": "test", "tenant_id": i.other_tenant}),
    ("tenant_admin", "POST", "/v1/admin/guardianships", "tenant_id",
     lambda i: {"guardian": i.paths["me"], "minor": f"kid-new-{uuid.uuid4().hex[:8]}", "minor_birth_date": "2019-01-01",
                "tenant_id": i.other_tenant}),
]


@pytest.mark.parametrize("caller, method, path, field, body", CASES,
                         ids=[f"{c[0]} {c[1]} {c[2]} +{c[3]}" for c in CASES])
def test_a_body_field_that_names_tenant_person_or_role_is_refused(caller, method, path, field, body, service,
                                                                  insurers):
    a, b = insurers
    ids = Ids(service, a, b)
    client = a.person_client() if caller == "policyholder" else a.staff_client(caller)
    before = snapshot(service, a, b)
    answer = client.request(method, path.format(**ids.paths), json=body(ids))
    assert answer.status_code == 422, f"{answer.status_code} {answer.text}"
    assert any(e.get("type") == "extra_forbidden" for e in answer.json()["detail"]), answer.text
    assert changes(before, snapshot(service, a, b)) == {}, "a refused request changed the database"
