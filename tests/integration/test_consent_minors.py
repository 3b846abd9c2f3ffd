"""People under 14: a guardian's grant is needed, the guardian can withdraw it, and RLS keeps it that way."""
from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone

import psycopg
import pytest
from websockets.sync.client import connect

NOW = datetime.now(timezone.utc).replace(microsecond=0)
TWELVE = date(NOW.year - 12, 1, 1).isoformat()
GRANT = {"notice_version": "kids-2026", "app": "ios/4.2"}


def years_ago(years: int) -> str:
    return date(NOW.year - years, 1, 1).isoformat()


def reading(minutes_ago: int = 1) -> dict:
    return {"metric": "heart_rate", "time": (NOW - timedelta(minutes=minutes_ago)).isoformat(), "value": 90}


def stored_result(client, minutes_ago: int = 1) -> str:
    result = client.post("/v1/readings", json={"readings": [reading(minutes_ago)]}).json()["results"][0]
    return result.get("reason") or result["status"]


def ids(service, tenant, *externals: str) -> list:
    with service.admin_conn() as conn:
        return [conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                             (tenant.id, e)).fetchone()[0] for e in externals]


@pytest.fixture
def family(tenant):
    """A parent linked by the insurer as guardian of a 12-year-old; both have used the app."""
    parent, kid = tenant.client(tenant.person_token("parent")), tenant.client(tenant.person_token("kid"))
    parent.get("/v1/me")
    kid.get("/v1/me")
    admin = tenant.client(tenant.staff_token("admin-1", role="tenant_admin"))
    linked = admin.post("/v1/admin/guardianships", json={"guardian": "parent", "minor": "kid",
                                                         "minor_birth_date": TWELVE})
    assert linked.status_code == 201, linked.text
    assert linked.json()["active"] and linked.json()["created_by"] == "admin-1"
    return parent, kid, admin


def test_a_twelve_year_old_cannot_grant_consent_themselves(tenant):
    kid = tenant.client(tenant.person_token("kid"))
    assert kid.patch("/v1/me", json={"birth_date": TWELVE}).json()["needs_guardian"] is True
    refused = kid.put("/v1/me/consents/heart_rate/monitoring", json=GRANT)
    assert refused.status_code == 403
    assert refused.json()["code"] == "guardian_required" and "guardian" in refused.json()["detail"]
    assert kid.put("/v1/me/consents/heart_rate").status_code == 403  # the shorthand too
    assert stored_result(kid) == "no_consent"
    assert kid.delete("/v1/me/consents/heart_rate/monitoring").status_code == 200  # withdrawing is always theirs


def test_a_birth_date_under_14_withdraws_the_grants_a_child_gave_themselves(tenant):
    kid = tenant.client(tenant.person_token("kid"))
    assert kid.put("/v1/me/consents/steps/monitoring", json=GRANT).status_code == 200
    assert kid.put("/v1/me/consents/steps/research", json=GRANT).status_code == 200
    kid.patch("/v1/me", json={"birth_date": years_ago(10)})
    assert not any(c["granted"] for c in kid.get("/v1/me/consents").json()["consents"])
    last_two = kid.get("/v1/me/consents/history").json()["events"][-2:]
    assert {(e["action"], e["actor"], e["reason"]) for e in last_two} == {("withdraw", "system", "under_14")}


def test_a_guardian_grants_and_withdraws_for_the_child_and_the_events_say_so(service, tenant, family):
    parent, kid, _ = family
    parent_id, kid_id = ids(service, tenant, "parent", "kid")
    assert parent.get("/v1/me/dependants").json()["dependants"][0]["external_id"] == "kid"
    granted = parent.put("/v1/me/dependants/kid/consents/heart_rate/monitoring", json=GRANT)
    assert granted.status_code == 200, granted.text
    receipt = granted.json()["receipt"]
    assert (receipt["actor"], receipt["actor_person_id"], receipt["person_id"]) == (
        "guardian", str(parent_id), str(kid_id))
    assert stored_result(kid) == "accepted"
    assert parent.get("/v1/me/dependants/kid/consents").json()["consents"][0]["granted"] is True
    assert parent.delete("/v1/me/dependants/kid/consents/heart_rate/monitoring").status_code == 200
    assert stored_result(kid, 2) == "no_consent"
    events = kid.get("/v1/me/consents/history").json()["events"]
    assert [(e["action"], e["actor"], e["actor_person_id"]) for e in events] == [
        ("grant", "guardian", str(parent_id)), ("withdraw", "guardian", str(parent_id))]
    assert parent.get("/v1/me/dependants/kid/consents/history").json()["events"] == events
    # The guardian's own consents are their own: nothing changed there.
    assert parent.get("/v1/me/consents/history").json()["events"] == []


def test_the_childs_open_streams_are_told_when_the_guardian_withdraws(service, tenant, family):
    parent, _, _ = family
    parent.put("/v1/me/dependants/kid/consents/heart_rate/monitoring", json=GRANT)
    headers = {"Authorization": f"Bearer {tenant.person_token('kid')}"}
    with connect(service.ws_url, additional_headers=headers, open_timeout=10) as ws:
        parent.delete("/v1/me/dependants/kid/consents/heart_rate/monitoring")
        deadline = time.monotonic() + 5
        while (message := json.loads(ws.recv(timeout=deadline - time.monotonic())))["type"] != "consent":
            pass
    assert message == {"type": "consent", "data_type": "heart_rate", "purpose": "monitoring", "granted": False}


