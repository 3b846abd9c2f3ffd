"""Privacy where staff look and people answer: consent-aware staff views, need-to-know, "who looked at my data",
one answer per message, devices that stay with their owner, erased tombstones, and clear 4xx for odd input."""
from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.integration.test_alerts import Clinic, worker  # noqa: F401 (the worker fixture)
from tests.support import wait_for


@pytest.fixture
def clinic(tenant, worker):  # noqa: F811
    c = Clinic(tenant)
    assert c.app.put("/v1/me/quiet-hours", json={"start": "00:00", "end": "00:00"}).status_code == 200
    return c


def open_alert(clinic, **kw) -> str:
    clinic.anomaly(**kw)
    return clinic.wait_alert()["id"]


def withdraw(clinic, data_type="heart_rate", purpose="monitoring") -> None:
    answer = clinic.app.delete(f"/v1/me/consents/{data_type}/{purpose}")
    assert answer.status_code == 200, answer.text


def grant(clinic, data_type="heart_rate", purpose="outreach") -> None:
    answer = clinic.app.put(f"/v1/me/consents/{data_type}/{purpose}", json={"notice_version": "2026-11"})
    assert answer.status_code == 200, answer.text


def wait_closed_for_withdrawal(clinic, alert_id) -> dict:
    def closed():
        with clinic.service.admin_conn() as conn:
            return conn.execute("SELECT resolution FROM alerts WHERE id = %s", (alert_id,)).fetchone()[0]
    assert wait_for(closed, timeout=15) == "consent_withdrawn"


def message_for(clinic, alert_id) -> str:
    """A check-in the care team sent for the alert (as the sender leaves it)."""
    with clinic.service.admin_conn() as conn:
        return str(conn.execute(
            """INSERT INTO notifications (tenant_id, recipient_kind, person_id, alert_id, purpose, metric, status)
               VALUES (%s, 'person', %s, %s, 'check_in', 'heart_rate', 'sent') RETURNING id""",
            (clinic.tenant.id, clinic.person_id(), alert_id)).fetchone()[0])


def staff_pushes(clinic, alert_id) -> list[str]:
    with clinic.service.admin_conn() as conn:
        return [r[0] for r in conn.execute(
            """SELECT s.external_id FROM notifications n JOIN staff s ON s.id = n.staff_id
                WHERE n.alert_id = %s AND n.purpose = 'person_replied' ORDER BY s.external_id""",
            (alert_id,)).fetchall()]


# --- defect 1: readings after withdrawal; need-to-know ---

def test_readings_are_hidden_from_staff_once_monitoring_is_withdrawn(clinic):
    open_alert(clinic)
    params = {"metric": "heart_rate", "bucket": "1h"}
    shown = clinic.agent.get("/v1/care/people/li/readings", params=params)
    assert shown.status_code == 200 and shown.json()["points"] and shown.json()["data_hidden"] is False
    withdraw(clinic)
    hidden = clinic.agent.get("/v1/care/people/li/readings", params=params)
    assert hidden.status_code == 200, hidden.text
    assert (hidden.json()["points"], hidden.json()["data_hidden"], hidden.json()["consent"]) == ([], True, "withdrawn")


def test_an_agent_sees_readings_only_for_a_person_with_an_alert_in_their_queue_or_with_a_reason(clinic):
    params = {"metric": "heart_rate"}
    refused = clinic.agent.get("/v1/care/people/li/readings", params=params)
    assert (refused.status_code, refused.json()["code"]) == (403, "need_to_know")
    assert clinic.supervisor.get("/v1/care/people/li/readings", params=params).status_code == 200
    admin = clinic.admin.get("/v1/care/people/li/readings", params=params)
    assert (admin.status_code, admin.json()["code"]) == (403, "need_to_know")
    glass = clinic.agent.get("/v1/care/people/li/readings", params={**params, "reason": "member phoned, asked us"})
    assert glass.status_code == 200 and glass.json()["points"]
    flagged = clinic.supervisor.get("/v1/care/audit", params={"break_glass": "true"}).json()["items"]
    assert [(e["staff"], e["reason"], e["break_glass"]) for e in flagged] == [
        ("agent-1", "member phoned, asked us", True)]
    assert clinic.agent.get("/v1/care/audit").status_code == 403
    open_alert(clinic)
    assert clinic.agent.get("/v1/care/people/li/readings", params=params).status_code == 200


