"""Proactive outreach end to end: a care agent reaches out, the real firebase-admin sends through the local
FCM emulator, the person's answer moves the alert."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from alerts.push.emulator import FcmEmulator
from tests.integration.test_alerts import Clinic
from tests.support import start_process, stop_process, wait_for


@pytest.fixture(scope="module")
def fcm():
    with FcmEmulator(hold_seconds=5) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def push_worker(service, fcm):
    process = start_process(service, "worker", BEIDOU_FCM_ENDPOINT=fcm.url, BEIDOU_FCM_PROJECT_ID="beidou-test",
                            BEIDOU_PUSH_BACKOFF_BASE_S="0.2", BEIDOU_PUSH_TIMEOUT_S="2", BEIDOU_PUSH_MAX_ATTEMPTS="4")
    yield process
    stop_process(process)


@pytest.fixture
def clinic(tenant, push_worker):
    c = Clinic(tenant, person="zhang")
    # No quiet hours for this person unless a test says otherwise: nothing is held by accident.
    assert c.app.put("/v1/me/quiet-hours", json={"start": "00:00", "end": "00:00"}).status_code == 200
    assert c.app.get("/v1/me/quiet-hours").json() == {"start": "00:00:00", "end": "00:00:00"}
    return c


def grant_outreach(clinic, data_type: str) -> None:
    response = clinic.app.put(f"/v1/me/consents/{data_type}/outreach", json={"notice_version": "2026-11"})
    assert response.status_code == 200, response.text


def reach_out_to(clinic, fcm, token: str, behaviour: str, **how) -> str:
    """A heart-rate alert whose person consents to outreach and has one phone (``token``), which FCM answers
    with ``behaviour`` (emulator scripting); the agent reaches out. Returns the alert id."""
    grant_outreach(clinic, "heart_rate")
    register(clinic.app, token)
    fcm.set_behaviour(token, behaviour, **how)
    alert_id = open_alert(clinic)
    clinic.agent.post(f"/v1/care/alerts/{alert_id}/reach-out")
    return alert_id


def register(client, token: str, language: str | None = None) -> None:
    response = client.post("/v1/me/devices", json={"token": token, "platform": "android", "app_version": "3.1.0",
                                                  "language": language})
    assert response.status_code == 201


def notifications(clinic, alert_id) -> list[dict]:
    return clinic.agent.get(f"/v1/care/alerts/{alert_id}").json()["notifications"]


def wait_status(clinic, alert_id, *statuses, timeout=20) -> dict:
    try:
        return wait_for(lambda: next((n for n in notifications(clinic, alert_id)
                                      if n["recipient_kind"] == "person" and n["status"] in statuses), None), timeout)
    except AssertionError:
        raise AssertionError(f"no notification reached {statuses}: {notifications(clinic, alert_id)}") from None


def open_alert(clinic, feature: str = "overnight_rhr", **kw) -> str:
    """A new anomaly, and the open alert it makes for that feature."""
    clinic.anomaly(feature=feature, **kw)
    return clinic.wait_alert(lambda a: a["feature"] == feature)["id"]


def test_reaching_out_needs_the_persons_outreach_consent(clinic, fcm):
    alert_id = open_alert(clinic)
    register(clinic.app, "tok-no-consent")
    refused = clinic.agent.post(f"/v1/care/alerts/{alert_id}/reach-out")
    assert refused.status_code == 409 and "outreach consent" in refused.json()["detail"]
    assert notifications(clinic, alert_id) == []


def test_a_check_in_reaches_the_phone_without_health_data_and_the_answer_closes_the_loop(clinic, fcm):
    grant_outreach(clinic, "heart_rate")
    with clinic.service.admin_conn() as conn:
        conn.execute("UPDATE people SET language = 'zh-CN' WHERE tenant_id = %s", (clinic.tenant.id,))
    alert_id = open_alert(clinic)
    register(clinic.app, "tok-zh")
    detail = clinic.agent.post(f"/v1/care/alerts/{alert_id}/reach-out").json()
    assert detail["timeline"][-1]["action"] == "reach_out"
    again = clinic.agent.post(f"/v1/care/alerts/{alert_id}/reach-out").json()  # pressing twice sends once
    assert len([n for n in again["notifications"] if n["recipient_kind"] == "person"]) == 1
    sent = wait_status(clinic, alert_id, "sent")
    [received] = fcm.messages("tok-zh")
    message = received["message"]
    assert message["notification"]["title"] == "关怀问候"
    assert message["data"] == {"message_id": sent["id"], "kind": "check_in"}
    assert message["android"]["collapse_key"] == f"alert-{alert_id}"
    assert "bpm" not in json.dumps(message) and "baseline" not in json.dumps(message)
    # The app fetches the content over its authenticated API, and answers.
    shown = clinic.app.get(f"/v1/me/messages/{sent['id']}").json()
    assert shown["status"] == "opened" and "baseline" in shown["reason"]
    assert clinic.app.post(f"/v1/me/messages/{sent['id']}/reply", json={"answer": "fine"}).json()["answer"] == "fine"
    final = clinic.agent.get(f"/v1/care/alerts/{alert_id}").json()
    assert (final["status"], final["resolution"]) == ("resolved", "member_fine")
    assert [t["action"] for t in final["timeline"]][-3:] == ["message_opened", "person_replied", "resolve"]
    # Someone else's message is not theirs to read.
    other = clinic.tenant.client(clinic.tenant.person_token("someone-else"))
    assert other.get(f"/v1/me/messages/{sent['id']}").status_code == 404


def test_asking_for_help_makes_the_alert_urgent_for_the_assigned_agent(clinic, fcm):
    grant_outreach(clinic, "heart_rate")
    register(clinic.app, "tok-help")
    clinic.agent.post("/v1/care/me/devices", json={"token": "tok-agent-1", "platform": "web"})
    alert_id = open_alert(clinic)
    clinic.agent.post(f"/v1/care/alerts/{alert_id}/claim")
    clinic.agent.post(f"/v1/care/alerts/{alert_id}/reach-out")
    sent = wait_status(clinic, alert_id, "sent")
    clinic.app.post(f"/v1/me/messages/{sent['id']}/reply", json={"answer": "help"})
    alert = clinic.queue()[0]
    assert alert["urgent"] is True and alert["status"] == "claimed"
    wait_for(lambda: fcm.messages("tok-agent-1"), timeout=15)
    staff_note = next(n for n in notifications(clinic, alert_id) if n["recipient_kind"] == "staff")
    assert staff_note["recipient"] == "agent-1" and staff_note["purpose"] == "person_replied"


def test_quiet_hours_hold_a_check_in_but_not_a_critical_one(clinic, fcm):
    grant_outreach(clinic, "heart_rate")
    grant_outreach(clinic, "spo2")
    register(clinic.app, "tok-quiet")
    # Quiet all day except the last minute before midnight, UTC.
    clinic.app.patch("/v1/me", json={"time_zone": "UTC"})
    clinic.app.put("/v1/me/quiet-hours", json={"start": "00:00", "end": "23:59"})
    now = datetime.now(timezone.utc)
    if now.hour == 23 and now.minute == 59:
        pytest.skip("the one minute of the day this person is not in quiet hours")
    ordinary = open_alert(clinic)
    clinic.agent.post(f"/v1/care/alerts/{ordinary}/reach-out")
    held = wait_status(clinic, ordinary, "held", timeout=5)
    assert held["not_before"].startswith(now.strftime("%Y-%m-%dT23:59"))
    critical = open_alert(clinic, feature="spo2", metric="spo2")
    clinic.agent.post(f"/v1/care/alerts/{critical}/reach-out")
    wait_status(clinic, critical, "sent")
    assert notifications(clinic, ordinary)[0]["status"] == "held"


def test_an_unregistered_token_is_dropped_and_never_tried_again(clinic, fcm):
    alert_id = reach_out_to(clinic, fcm, "tok-gone", "unregistered")
    failed = wait_status(clinic, alert_id, "failed")
    assert "call instead" in failed["status_detail"]
    assert len(fcm.messages("tok-gone")) == 1
    with clinic.service.admin_conn() as conn:
        assert conn.execute("SELECT disabled_reason FROM devices WHERE token = 'tok-gone'").fetchone()[0] == "UNREGISTERED"


def test_unavailable_is_retried_with_backoff_until_it_goes_through(clinic, fcm):
    alert_id = reach_out_to(clinic, fcm, "tok-flaky", "unavailable", times=2)
    wait_status(clinic, alert_id, "sent", timeout=30)
    outcomes = [m["outcome"] for m in fcm.messages("tok-flaky")]
    assert outcomes == ["UNAVAILABLE", "UNAVAILABLE", "sent"] or outcomes[-1] != "UNAVAILABLE"
    assert len(outcomes) == 3


def test_quota_exceeded_honours_retry_after(clinic, fcm):
    alert_id = reach_out_to(clinic, fcm, "tok-quota", "quota_exceeded", times=1, retry_after=2)
    wait_status(clinic, alert_id, "sent", timeout=30)
    first, second = [datetime.fromisoformat(m["received_at"]) for m in fcm.messages("tok-quota")]
    assert second - first >= timedelta(seconds=2)


def test_invalid_argument_is_not_retried_and_a_dead_letter_says_call_instead(clinic, fcm):
    alert_id = reach_out_to(clinic, fcm, "tok-bad", "invalid_argument")
    failed = wait_status(clinic, alert_id, "failed")
    assert "INVALID_ARGUMENT" in failed["status_detail"] and failed["attempts"] == 1


def test_retries_stop_at_the_limit_and_leave_a_dead_letter(clinic, fcm):
    alert_id = reach_out_to(clinic, fcm, "tok-down", "internal")
    failed = wait_status(clinic, alert_id, "failed", timeout=40)
    assert failed["attempts"] == 4 and "call instead" in failed["status_detail"]
    assert len(fcm.messages("tok-down")) == 4


def test_the_weekly_cap_holds_further_check_ins(clinic, fcm):
    grant_outreach(clinic, "heart_rate")
    grant_outreach(clinic, "steps")
    grant_outreach(clinic, "spo2")
    register(clinic.app, "tok-cap")
    sent_ids = []
    # The service's default cap: three non-critical check-ins per person in seven days.
    for feature, metric in (("overnight_rhr", "heart_rate"), ("daily_steps", "steps"), ("spo2", "spo2")):
        alert_id = open_alert(clinic, feature=feature, metric=metric, tier="watch")
        clinic.agent.post(f"/v1/care/alerts/{alert_id}/reach-out")
        wait_status(clinic, alert_id, "sent")
        sent_ids.append(alert_id)
    clinic.agent.post(f"/v1/care/alerts/{sent_ids[0]}/resolve", json={"reason": "member_fine"})
    third = open_alert(clinic, feature="overnight_rhr", metric="heart_rate", days_ago=2)
    clinic.agent.post(f"/v1/care/alerts/{third}/reach-out")
    held = wait_status(clinic, third, "held", timeout=5)
    assert held["not_before"] > (datetime.now(timezone.utc) + timedelta(days=6)).isoformat()
    detail = clinic.agent.get(f"/v1/care/alerts/{third}").json()
    assert detail["timeline"][-1]["detail"]["held_reason"] == "weekly_cap"


def test_withdrawing_outreach_cancels_a_held_message(clinic, fcm):
    grant_outreach(clinic, "heart_rate")
    register(clinic.app, "tok-withdraw")
    with clinic.service.admin_conn() as conn:
        conn.execute("UPDATE people SET time_zone = 'UTC', quiet_start = '00:00', quiet_end = '23:59' "
                     "WHERE tenant_id = %s", (clinic.tenant.id,))
    alert_id = open_alert(clinic)
    clinic.agent.post(f"/v1/care/alerts/{alert_id}/reach-out")
    wait_status(clinic, alert_id, "held", timeout=5)
    clinic.app.delete("/v1/me/consents/heart_rate/outreach")
    with clinic.service.admin_conn() as conn:  # the quiet hours end: the sender picks it up and re-checks consent
        conn.execute("UPDATE notifications SET not_before = now() WHERE alert_id = %s", (alert_id,))
    cancelled = wait_status(clinic, alert_id, "cancelled", timeout=15)
    assert cancelled["status_detail"] == "outreach consent withdrawn"
    assert fcm.messages("tok-withdraw") == []
