"""HTTP batch ingest, driven from outside against the running service."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

NOW = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0)


def hr(minutes_ago: int, bpm: float = 70, source: str = "watch-1", **extra) -> dict:
    return {"metric": "heart_rate", "time": (NOW - timedelta(minutes=minutes_ago)).isoformat(), "value": bpm,
            "unit": "bpm", "source": source, **extra}


@pytest.fixture
def alice(tenant):
    client = tenant.client(tenant.person_token("alice"))
    for data_type in ("heart_rate", "glucose", "body_temperature", "blood_pressure", "sleep", "spo2"):
        assert client.put(f"/v1/me/consents/{data_type}").status_code == 200
    return client


def stored(service, tenant, person_external: str) -> list[tuple]:
    with service.admin_conn() as conn:
        return conn.execute(
            """SELECT r.metric, r.time, r.value, r.value2, r.source, r.utc_offset_min FROM readings r
                 JOIN people p ON p.id = r.person_id WHERE p.tenant_id = %s AND p.external_id = %s
                ORDER BY r.time, r.metric""", (tenant.id, person_external)).fetchall()


def test_a_mixed_batch_stores_the_good_items_and_explains_each_rejection(service, tenant, alice):
    batch = [hr(3, 72), hr(2, 400), {"metric": "heart_rate", "time": "2026-01-01T08:00:00", "value": 70},
             {"metric": "weight", "time": NOW.isoformat(), "value": 70}, hr(1, 75),
             {"metric": "spo2", "time": NOW.isoformat(), "value": 130},
             {"metric": "heart_rate", "time": (NOW + timedelta(days=2)).isoformat(), "value": 70},
             {"metric": "heart_rate", "time": NOW.isoformat(), "value": "fast"}]
    response = alice.post("/v1/readings", json={"readings": batch})
    assert response.status_code == 200
    body = response.json()
    assert [r["index"] for r in body["results"]] == list(range(len(batch)))
    assert [r["status"] for r in body["results"]] == [
        "accepted", "rejected", "rejected", "rejected", "accepted", "rejected", "rejected", "rejected"]
    reasons = [r.get("reason") for r in body["results"]]
    assert reasons[1] == "implausible_value" and "400" in body["results"][1]["detail"]
    assert reasons[2] == "time_without_offset"
    assert reasons[3] == "unknown_metric"
    assert reasons[5] == "implausible_value"
    assert reasons[6] == "time_in_future"
    assert reasons[7] == "invalid" and "$.value" in body["results"][7]["detail"]
    assert (body["accepted"], body["rejected"]) == (2, 6)
    rows = stored(service, tenant, "alice")
    assert [(m, v) for m, _, v, *_ in rows] == [("heart_rate", 72.0), ("heart_rate", 75.0)]


def test_a_retried_batch_is_never_stored_twice(service, tenant, alice):
    batch = {"readings": [hr(10, 61), hr(9, 62), hr(8, 63)]}
    first = alice.post("/v1/readings", json=batch).json()
    again = alice.post("/v1/readings", json=batch).json()
    assert first["accepted"] == 3
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
    # A batch that overlaps the earlier one stores only what is new; a repeat inside one batch is a duplicate.
    overlap = alice.post("/v1/readings", json={"readings": [hr(9, 62), hr(7, 64), hr(7, 64)]}).json()
    assert [r["status"] for r in overlap["results"]] == ["duplicate", "accepted", "duplicate"]
    assert len(stored(service, tenant, "alice")) == 4


def test_the_same_time_from_another_source_is_a_different_reading(service, tenant, alice):
    result = alice.post("/v1/readings", json={"readings": [hr(5, 70, "watch-1"), hr(5, 71, "ring")]}).json()
    assert result["accepted"] == 2


def test_units_are_converted_to_one_canonical_unit_and_the_phone_offset_is_kept(service, tenant, alice):
    t = NOW.isoformat()
    batch = [
        {"metric": "glucose", "time": t, "value": 5.5, "unit": "mmol/L", "source": "cgm"},
        {"metric": "body_temperature", "time": t, "value": 98.6, "unit": "°F", "source": "thermo"},
        {"metric": "blood_pressure", "time": t, "systolic": 16, "diastolic": 10.5, "unit": "kPa", "source": "cuff"},
        {"metric": "spo2", "time": t, "value": 0.97, "unit": "ratio", "source": "ring"},
        {"metric": "sleep", "time": (NOW - timedelta(hours=8)).isoformat(), "end": (NOW - timedelta(minutes=30)).isoformat(),
         "stages": {"light": 250, "deep": 80, "rem": 70, "awake": 50}, "source": "watch-1"},
    ]
    result = alice.post("/v1/readings", json={"readings": batch}).json()
    assert result["accepted"] == 5, result
    rows = {m: (v, v2, off) for m, _, v, v2, _, off in stored(service, tenant, "alice")}
    assert rows["glucose"][0] == pytest.approx(99.1, abs=0.1)
    assert rows["body_temperature"][0] == pytest.approx(37.0, abs=0.01)
    assert rows["blood_pressure"][:2] == (pytest.approx(120.0, abs=0.1), pytest.approx(78.8, abs=0.1))
    assert rows["spo2"][0] == pytest.approx(97.0)
    assert rows["sleep"][0] == 400  # minutes asleep: every stage but "awake"
    assert {off for _, _, off in rows.values()} == {480}


def test_an_unknown_unit_is_rejected_with_the_accepted_ones(alice):
    result = alice.post("/v1/readings", json={"readings": [
        {"metric": "glucose", "time": NOW.isoformat(), "value": 5, "unit": "g/L"}]}).json()
    assert result["results"][0]["reason"] == "unknown_unit"
    assert "mmol/L" in result["results"][0]["detail"]


def test_fields_that_try_to_choose_the_person_or_tenant_are_refused(service, tenant, alice):
    other = service.new_tenant()
    result = alice.post("/v1/readings", json={"readings": [hr(1, person="bob", tenant_id=str(other.id))]}).json()
    assert result["results"][0]["status"] == "rejected"
    assert "person" in result["results"][0]["detail"]
    assert stored(service, tenant, "alice") == []


def test_without_consent_readings_are_rejected_and_not_stored(service, tenant):
    bob = tenant.client(tenant.person_token("bob"))
    result = bob.post("/v1/readings", json={"readings": [hr(1)]}).json()
    assert result["results"][0]["reason"] == "no_consent"
    assert stored(service, tenant, "bob") == []


def test_withdrawal_takes_effect_for_the_very_next_batch(service, tenant, alice):
    assert alice.post("/v1/readings", json={"readings": [hr(2)]}).json()["accepted"] == 1
    assert alice.delete("/v1/me/consents/heart_rate").json()["granted"] is False
    after = alice.post("/v1/readings", json={"readings": [hr(1)]}).json()
    assert after["results"][0]["reason"] == "no_consent"
    # Other data types keep their consent.
    assert alice.post("/v1/readings", json={"readings": [
        {"metric": "spo2", "time": NOW.isoformat(), "value": 97}]}).json()["accepted"] == 1
    assert len(stored(service, tenant, "alice")) == 2


def test_malformed_json_gets_422_with_the_location_of_the_fault(alice):
    response = alice.post("/v1/readings", content=b'{"readings": [{"metric": "heart_rate",}]}',
                          headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "byte" in response.json()["detail"]
    wrong_shape = alice.post("/v1/readings", json={"readings": {"metric": "heart_rate"}})
    assert wrong_shape.status_code == 422 and "$.readings" in wrong_shape.json()["detail"]


def test_oversized_bodies_and_batches_get_413_and_store_nothing(service, tenant, alice):
    big = alice.post("/v1/readings", content=b'{"readings": [' + b" " * 2_000_000 + b"]}",
                     headers={"content-type": "application/json"})
    assert big.status_code == 413
    many = alice.post("/v1/readings", json={"readings": [hr(i % 1000, 70, f"s{i}") for i in range(5001)]})
    assert many.status_code == 413 and "5000" in many.json()["detail"]
    assert stored(service, tenant, "alice") == []


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic abc"])
def test_requests_without_a_valid_token_get_401(service, header):
    import httpx
    headers = {"Authorization": header} if header else {}
    response = httpx.post(service.base_url + "/v1/readings", json={"readings": []}, headers=headers)
    assert response.status_code == 401


def test_a_token_for_an_unknown_tenant_is_refused(service):
    from tests.support import Tenant
    import uuid
    ghost = Tenant(uuid.uuid4(), "ghost", service)
    response = ghost.client(ghost.person_token("eve")).post("/v1/readings", json={"readings": [hr(1)]})
    assert response.status_code == 401 and "unknown tenant" in response.json()["detail"]


def test_an_expired_token_is_refused(tenant):
    response = tenant.client(tenant.person_token("alice", ttl_s=-120)).get("/v1/me/consents")
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_staff_tokens_cannot_send_readings(tenant):
    response = tenant.client(tenant.staff_token("nurse-1")).post("/v1/readings", json={"readings": [hr(1)]})
    assert response.status_code == 403


def test_health_readiness_and_metrics(service, alice):
    import httpx
    alice.post("/v1/readings", json={"readings": [hr(1), hr(2, 999)]})
    assert httpx.get(service.base_url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(service.base_url + "/readyz").status_code == 200
    text = httpx.get(service.base_url + "/metrics").text
    assert 'beidou_readings_total{reason="implausible_value",status="rejected"}' in text
    assert "beidou_ingest_commit_seconds_bucket" in text


def test_the_openapi_document_describes_the_ingest_contract(service):
    import httpx
    doc = httpx.get(service.base_url + "/openapi.json").json()
    post = doc["paths"]["/v1/readings"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReadingBatch")
    assert {"413", "422", "503"} <= set(post["responses"])
    assert "ReadingIn" in doc["components"]["schemas"]


def test_an_oversized_body_is_refused_before_anything_reads_it_even_without_a_token(service):
    import httpx
    for path in ("/v1/me/consents/heart_rate/monitoring", "/v1/care/escalation-policy", "/v1/readings"):
        response = httpx.put(service.base_url + path, content=b"x" * 3_000_000,
                             headers={"content-type": "application/json"})
        assert response.status_code == 413, path

    def chunks():
        for _ in range(40):
            yield b"y" * 100_000
    chunked = httpx.post(service.base_url + "/v1/me/devices", content=chunks(),
                         headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert httpx.get(service.base_url + "/healthz").status_code == 200


def test_a_decimal_value_reads_back_exactly_as_sent_in_every_view(service, tenant, alice):
    """Hot values are stored as float4: 36.6 must still be 36.6 (not 36.599998...) wherever it is shown."""
    sent = [{"metric": "body_temperature", "time": (NOW - timedelta(minutes=m)).isoformat(), "value": v,
             "source": "thermometer"} for m, v in ((30, 36.6), (20, 37.3), (10, 38.1))]
    sent.append({"metric": "blood_pressure", "time": NOW.isoformat(), "systolic": 121.7, "diastolic": 79.3})
    assert alice.post("/v1/readings", json={"readings": sent}).json()["accepted"] == 4
    values = {36.6, 37.3, 38.1}

    mine = alice.get("/v1/me/readings", params={"metric": "body_temperature"}).json()["readings"]
    assert {r["value"] for r in mine} == values
    exported = alice.get("/v1/me/export").json()["data"]["readings"]
    assert {r["value"] for r in exported if r["metric"] == "body_temperature"} == values
    assert [(r["value"], r["value2"]) for r in exported if r["metric"] == "blood_pressure"] == [(121.7, 79.3)]
    fhir = alice.get("/v1/me/export", params={"format": "fhir"}).json()["entry"]
    temperatures = [e["resource"]["valueQuantity"]["value"] for e in fhir
                    if e["resource"]["resourceType"] == "Observation" and "valueQuantity" in e["resource"]]
    assert set(temperatures) == values
    supervisor = tenant.client(tenant.staff_token("sup-decimal", role="care_supervisor"))
    chart = supervisor.get("/v1/care/people/alice/readings",
                           params={"metric": "body_temperature", "bucket": "1m", "reason": "checking a fever call",
                                   "from": (NOW - timedelta(hours=1)).isoformat(),
                                   "to": (NOW + timedelta(minutes=1)).isoformat()})
    assert chart.status_code == 200, chart.text
    assert {(p["avg"], p["min"], p["max"]) for p in chart.json()["points"]} == {(v, v, v) for v in values}


def test_new_sources_sent_at_once_for_one_person_are_all_stored(service, tenant, alice):
    """Sources are numbered per person as they first appear; concurrent first readings never collide."""
    from concurrent.futures import ThreadPoolExecutor

    def send(i: int) -> dict:
        return alice.post("/v1/readings", json={"readings": [hr(40 + i, 70, f"band-{i}"), hr(40 + i, 71, "watch-1")]}
                          ).json()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    assert [a["accepted"] for a in answers] == [2] * 8
    rows = stored(service, tenant, "alice")
    assert {s for *_, s, _ in rows} >= {f"band-{i}" for i in range(8)} | {"watch-1"}
    with service.admin_conn() as conn:
        numbers = conn.execute("""SELECT s.source_no FROM sources s JOIN people p ON p.id = s.person_id
                                   WHERE p.tenant_id = %s AND p.external_id = 'alice'""", (tenant.id,)).fetchall()
    assert sorted(n for (n,) in numbers) == list(range(1, len(numbers) + 1))


def test_a_person_past_the_sources_limit_gets_a_clear_answer_and_others_are_unaffected(service, tenant, alice):
    bob = tenant.client(tenant.person_token("bob-sources"))
    assert bob.put("/v1/me/consents/heart_rate").status_code == 200
    assert alice.post("/v1/readings", json={"readings": [hr(50)]}).json()["accepted"] == 1
    with service.admin_conn() as conn:  # as if alice had sent from 32,767 sources already
        conn.execute("""INSERT INTO sources (tenant_id, person_id, source, source_no)
                        SELECT tenant_id, id, 'band-32767', 32767 FROM people
                         WHERE tenant_id = %s AND external_id = 'alice'""", (tenant.id,))
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        over = pool.submit(alice.post, "/v1/readings", json={"readings": [hr(49, 70, "one-more-band")]})
        fine = pool.submit(bob.post, "/v1/readings", json={"readings": [hr(49)]})
        over, fine = over.result(), fine.result()
    assert over.status_code == 422 and over.json()["code"] == "too_many_sources", over.text
    assert fine.status_code == 200 and fine.json()["accepted"] == 1
    assert alice.post("/v1/readings", json={"readings": [hr(48)]}).json()["accepted"] == 1  # a known source
