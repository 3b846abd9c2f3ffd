"""The consent centre from the outside: default deny, grant/withdraw symmetry, receipts, history, FHIR, expiry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from websockets.sync.client import connect

from consent.catalog import DATA_TYPES, PURPOSES
from consent.receipts import receipt_for
from consent.repository import ConsentEvent
from tests.support import receive_until

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def reading(metric: str = "heart_rate", minutes_ago: int = 1, value: float = 70) -> dict:
    return {"metric": metric, "time": (NOW - timedelta(minutes=minutes_ago)).isoformat(), "value": value}


def send(client, *items: dict) -> list[dict]:
    response = client.post("/v1/readings", json={"readings": list(items)})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def person_id(service, tenant, external: str):
    with service.admin_conn() as conn:
        return conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                            (tenant.id, external)).fetchone()[0]


@pytest.fixture
def nina(tenant):
    return tenant.client(tenant.person_token("nina"))


def test_a_new_person_has_consented_to_nothing_and_their_readings_are_refused(nina):
    overview = nina.get("/v1/me/consents").json()
    assert len(overview["consents"]) == len(DATA_TYPES) * len(PURPOSES)
    assert {(c["data_type"], c["purpose"]) for c in overview["consents"]} == {
        (d, p) for d in DATA_TYPES for p in PURPOSES}
    assert not any(c["granted"] or c["in_effect"] for c in overview["consents"])
    assert all(c["updated_at"] is None and c["description"] for c in overview["consents"])
    results = send(nina, *(reading(metric, value=v) for metric, v in
                           (("heart_rate", 70), ("steps", 100), ("spo2", 97), ("glucose", 100))))
    assert [r["reason"] for r in results] == ["no_consent"] * 4


@pytest.mark.parametrize("purpose", PURPOSES)
def test_withdrawing_uses_the_same_route_as_granting_and_needs_no_more(nina, purpose):
    granted = nina.put(f"/v1/me/consents/steps/{purpose}", json={"notice_version": "2026-03", "app": "ios/4.2"})
    assert granted.status_code == 200, granted.text
    withdrawn = nina.delete(f"/v1/me/consents/steps/{purpose}")
    assert withdrawn.status_code == 200, withdrawn.text
    assert (granted.json()["granted"], withdrawn.json()["granted"]) == (True, False)
    assert withdrawn.json()["receipt"]["action"] == "withdraw"


def test_the_openapi_document_shows_withdrawal_needs_no_body_and_granting_needs_a_notice_version(service):
    import httpx
    paths = httpx.get(service.base_url + "/openapi.json").json()["paths"]
    route = paths["/v1/me/consents/{data_type}/{purpose}"]
    assert route["put"]["requestBody"]["required"] is True
    assert not route["delete"].get("requestBody", {}).get("required", False)


def test_refusing_one_purpose_never_disables_what_does_not_need_it(nina):
    for data_type, purpose in (("heart_rate", "monitoring"), ("heart_rate", "outreach"), ("steps", "monitoring")):
        assert nina.put(f"/v1/me/consents/{data_type}/{purpose}", json={"notice_version": "n1"}).status_code == 200
    assert nina.delete("/v1/me/consents/heart_rate/outreach").status_code == 200
    assert nina.delete("/v1/me/consents/steps/research").status_code == 200  # never granted: still fine
    assert [r["status"] for r in send(nina, reading("heart_rate", 5), reading("steps", 5, 40))] == ["accepted"] * 2
    assert nina.put("/v1/me/consents/heart_rate/outreach", json={"notice_version": "n1"}).status_code == 200
    assert nina.delete("/v1/me/consents/heart_rate/monitoring").status_code == 200
    results = send(nina, reading("heart_rate", 4), reading("steps", 4, 40))
    assert [r.get("reason") for r in results] == ["no_consent", None]
    state = {(c["data_type"], c["purpose"]): c for c in nina.get("/v1/me/consents").json()["consents"]}
    outreach = state[("heart_rate", "outreach")]
    # Outreach stays granted as the person said, but has nothing to act on without monitoring.
    assert (outreach["granted"], outreach["in_effect"], outreach["needs"]) == (True, False, ["monitoring"])
    assert state[("steps", "monitoring")]["in_effect"] is True


def test_the_monitoring_shorthand_still_works_for_existing_clients(nina):
    assert nina.put("/v1/me/consents/heart_rate").status_code == 200
    assert send(nina, reading())[0]["status"] == "accepted"
    response = nina.delete("/v1/me/consents/heart_rate")
    assert response.status_code == 200
    assert (response.json()["purpose"], response.json()["granted"]) == ("monitoring", False)
    assert send(nina, reading(minutes_ago=2))[0]["reason"] == "no_consent"


def test_every_grant_returns_a_receipt_that_the_history_reproduces(service, tenant, nina):
    until = (NOW + timedelta(days=365)).isoformat()
    body = {"notice_version": "2026-03", "app": "android/4.2.0", "valid_until": until}
    receipt = nina.put("/v1/me/consents/glucose/research", json=body).json()["receipt"]
    assert receipt["action"] == "grant" and receipt["actor"] == "self"
    assert (receipt["data_type"], receipt["purpose"], receipt["notice_version"], receipt["app"]) == (
        "glucose", "research", "2026-03", "android/4.2.0")
    assert receipt["person_id"] == str(person_id(service, tenant, "nina"))
    assert receipt["receipt_id"] == f"cr-{receipt['event_id']}-{receipt['fingerprint'][:24]}"
    history = nina.get("/v1/me/consents/history").json()["events"]
    assert [e["receipt_id"] for e in history] == [receipt["receipt_id"]]
    assert nina.get("/v1/me/consents/history").json()["events"][0]["receipt_id"] == receipt["receipt_id"]
    # Anyone holding the stored event can recompute the receipt.
    with service.admin_conn() as conn:
        row = conn.execute("""SELECT id, person_id, data_type, purpose, action, notice_version, app, actor, valid_until,
                                     created_at, tenant_id, actor_person_id, reason
                                FROM consent_events WHERE id = %s""", (receipt["event_id"],)).fetchone()
    assert receipt_for(ConsentEvent(*row)).receipt_id == receipt["receipt_id"]


def test_the_history_records_every_change_in_order(nina):
    nina.put("/v1/me/consents/sleep/monitoring", json={"notice_version": "v1", "app": "a"})
    nina.put("/v1/me/consents/sleep/monitoring", json={"notice_version": "v2", "app": "a"})
    nina.request("DELETE", "/v1/me/consents/sleep/monitoring", json={"app": "b"})
    events = nina.get("/v1/me/consents/history").json()["events"]
    assert [(e["action"], e["notice_version"], e["app"]) for e in events] == [
        ("grant", "v1", "a"), ("grant", "v2", "a"), ("withdraw", None, "b")]
    assert len({e["receipt_id"] for e in events}) == 3


def test_the_history_cannot_be_changed_by_the_service_role_even_with_its_new_delete_rights(service, tenant, nina):
    nina.put("/v1/me/consents/spo2/monitoring", json={"notice_version": "v1"})
    me = person_id(service, tenant, "nina")
    for context in ({"tenant_id": tenant.id}, {"tenant_id": tenant.id, "person_id": me}):
        with service.app_conn(**context) as conn:
            for statement in ("UPDATE consent_events SET action = 'withdraw'", "DELETE FROM consent_events",
                              "TRUNCATE consent_events", "UPDATE consent_state SET granted = false",
                              "DELETE FROM consent_state", "DELETE FROM audit_log"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    with service.admin_conn() as conn:
        rights = conn.execute("""SELECT has_table_privilege('beidou_app', 'consent_events', 'UPDATE'),
                                        has_table_privilege('beidou_app', 'consent_events', 'DELETE'),
                                        has_table_privilege('beidou_app', 'consent_state', 'INSERT'),
                                        has_table_privilege('beidou_app', 'audit_log', 'DELETE')""").fetchone()
    assert rights == (False, False, False, False)


def test_unknown_targets_and_bad_bodies_are_refused_with_reasons(nina):
    assert nina.put("/v1/me/consents/weight/monitoring", json={"notice_version": "v1"}).status_code == 404
    assert "unknown purpose" in nina.put("/v1/me/consents/steps/marketing",
                                         json={"notice_version": "v1"}).json()["detail"]
    assert nina.put("/v1/me/consents/steps/monitoring", json={}).status_code == 422
    past = (NOW - timedelta(days=1)).isoformat()
    refused = nina.put("/v1/me/consents/steps/monitoring", json={"notice_version": "v1", "valid_until": past})
    assert refused.status_code == 422 and "past" in refused.json()["detail"]
    assert nina.get("/v1/me/consents/history").json()["events"] == []


def test_descriptions_follow_the_persons_language(nina):
    assert nina.get("/v1/me/consents").json()["language"] == "en"
    assert nina.patch("/v1/me", json={"language": "zh-CN"}).status_code == 200
    overview = nina.get("/v1/me/consents").json()
    assert overview["language"] == "zh-CN"
    by_key = {(c["data_type"], c["purpose"]): c for c in overview["consents"]}
    assert "心率" in by_key[("heart_rate", "monitoring")]["description"]
    assert "研究" in by_key[("glucose", "research")]["title"]


def test_consents_as_fhir_r4_consent_resources(service, tenant, nina):
    until = NOW + timedelta(days=30)
    nina.put("/v1/me/consents/heart_rate/monitoring", json={"notice_version": "v3", "valid_until": until.isoformat()})
    nina.put("/v1/me/consents/steps/outreach", json={"notice_version": "v3"})
    nina.delete("/v1/me/consents/steps/outreach")
    response = nina.get("/v1/me/consents/fhir")
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    consents = {(r["provision"]["class"][0]["code"], r["provision"]["purpose"][0]["code"]): r
                for r in (e["resource"] for e in bundle["entry"])}
    assert set(consents) == {("heart_rate", "monitoring"), ("steps", "outreach")}
    me = f"urn:uuid:{person_id(service, tenant, 'nina')}"
    hr, steps = consents[("heart_rate", "monitoring")], consents[("steps", "outreach")]
    for resource in (hr, steps):
        assert resource["resourceType"] == "Consent"
        assert resource["scope"]["coding"][0]["code"] == "patient-privacy"
        assert resource["category"] and resource["patient"]["reference"] == me
        assert resource["dateTime"] and resource["policyRule"]["coding"]
    assert (hr["status"], hr["provision"]["type"]) == ("active", "permit")
    assert datetime.fromisoformat(hr["provision"]["period"]["end"]) == until
    assert {c["code"] for c in hr["provision"]["purpose"]} == {"monitoring", "TREAT"}
    assert (steps["status"], steps["provision"]["type"]) == ("inactive", "deny")
    assert {c["code"] for c in steps["provision"]["purpose"]} == {"outreach", "COC"}
    assert {e["fullUrl"] for e in bundle["entry"]} == {f"urn:uuid:{r['id']}" for r in consents.values()}


def test_a_consent_ends_at_valid_until_and_the_end_is_recorded_and_announced(service, tenant):
    token = tenant.person_token("omar")
    omar = tenant.client(token)
    until = datetime.now(timezone.utc) + timedelta(seconds=2)
    assert omar.put("/v1/me/consents/heart_rate/monitoring",
                    json={"notice_version": "v1", "valid_until": until.isoformat()}).status_code == 200
    with connect(service.ws_url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10) as ws:
        note = receive_until(ws, lambda m: m["type"] == "consent", timeout=15)
    assert note == {"type": "consent", "data_type": "heart_rate", "purpose": "monitoring", "granted": False}
    assert datetime.now(timezone.utc) >= until
    last = omar.get("/v1/me/consents/history").json()["events"][-1]
    assert (last["action"], last["actor"], last["reason"]) == ("withdraw", "system", "expired")
    assert send(omar, reading())[0]["reason"] == "no_consent"


def test_the_profile_validates_time_zone_language_and_birth_date(nina):
    profile = nina.get("/v1/me").json()
    assert (profile["time_zone"], profile["language"], profile["birth_date"]) == ("UTC", "en", None)
    assert nina.patch("/v1/me", json={"time_zone": "Mars/Olympus"}).status_code == 422
    assert nina.patch("/v1/me", json={"language": "fr"}).status_code == 422
    assert nina.patch("/v1/me", json={"birth_date": (NOW + timedelta(days=2)).date().isoformat()}).status_code == 422
    assert nina.patch("/v1/me", json={"birth_date": None}).status_code == 422
    changed = nina.patch("/v1/me", json={"time_zone": "Asia/Shanghai", "birth_date": "1980-05-17"}).json()
    assert (changed["time_zone"], changed["birth_date"], changed["needs_guardian"]) == (
        "Asia/Shanghai", "1980-05-17", False)
    assert changed["age"] >= 45
    assert nina.get("/v1/me").json()["time_zone"] == "Asia/Shanghai"


def test_staff_tokens_cannot_use_the_policyholder_routes(tenant):
    staff = tenant.client(tenant.staff_token("nurse-1"))
    for method, path in (("get", "/v1/me/consents"), ("put", "/v1/me/consents/steps"), ("get", "/v1/me"),
                         ("get", "/v1/me/export"), ("delete", "/v1/me")):
        assert getattr(staff, method)(path).status_code == 403
