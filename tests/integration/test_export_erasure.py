"""Export (JSON and FHIR, streamed) and erasure, checked against what the database really holds."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from consent.catalog import DATA_TYPES, PURPOSES
from tests.conftest import JWT_SECRET
from tests.support import start_service

NOW = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0)
BULK = 20_000  # minute readings written straight into the hypertable: a couple of weeks, many chunks
KEPT = {"consent_events", "consent_state", "audit_log", "people"}  # what the law keeps, restricted
LOINC = {"heart_rate": "8867-4", "resting_heart_rate": "40443-4", "hrv_rmssd": "hrv_rmssd", "steps": "55423-8",
         "sleep": "93832-4", "spo2": "59408-5", "blood_pressure": "85354-9", "glucose": "2339-0",
         "body_temperature": "8310-5", "respiratory_rate": "9279-1"}


def at(minutes_ago: int) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


ONE_OF_EACH = [
    {"metric": "heart_rate", "time": at(1), "value": 72, "source": "watch"},
    {"metric": "resting_heart_rate", "time": at(2), "value": 58, "source": "watch"},
    {"metric": "hrv_rmssd", "time": at(3), "value": 41, "source": "watch"},
    {"metric": "steps", "time": at(4), "value": 230, "source": "phone"},
    {"metric": "sleep", "time": at(600), "end": at(120), "stages": {"light": 250, "deep": 80, "rem": 70, "awake": 30},
     "source": "watch"},
    {"metric": "spo2", "time": at(5), "value": 97, "source": "watch"},
    {"metric": "blood_pressure", "time": at(6), "systolic": 121, "diastolic": 79, "source": "cuff"},
    {"metric": "glucose", "time": at(7), "value": 5.4, "unit": "mmol/L", "source": "cgm"},
    {"metric": "body_temperature", "time": at(8), "value": 36.7, "source": "thermometer"},
    {"metric": "respiratory_rate", "time": at(9), "value": 15, "source": "watch"},
]


def person_id(service, tenant, external: str):
    with service.admin_conn() as conn:
        return conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                            (tenant.id, external)).fetchone()[0]


def person_with_data(service, tenant, external: str):
    client = tenant.client(tenant.person_token(external))
    for data_type in LOINC:
        assert client.put(f"/v1/me/consents/{data_type}").status_code == 200
    client.put("/v1/me/consents/heart_rate/outreach", json={"notice_version": "v1"})
    assert client.post("/v1/readings", json={"readings": ONE_OF_EACH}).json()["accepted"] == len(ONE_OF_EACH)
    pid = person_id(service, tenant, external)
    with service.admin_conn() as conn:
        conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        SELECT now() - interval '1 day' - make_interval(mins => i), %s, %s, 'heart_rate',
                               60 + i %% 30, 'watch-bulk', 480 FROM generate_series(1, %s) AS i""",
                     (tenant.id, pid, BULK))
    return client, pid


def count(service, table: str, column: str, value) -> int:
    with service.admin_conn() as conn:
        return conn.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}" = %s', (value,)).fetchone()[0]


@pytest.fixture
def sam(service, tenant):
    return person_with_data(service, tenant, "sam")


def test_the_json_export_is_streamed_and_holds_exactly_what_is_stored(service, tenant, sam):
    client, pid = sam
    with client.stream("GET", "/v1/me/export") as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers and response.headers["transfer-encoding"] == "chunked"
        chunks = list(response.iter_raw())
    assert len(chunks) > 10
    doc = json.loads(b"".join(chunks))
    assert doc["format"] == "health-beidou.export" and doc["person"]["external_id"] == "sam"
    for table in ("readings", "sources", "consent_events", "consent_state"):
        stored = count(service, table, "person_id", pid)
        assert len(doc["data"][table]) == doc["counts"][table] == stored, table
        assert {row["person_id"] for row in doc["data"][table]} == {str(pid)}
    assert doc["counts"]["readings"] == BULK + len(ONE_OF_EACH)
    assert len(doc["consents"]) == len(DATA_TYPES) * len(PURPOSES) and sum(c["granted"] for c in doc["consents"]) == 11
    bp = next(r for r in doc["data"]["readings"] if r["metric"] == "blood_pressure")
    assert (bp["value"], bp["value2"]) == (121, 79)