# --- defect 2: alert evidence and the live feed after withdrawal ---

def test_an_alert_closed_for_withdrawal_shows_that_it_existed_and_why_it_closed_but_no_values(clinic):
    alert_id = open_alert(clinic)
    assert "74 bpm" in clinic.agent.get(f"/v1/care/alerts/{alert_id}").text
    feed_url = clinic.service.base_url.replace("http", "ws", 1) + "/v1/care/live"
    token = clinic.tenant.staff_token("agent-1")
    with connect(feed_url, additional_headers={"Authorization": f"Bearer {token}"}) as feed:
        withdraw(clinic)
        wait_closed_for_withdrawal(clinic, alert_id)
        frames = []
        try:
            while True:
                frames.append(json.loads(feed.recv(timeout=2)))
        except TimeoutError:
            pass
    assert frames and all(alert_id not in json.dumps(f) for f in frames), frames
    detail = clinic.agent.get(f"/v1/care/alerts/{alert_id}")
    assert detail.status_code == 200
    body = detail.json()
    assert (body["status"], body["resolution"], body["data_hidden"]) == ("resolved", "consent_withdrawn", True)
    assert body["evidence"] == [] and "bpm" not in detail.text and "baseline" not in detail.text
    assert [t["action"] for t in body["timeline"]] == ["opened", "resolve"]


# --- defect 3: reopen and reach out after withdrawal; the sender's re-check ---

def test_reopen_and_reach_out_are_refused_without_consent_in_force(clinic):
    grant(clinic, "heart_rate", "outreach")
    alert_id = open_alert(clinic)
    withdraw(clinic)
    wait_closed_for_withdrawal(clinic, alert_id)
    reopened = clinic.agent.post(f"/v1/care/alerts/{alert_id}/reopen")
    assert (reopened.status_code, reopened.json()["code"]) == (409, "consent_not_in_force")
    # The grant is still recorded, but outreach needs monitoring: it is not in force.
    assert clinic.app.get("/v1/me/consents").status_code == 200
    other = open_alert(clinic, feature="daily_steps", metric="steps")
    refused = clinic.agent.post(f"/v1/care/alerts/{other}/reach-out")
    assert (refused.status_code, refused.json()["code"]) == (409, "no_outreach_consent")


def test_the_sender_cancels_a_check_in_whose_outreach_consent_is_no_longer_in_force(clinic):
    grant(clinic, "heart_rate", "outreach")
    alert_id = open_alert(clinic)
    clinic.app.post("/v1/me/devices", json={"token": f"tok-{uuid.uuid4().hex}", "platform": "android"})
    with clinic.service.admin_conn() as conn:
        # Monitoring ends without the worker closing the alert yet (as between two of its passes).
        conn.execute("UPDATE consent_state SET granted = false WHERE person_id = %s AND purpose = 'monitoring'",
                     (clinic.person_id(),))
        n_id = conn.execute(
            """INSERT INTO notifications (tenant_id, recipient_kind, person_id, alert_id, purpose, metric, status)
               VALUES (%s, 'person', %s, %s, 'check_in', 'heart_rate', 'queued') RETURNING id""",
            (clinic.tenant.id, clinic.person_id(), alert_id)).fetchone()[0]
        conn.execute("SELECT pg_notify('beidou_outbox', %s)", (str(clinic.tenant.id),))

    def settled():
        with clinic.service.admin_conn() as conn:
            row = conn.execute("SELECT status, status_detail FROM notifications WHERE id = %s", (n_id,)).fetchone()
        return row if row[0] not in ("queued", "sending") else None
    assert wait_for(settled, timeout=20) == ("cancelled", "outreach consent withdrawn")


# --- defect 4: a request for help after withdrawal ---

def test_help_after_withdrawal_makes_a_visible_request_for_help_without_health_data(clinic):
    alert_id = open_alert(clinic)
    message = message_for(clinic, alert_id)
    withdraw(clinic)
    wait_closed_for_withdrawal(clinic, alert_id)
    answer = clinic.app.post(f"/v1/me/messages/{message}/reply", json={"answer": "help"})
    assert answer.status_code == 200, answer.text
    queue = clinic.queue()
    assert [(a["kind"], a["urgent"], a["person"]) for a in queue] == [("help_request", True, "li")]
    assert "bpm" not in json.dumps(queue) and "baseline" not in json.dumps(queue)
    detail = clinic.agent.get(f"/v1/care/alerts/{queue[0]['id']}").json()
    assert detail["evidence"] == [] and "bpm" not in json.dumps(detail)
    old = clinic.agent.get(f"/v1/care/alerts/{alert_id}").json()
    assert (old["status"], old["resolution"]) == ("resolved", "consent_withdrawn")
    assert staff_pushes(clinic, queue[0]["id"]) == ["admin-1", "sup-1"]


