"""FHIR R4 in: single Observations and batch Bundles against the running service."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from streaming.metrics import METRICS

AT = (datetime.now(timezone(timedelta(hours=8))) - timedelta(hours=2)).replace(microsecond=0)
LOINC = "http://loinc.org"


def obs(ident: str, code: str, value: float, unit: str, *, system: str = LOINC, updated: str | None = None,
        when: datetime = AT, **extra) -> dict:
    resource = {"resourceType": "Observation", "status": "final",
                "identifier": [{"system": "urn:example:hospital", "value": ident}],
                "code": {"coding": [{"system": system, "code": code}]},
                "effectiveDateTime": when.isoformat(),
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                **extra}
    if updated:
        resource["meta"] = {"lastUpdated": updated}
    return resource


def bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "batch",
            "entry": [{"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in resources]}


@pytest.fixture
def dee(tenant):
    client = tenant.client(tenant.person_token("dee"))
    for data_type in ("heart_rate", "blood_pressure", "glucose", "hrv_rmssd", "steps", "sleep", "spo2"):
        assert client.put(f"/v1/me/consents/{data_type}").status_code == 200
    return client


def stored(service, tenant) -> list[tuple]:
    with service.admin_conn() as conn:
        return conn.execute(
            """SELECT r.metric, r.value, r.value2, r.utc_offset_min, r.source FROM readings r
                 JOIN people p ON p.id = r.person_id WHERE p.tenant_id = %s ORDER BY r.metric, r.time""",
            (tenant.id,)).fetchall()


def test_a_batch_bundle_stores_each_entry_and_a_resend_is_a_no_op(service, tenant, dee):
    bp = obs("bp-1", "85354-9", 0, "mm[Hg]", component=[
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 122, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": {"value": 81, "code": "mm[Hg]"}}])
    del bp["valueQuantity"]
    entries = [
        obs("hr-1", "8867-4", 72, "/min"),
        bp,
        obs("glu-1", "15074-8", 5.5, "mmol/L"),
        obs("rmssd-1", "hrv_rmssd", 42, "ms", system="https://health-beidou.org/fhir/CodeSystem/data-type"),
        obs("sdnn-1", "80404-7", 50, "ms"),
        obs("temp-1", "8310-5", 37.1, "Cel"),               # no consent for body temperature
        obs("wt-1", "29463-7", 70, "kg"),                    # body weight: not a data type we store
        {"resourceType": "Observation", "status": "final", "code": "not a CodeableConcept"},
        {"resourceType": "Patient"},
    ]
    response = dee.post("/fhir/r4", json=bundle(*entries), headers={"content-type": "application/fhir+json"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["resourceType"] == "Bundle" and answer["type"] == "batch-response"
    codes = [e["response"]["status"] if "response" in e else e["status"] for e in answer["entry"]]
    assert codes[:4] == ["201 Created"] * 4 and codes[5] == "403 Forbidden"
    assert codes[6:] == ["422 Unprocessable Entity"] * 3
    sdnn = answer["entry"][4]["outcome"]["issue"][0]
    # SDNN is its own data type: refused while this service has no such type, then it needs its own consent.
    assert sdnn["details"]["text"] == ("no_consent" if "hrv_sdnn" in METRICS else "unsupported_type")
    rows = stored(service, tenant)
    assert [(m, round(v, 1), v2) for m, v, v2, *_ in rows] == [
        ("blood_pressure", 122, 81), ("glucose", 99.1, None), ("heart_rate", 72, None), ("hrv_rmssd", 42, None)]
    assert {(off, src) for *_, off, src in rows} == {(480, "fhir:urn:example:hospital")}
    again = dee.post("/fhir/r4", json=bundle(*entries[:4])).json()
    assert [e["status"] for e in again["entry"]] == ["200 OK"] * 4
    assert [e["outcome"]["issue"][0]["details"]["text"] for e in again["entry"]] == ["unchanged"] * 4
    assert len(stored(service, tenant)) == 4


def test_a_single_observation_versions_by_last_updated(service, tenant, dee):
    first = dee.post("/fhir/r4/Observation", json=obs("hr-9", "8867-4", 70, "/min", updated="2026-11-01T00:00:00Z"))
    assert first.status_code == 201 and first.headers["content-type"].startswith("application/fhir+json")
    newer = dee.post("/fhir/r4/Observation", json=obs("hr-9", "8867-4", 75, "/min", updated="2026-11-02T00:00:00Z"))
    assert newer.status_code == 200 and newer.json()["issue"][0]["details"]["text"] == "replaced"
    older = dee.post("/fhir/r4/Observation", json=obs("hr-9", "8867-4", 90, "/min", updated="2026-10-01T00:00:00Z"))
    assert older.status_code == 409
    assert [v for _, v, *_ in stored(service, tenant)] == [75]
    no_id = obs("x", "8867-4", 70, "/min")
    del no_id["identifier"]
    refused = dee.post("/fhir/r4/Observation", json=no_id)
    assert refused.status_code == 422 and "identifier" in refused.json()["issue"][0]["diagnostics"]
    assert dee.post("/fhir/r4", json={"resourceType": "Bundle", "type": "transaction"}).status_code == 422
    assert dee.post("/fhir/r4/Observation", content=b"{", headers={"content-type": "application/json"}
                    ).status_code == 422


def test_open_mhealth_data_points_in_value_attachment(service, tenant, dee):
    point = {"header": {"schema_id": {"namespace": "omh", "name": "step-count", "version": "2.0"}},
             "body": {"step_count": {"value": 3400, "unit": "steps"}, "effective_time_frame": {"time_interval": {
                 "start_date_time": (AT - timedelta(hours=1)).isoformat(), "end_date_time": AT.isoformat()}}}}
    resource = {"resourceType": "Observation", "status": "final",
                "identifier": [{"system": "urn:example:jhe", "value": "omh-1"}],
                "code": {"coding": [{"system": "https://w3id.org/openmhealth", "code": "omh:step-count:2.0"}]},
                "valueAttachment": {"contentType": "application/json",
                                    "data": base64.b64encode(json.dumps(point).encode()).decode()}}
    assert dee.post("/fhir/r4/Observation", json=resource).status_code == 201
    assert [(m, v) for m, v, *_ in stored(service, tenant)] == [("steps", 3400)]