def test_the_fhir_export_has_one_loinc_coded_observation_per_stored_reading(service, tenant, sam):
    client, pid = sam
    response = client.get("/v1/me/export", params={"format": "fhir"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    by_type: dict[str, list[dict]] = {}
    for item in bundle["entry"]:
        by_type.setdefault(item["resource"]["resourceType"], []).append(item["resource"])
        assert item["fullUrl"] == f"urn:uuid:{item['resource']['id']}"
    observations = by_type["Observation"]
    assert len(observations) == count(service, "readings", "person_id", pid) == BULK + len(ONE_OF_EACH)
    assert len({o["id"] for o in observations}) == len(observations)
    assert [p["id"] for p in by_type["Patient"]] == [str(pid)]
    assert len(by_type["Consent"]) == count(service, "consent_state", "person_id", pid)
    assert len(by_type["Device"]) == count(service, "sources", "person_id", pid)
    assert {o["subject"]["reference"] for o in observations} == {f"urn:uuid:{pid}"}
    first = {}
    for o in observations:
        first.setdefault(o["code"]["coding"][0]["code"], o)
    assert set(first) == set(LOINC.values())
    bp = first["85354-9"]
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"], c["valueQuantity"]["code"])
            for c in bp["component"]] == [("8480-6", 121, "mm[Hg]"), ("8462-4", 79, "mm[Hg]")]
    hr = first["8867-4"]
    assert hr["valueQuantity"]["system"] == "http://unitsofmeasure.org" and hr["valueQuantity"]["code"] == "/min"
    assert first["2339-0"]["valueQuantity"]["code"] == "mg/dL" and first["2339-0"]["valueQuantity"]["value"] > 90
    assert first["8310-5"]["valueQuantity"]["code"] == "Cel"
    assert set(first["93832-4"]["effectivePeriod"]) == {"start", "end"}
    assert hr["effectiveDateTime"].endswith("+08:00")  # the phone's own offset


def person_columns(conn) -> list[tuple[str, str]]:
    """Every (table, column) in public that names a person: person_id columns and foreign keys to people."""
    rows = conn.execute(
        """SELECT c.table_name, c.column_name FROM information_schema.columns c
             JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = 'public' AND c.column_name = 'person_id' AND t.table_type = 'BASE TABLE'
           UNION
           SELECT cl.relname, a.attname FROM pg_constraint k JOIN pg_class cl ON cl.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = cl.relnamespace
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey)
            WHERE k.contype = 'f' AND k.confrelid = 'public.people'::regclass AND n.nspname = 'public'""").fetchall()
    return sorted(set(rows) | {("people", "id"), ("audit_log", "subject_person_id")})


def leftovers(service, pid) -> dict[str, int]:
    with service.admin_conn() as conn:
        found = {}
        for table, column in person_columns(conn):
            n = conn.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}" = %s', (pid,)).fetchone()[0]
            if n:
                found[f"{table}.{column}"] = n
        return found


def chunk_rows(service, pid) -> tuple[int, int]:
    """(rows of this person, rows of anyone) read from every hot readings chunk directly, as the admin."""
    with service.admin_conn() as conn:
        chunks = conn.execute("""SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks
                                  WHERE hypertable_name = 'readings_hot'""").fetchall()
        mine = total = 0
        for (chunk,) in chunks:
            assert chunk.startswith("beidou_chunks.")
            mine += conn.execute(f"SELECT count(*) FROM {chunk} WHERE person_no = "
                                 "(SELECT person_no FROM people WHERE id = %s)", (pid,)).fetchone()[0]
            total += conn.execute(f"SELECT count(*) FROM {chunk}").fetchone()[0]
        return mine, total


def test_erasure_leaves_nothing_of_the_person_in_any_table_but_what_the_law_keeps(service, tenant, sam):
    client, pid = sam
    tom, tom_id = person_with_data(service, tenant, "tom")
    admin = tenant.client(tenant.staff_token("admin-1", role="tenant_admin"))
    assert admin.post("/v1/admin/guardianships", json={"guardian": "sam", "minor": "sams-kid",
                                                       "minor_birth_date": "2017-06-01"}).status_code == 201
    assert chunk_rows(service, pid)[0] == BULK + len(ONE_OF_EACH)
    events_before = count(service, "consent_events", "person_id", pid)
    sources_before = count(service, "sources", "person_id", pid)

    response = client.delete("/v1/me")
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["erased"]["readings"] == BULK + len(ONE_OF_EACH)
    # five sources sent with ONE_OF_EACH, and the bulk rows' 'watch-bulk' (a stored reading's source is noted)
    assert receipt["erased"]["sources"] == sources_before == 6 and receipt["erased"]["guardianships_as_guardian"] == 1
    assert receipt["consents_withdrawn"] == 11 and receipt["receipt_id"].startswith("er-")
    assert "consent_events" in receipt["kept"] and receipt["requested_by"] == "person:sam"

    remaining = leftovers(service, pid)
    assert set(remaining) <= {f"{t}.{c}" for t, c in person_columns(service.admin_conn()) if t in KEPT}, remaining
    assert remaining["people.id"] == 1 and remaining["consent_events.person_id"] == events_before + 11
    mine, total = chunk_rows(service, pid)
    assert mine == 0 and total >= BULK + len(ONE_OF_EACH)  # tom's rows are still in the same chunks
    with service.admin_conn() as conn:  # sam's diastolic and sleep stages went too, tom's stay
        extras = conn.execute("""SELECT count(*) FILTER (WHERE p.id = %s), count(*) FILTER (WHERE p.id = %s)
                                   FROM readings_hot_extra x JOIN people p ON p.person_no = x.person_no""",
                              (pid, tom_id)).fetchone()
    assert extras == (0, 2)
    with service.admin_conn() as conn:
        assert conn.execute("SELECT count(*) FROM readings WHERE person_id = %s", (pid,)).fetchone()[0] == 0
        tomb = conn.execute("SELECT external_id, erased_at IS NOT NULL, birth_date, time_zone FROM people "
                            "WHERE id = %s", (pid,)).fetchone()
        audit = conn.execute("SELECT actor_kind, actor_id, detail->>'receipt_id' FROM audit_log "
                             "WHERE subject_person_id = %s AND action = 'person.erased'", (pid,)).fetchall()
    assert tomb == ("sam", True, None, "UTC")
    assert audit == [("person", "sam", receipt["receipt_id"])]
    assert count(service, "readings", "person_id", tom_id) == BULK + len(ONE_OF_EACH)
    assert tom.get("/v1/me/consents").json()["consents"][0]["granted"] is True