# --- defect 5: one answer per message; escalation follows the current state ---

def test_one_answer_per_message_later_answers_are_recorded_and_never_refire(clinic):
    alert_id = open_alert(clinic)
    message = message_for(clinic, alert_id)
    for answer in ("help", "help", "fine", "help", "call", "fine"):
        assert clinic.app.post(f"/v1/me/messages/{message}/reply", json={"answer": answer}).status_code == 200
    detail = clinic.agent.get(f"/v1/care/alerts/{alert_id}").json()
    assert (detail["status"], detail["urgent"]) == ("open", True)
    assert len(staff_pushes(clinic, alert_id)) == 2  # the supervisors once, for the first answer
    later = [t["detail"]["answer"] for t in detail["timeline"] if t["action"] == "person_replied_again"]
    assert later == ["help", "fine", "help", "call", "fine"]
    assert clinic.app.get(f"/v1/me/messages/{message}").json()["answer"] == "help"


def test_help_on_a_resolved_alert_tells_whoever_has_it_now_not_the_former_assignee(clinic):
    alert_id = open_alert(clinic)
    assert clinic.agent.post(f"/v1/care/alerts/{alert_id}/claim").status_code == 200
    message = message_for(clinic, alert_id)
    assert clinic.agent.post(f"/v1/care/alerts/{alert_id}/resolve", json={"reason": "no_response"}).status_code == 200
    assert clinic.app.post(f"/v1/me/messages/{message}/reply", json={"answer": "help"}).status_code == 200
    detail = clinic.agent.get(f"/v1/care/alerts/{alert_id}").json()
    assert (detail["status"], detail["assignee"], detail["urgent"]) == ("open", None, True)
    assert staff_pushes(clinic, alert_id) == ["admin-1", "sup-1"]


def test_help_on_a_closed_alert_reaches_the_newer_open_alert_for_the_same_condition(clinic):
    first = open_alert(clinic)
    message = message_for(clinic, first)
    assert clinic.agent.post(f"/v1/care/alerts/{first}/resolve", json={"reason": "no_response"}).status_code == 200
    second = open_alert(clinic, days_ago=0)
    assert second != first
    answer = clinic.app.post(f"/v1/me/messages/{message}/reply", json={"answer": "help"})
    assert answer.status_code == 200, answer.text
    assert [(a["id"], a["urgent"]) for a in clinic.queue()] == [(second, True)]
    assert clinic.agent.get(f"/v1/care/alerts/{first}").json()["status"] == "resolved"


# --- defect 6: a birth date the insurer recorded stays locked ---

def test_a_birth_date_the_insurer_recorded_stays_locked_after_the_guardian_link_ends(tenant):
    admin = tenant.client(tenant.staff_token("admin-1", "tenant_admin"))
    assert admin.post("/v1/admin/guardianships", json={"guardian": "mum", "minor": "kid",
                                                        "minor_birth_date": "2016-04-01"}).status_code == 201
    assert admin.delete("/v1/admin/guardianships/mum/kid").status_code == 200
    kid = tenant.client(tenant.person_token("kid"))
    changed = kid.patch("/v1/me", json={"birth_date": "1990-04-01"})
    assert (changed.status_code, changed.json()["code"]) == (409, "birth_date_locked")
    research = kid.put("/v1/me/consents/heart_rate/research", json={"notice_version": "2026-11"})
    assert research.status_code == 403


# --- defect 7: WebSockets close when their token expires ---