def test_only_the_linked_guardian_reaches_the_child(tenant, family):
    stranger = tenant.client(tenant.person_token("stranger"))
    for method, path in (("put", "/v1/me/dependants/kid/consents/heart_rate/monitoring"),
                         ("delete", "/v1/me/dependants/kid/consents/heart_rate/monitoring"),
                         ("get", "/v1/me/dependants/kid/consents")):
        response = stranger.request(method.upper(), path, json=GRANT if method == "put" else None)
        assert response.status_code == 404
    assert stranger.get("/v1/me/dependants").json()["dependants"] == []


def test_an_ended_link_ends_the_guardians_reach(tenant, family):
    parent, _, admin = family
    ended = admin.delete("/v1/admin/guardianships/parent/kid")
    assert ended.status_code == 200 and ended.json()["active"] is False
    assert parent.put("/v1/me/dependants/kid/consents/steps/monitoring", json=GRANT).status_code == 404
    assert admin.delete("/v1/admin/guardianships/parent/kid").status_code == 404
    links = admin.get("/v1/admin/guardianships", params={"person": "kid"}).json()["guardianships"]
    assert [(g["guardian"], g["active"]) for g in links] == [("parent", False)]


def test_the_insurer_sets_the_childs_birth_date_and_only_the_insurer_changes_it(tenant, family):
    _, kid, _ = family
    assert kid.get("/v1/me").json()["birth_date"] == TWELVE
    locked = kid.patch("/v1/me", json={"birth_date": years_ago(30)})
    assert locked.status_code == 409 and locked.json()["code"] == "birth_date_locked"
    assert kid.patch("/v1/me", json={"language": "zh-CN"}).status_code == 200


def test_linking_is_for_tenant_admins_and_for_children_under_14(tenant):
    body = {"guardian": "mum", "minor": "teen", "minor_birth_date": years_ago(12)}
    for role in ("care_agent", "care_supervisor"):
        assert tenant.client(tenant.staff_token("s", role=role)).post(
            "/v1/admin/guardianships", json=body).status_code == 403
    assert tenant.client(tenant.person_token("mum")).post("/v1/admin/guardianships", json=body).status_code == 403
    admin = tenant.client(tenant.staff_token("admin-1", role="tenant_admin"))
    too_old = admin.post("/v1/admin/guardianships", json={**body, "minor_birth_date": years_ago(15)})
    assert too_old.status_code == 422 and "under 14" in too_old.json()["detail"]
    assert admin.post("/v1/admin/guardianships", json={**body, "minor": "mum"}).status_code == 422
    assert admin.get("/v1/admin/guardianships").json()["guardianships"] == []


def test_linking_is_audited(service, tenant, family):
    with service.admin_conn() as conn:
        rows = conn.execute("SELECT actor_kind, actor_id, action, detail->>'guardian' FROM audit_log "
                            "WHERE tenant_id = %s ORDER BY id", (tenant.id,)).fetchall()
    assert rows == [("staff", "admin-1", "guardianship.linked", "parent")]


def test_rls_gives_the_guardians_context_the_childs_consent_rows_and_nothing_else(service, tenant, family):
    parent, kid, _ = family
    parent.put("/v1/me/dependants/kid/consents/heart_rate/monitoring", json=GRANT)
    stored_result(kid)
    stranger = tenant.client(tenant.person_token("stranger"))
    stranger.get("/v1/me")
    parent_id, kid_id, stranger_id = ids(service, tenant, "parent", "kid", "stranger")
    with service.app_conn(tenant_id=tenant.id, person_id=parent_id) as conn:
        assert conn.execute("SELECT count(*) FROM consent_state WHERE person_id = %s", (kid_id,)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM consent_events WHERE person_id = %s", (kid_id,)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM readings WHERE person_id = %s", (kid_id,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM sources WHERE person_id = %s", (kid_id,)).fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # not in the guardian's name: refused
            conn.execute("""INSERT INTO consent_events (tenant_id, person_id, data_type, purpose, action, actor)
                            VALUES (%s, %s, 'steps', 'monitoring', 'grant', 'self')""", (tenant.id, kid_id))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # not a dependant of theirs
            conn.execute("""INSERT INTO consent_events (tenant_id, person_id, data_type, purpose, action, actor,
                                                        actor_person_id)
                            VALUES (%s, %s, 'steps', 'monitoring', 'grant', 'guardian', %s)""",
                         (tenant.id, stranger_id, parent_id))
    with service.app_conn(tenant_id=tenant.id, person_id=stranger_id) as conn:
        assert conn.execute("SELECT count(*) FROM consent_state WHERE person_id = %s", (kid_id,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM people WHERE id = %s", (kid_id,)).fetchone()[0] == 0
    with service.app_conn(tenant_id=tenant.id, person_id=kid_id) as conn:
        for actor, actor_person in (("guardian", parent_id), ("self", None)):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):  # claim a guardian acted / grant under 14
                conn.execute("""INSERT INTO consent_events (tenant_id, person_id, data_type, purpose, action, actor,
                                                            actor_person_id)
                                VALUES (%s, %s, 'steps', 'monitoring', 'grant', %s, %s)""",
                             (tenant.id, kid_id, actor, actor_person))


def test_from_14_the_person_decides_not_the_guardian(service, tenant, family):
    parent, kid, _ = family
    _, kid_id = ids(service, tenant, "parent", "kid")
    with service.admin_conn() as conn:  # two years pass
        conn.execute("UPDATE people SET birth_date = %s WHERE id = %s", (years_ago(14), kid_id))
    refused = parent.put("/v1/me/dependants/kid/consents/steps/monitoring", json=GRANT)
    assert refused.status_code == 403 and refused.json()["code"] == "dependant_decides"
    assert kid.put("/v1/me/consents/steps/monitoring", json=GRANT).status_code == 200