def test_an_erased_person_is_a_tombstone_that_nothing_acts_on(service, tenant, sam):
    client, pid = sam
    assert client.delete("/v1/me").status_code == 200
    for method, path in (("get", "/v1/me"), ("get", "/v1/me/consents"), ("get", "/v1/me/consents/history"),
                         ("get", "/v1/me/export"), ("delete", "/v1/me"), ("patch", "/v1/me")):
        response = client.request(method.upper(), path, json={} if method == "patch" else None)
        assert (response.status_code, response.json()["code"]) == (410, "erased"), path
    refused = client.put("/v1/me/consents/heart_rate/monitoring", json={"notice_version": "v1"})
    assert refused.status_code == 410
    result = client.post("/v1/readings", json={"readings": [ONE_OF_EACH[0]]}).json()["results"][0]
    assert result["reason"] == "no_consent"
    with service.admin_conn() as conn:  # the same external id did not come back as someone new
        assert conn.execute("SELECT count(*) FROM people WHERE tenant_id = %s AND external_id = 'sam'",
                            (tenant.id,)).fetchone()[0] == 1
    with service.app_conn(tenant_id=tenant.id, person_id=pid) as conn:  # any process, any code path: refused
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="erased"):
            conn.execute("""INSERT INTO consent_events (tenant_id, person_id, data_type, purpose, action)
                            VALUES (%s, %s, 'heart_rate', 'monitoring', 'grant')""", (tenant.id, pid))


def test_a_tenant_admin_can_erase_a_policyholder_with_a_reason(service, tenant, sam):
    _, pid = sam
    body = {"reason": "policy ended; erasure requested in writing"}
    assert tenant.client(tenant.staff_token("nurse", role="care_agent")).post(
        "/v1/admin/people/sam/erasure", json=body).status_code == 403
    admin = tenant.client(tenant.staff_token("admin-2", role="tenant_admin"))
    assert admin.post("/v1/admin/people/nobody/erasure", json=body).status_code == 404
    assert admin.post("/v1/admin/people/sam/erasure", json={}).status_code == 422
    response = admin.post("/v1/admin/people/sam/erasure", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["requested_by"] == "staff:admin-2" and response.json()["reason"] == body["reason"]
    assert set(leftovers(service, pid)) <= {"people.id", "consent_events.person_id", "consent_state.person_id",
                                            "audit_log.subject_person_id"}
    with service.admin_conn() as conn:
        assert conn.execute("SELECT actor_kind, actor_id, detail->>'reason' FROM audit_log WHERE action = "
                            "'person.erased' AND subject_person_id = %s", (pid,)).fetchone() == (
            "staff", "admin-2", body["reason"])
    assert admin.post("/v1/admin/people/sam/erasure", json=body).status_code == 410


@pytest.fixture
def own_service(fresh_db, tmp_path):
    svc = start_service(fresh_db, JWT_SECRET, tmp_path)
    yield svc
    svc.stop()


def test_erasure_refuses_to_run_when_a_table_with_peoples_data_is_not_registered(own_service):
    tenant = own_service.new_tenant()
    client, pid = person_with_data(own_service, tenant, "uma")
    with own_service.admin_conn() as conn:
        conn.execute("CREATE TABLE shadow_copy (person_id uuid, note text)")
        conn.execute("CREATE TABLE shadow_numbers (person_no integer, value real)")  # keyed like the hot tables
        conn.execute("GRANT SELECT, DELETE ON shadow_copy, shadow_numbers TO beidou_app")
    response = client.delete("/v1/me")
    assert response.status_code == 500 and response.json()["code"] == "erasure_blocked"
    assert "shadow_copy.person_id" in response.json()["detail"]
    assert "shadow_numbers.person_no" in response.json()["detail"]
    assert "readings_hot" not in response.json()["detail"]
    assert count(own_service, "readings", "person_id", pid) == BULK + len(ONE_OF_EACH)
    assert client.get("/v1/me").status_code == 200