@pytest.mark.parametrize("path,role", [("/v1/stream", "policyholder"), ("/v1/care/live", "care_agent")])
def test_websockets_close_when_their_token_expires(tenant, path, role):
    from app.auth import issue_token
    settings = tenant.service.settings
    # Expired 27 s ago: the 30 s leeway lets it in for about 3 more seconds, as it would over HTTP.
    token = issue_token(settings, tenant_id=tenant.id, subject=f"ws-{role}", role=role,
                        ttl_s=-(settings.jwt_leeway_s - 3))
    url = tenant.service.base_url.replace("http", "ws", 1) + path
    started = time.monotonic()
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() - started < 15:
                if path == "/v1/stream":
                    ws.send(json.dumps({"seq": 1, "readings": []}))
                try:
                    ws.recv(timeout=0.5)
                except TimeoutError:
                    pass
    assert closed.value.rcvd is not None, "the server did not close the connection"
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "token_expired")
    assert time.monotonic() - started < 10
    assert httpx.get(tenant.service.base_url + "/v1/me",
                     headers={"Authorization": f"Bearer {token}"}).status_code == 401


# --- defect 8: devices stay with their owner ---

def test_a_push_token_never_moves_to_another_person_or_from_staff_without_the_old_device_gone(tenant):
    a, b = tenant.client(tenant.person_token("ann")), tenant.client(tenant.person_token("bob"))
    agent = tenant.client(tenant.staff_token("agent-1"))
    ann_token, staff_token = f"tok-{uuid.uuid4().hex}", f"tok-{uuid.uuid4().hex}"
    assert a.post("/v1/me/devices", json={"token": ann_token, "platform": "android"}).status_code == 201
    assert agent.post("/v1/care/me/devices", json={"token": staff_token, "platform": "ios"}).status_code == 201
    taken = b.post("/v1/me/devices", json={"token": ann_token, "platform": "android"})
    assert (taken.status_code, taken.json()["code"]) == (409, "device_token_in_use")
    staff_taken = b.post("/v1/me/devices", json={"token": staff_token, "platform": "ios"})
    assert (staff_taken.status_code, staff_taken.json()["code"]) == (409, "device_token_in_use")
    with tenant.service.admin_conn() as conn:
        owners = dict(conn.execute("SELECT token, coalesce(person_id, staff_id) FROM devices WHERE token = ANY(%s)",
                                   ([ann_token, staff_token],)).fetchall())
        ann_id = conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = 'ann'",
                              (tenant.id,)).fetchone()[0]
        assert owners[ann_token] == ann_id
        # The push service said Ann's app is gone: the token may now follow the phone's new owner.
        conn.execute("UPDATE devices SET disabled_at = now(), disabled_reason = 'UNREGISTERED' WHERE token = %s",
                     (ann_token,))
        conn.execute("UPDATE devices SET disabled_at = now(), disabled_reason = 'UNREGISTERED' WHERE token = %s",
                     (staff_token,))
    assert b.post("/v1/me/devices", json={"token": ann_token, "platform": "android"}).status_code == 201
    assert b.post("/v1/me/devices", json={"token": staff_token, "platform": "ios"}).status_code == 409
    assert a.post("/v1/me/devices", json={"token": ann_token, "platform": "android"}).status_code == 409


# --- defect 9: an erased person's tombstone takes nothing ---

def test_every_write_for_an_erased_person_is_refused_with_410(tenant):
    me = tenant.client(tenant.person_token("gone"))
    assert me.put("/v1/me/consents/heart_rate").status_code == 200
    assert me.delete("/v1/me").status_code == 200
    writes = [me.post("/v1/me/devices", json={"token": f"tok-{uuid.uuid4().hex}", "platform": "android"}),
              me.request("DELETE", "/v1/me/devices", json={"token": "tok-x"}),
              me.put("/v1/me/quiet-hours", json={"start": "22:00", "end": "07:00"}),
              me.patch("/v1/me", json={"language": "en"}),
              me.put("/v1/me/consents/heart_rate")]
    assert [(w.status_code, w.json().get("code")) for w in writes] == [(410, "erased")] * len(writes)


# --- defect 10: no 500s for odd input ---

def test_times_without_an_offset_forged_cursors_and_odd_quiet_hours_get_clear_422s(clinic):
    open_alert(clinic)
    naive = {"from": "2026-11-01T00:00:00"}
    for answer in (clinic.app.get("/v1/me/readings", params=naive),
                   clinic.app.get("/v1/me/readings", params={"to": "2026-11-01T00:00:00"}),
                   clinic.supervisor.get("/v1/care/people/li/readings", params={"metric": "heart_rate", **naive})):
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid"), answer.text
    import base64
    for key in ([1e400, 1, "2026-11-01T00:00:00+00:00", str(uuid.uuid4())], [1, 99999, "x", "y"],
                [1, 1, "2026-11-01T00:00:00", str(uuid.uuid4())], {"a": 1}, "x"):
        page = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        forged = clinic.agent.get("/v1/care/alerts", params={"page": page})
        assert (forged.status_code, forged.json()["code"]) == (422, "invalid_page"), forged.text
    offset = clinic.app.put("/v1/me/quiet-hours", json={"start": "22:00:00+05:00", "end": "08:00"})
    assert offset.status_code == 422, offset.text
    assert clinic.app.get("/v1/me/quiet-hours").json() == {"start": "00:00:00", "end": "00:00:00"}
    local = clinic.app.patch("/v1/me", json={"time_zone": "localtime"})
    assert (local.status_code, local.json()["code"]) == (422, "invalid_profile"), local.text


# --- who looked at my data ---

def test_a_person_sees_who_looked_at_their_data_by_role_and_why(clinic):
    alert_id = open_alert(clinic)
    assert clinic.agent.get(f"/v1/care/alerts/{alert_id}").status_code == 200
    assert clinic.agent.get("/v1/care/people/li/readings", params={"metric": "heart_rate"}).status_code == 200
    first = clinic.app.get("/v1/me/access-log", params={"limit": 1})
    assert first.status_code == 200, first.text
    page = first.json()
    assert set(page) == {"items", "next"} and page["next"]
    assert page["items"] == [{"at": page["items"][0]["at"], "role": "care_agent", "what": "readings:heart_rate",
                              "why": f"alert {alert_id}", "staff": None}]
    rest = clinic.app.get("/v1/me/access-log", params={"limit": 10, "before": page["next"]}).json()
    assert [(i["role"], i["what"], i["why"]) for i in rest["items"]] == [
        ("care_agent", "alert", f"alert {alert_id}")]
    assert rest["next"] is None
    assert clinic.app.get("/v1/me/access-log", params={"before": "!!"}).status_code == 422
    with clinic.service.admin_conn() as conn:
        conn.execute("UPDATE tenants SET access_log_names_staff = true WHERE id = %s", (clinic.tenant.id,))
    named = clinic.app.get("/v1/me/access-log").json()["items"]
    assert {i["staff"] for i in named} == {"agent-1"}
    audit = clinic.supervisor.get("/v1/care/audit", params={"person": "li", "limit": 1}).json()
    assert len(audit["items"]) == 1 and audit["next"]
    more = clinic.supervisor.get("/v1/care/audit", params={"person": "li", "before": audit["next"]}).json()
    assert audit["items"][0]["id"] > more["items"][0]["id"]


def test_break_the_glass_looks_reach_the_supervisors_in_a_daily_digest(tenant):
    from tests.support import start_process, stop_process
    for subject, role in (("sup-1", "care_supervisor"), ("admin-1", "tenant_admin"), ("agent-1", "care_agent")):
        assert tenant.client(tenant.staff_token(subject, role)).get("/v1/care/alerts").status_code == 200
    with tenant.service.admin_conn() as conn:
        for _ in range(2):
            conn.execute(
                """INSERT INTO audit_log (tenant_id, at, actor_kind, actor_id, action, detail)
                   VALUES (%s, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '3 hours',
                           'staff', 'agent-1', 'readings.viewed',
                           '{"break_glass": true, "reason": "member phoned", "role": "care_agent"}')""",
                (tenant.id,))

    def digests():
        with tenant.service.admin_conn() as conn:
            return conn.execute(
                """SELECT s.external_id FROM notifications n JOIN staff s ON s.id = n.staff_id
                    WHERE n.tenant_id = %s AND n.purpose = 'break_glass_digest' ORDER BY 1""",
                (tenant.id,)).fetchall()

    for again in (False, True):  # a second scheduler (or a restart) sends nothing more for the same day
        scheduler = start_process(tenant.service, "scheduler")
        try:
            assert wait_for(digests, timeout=30) == [("admin-1",), ("sup-1",)]
            time.sleep(8 if again else 0)  # the job's first run is 5 s after start
        finally:
            stop_process(scheduler)
    assert digests() == [("admin-1",), ("sup-1",)]
    with tenant.service.admin_conn() as conn:
        logged = conn.execute("SELECT detail->>'looks' FROM audit_log WHERE tenant_id = %s AND action = "
                              "'audit.break_glass_digest'", (tenant.id,)).fetchall()
    assert logged == [("2",)]
