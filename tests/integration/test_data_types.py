"""``GET /v1/data-types`` and a data type that exists only because the registry declares it (hrv_sdnn)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app.core.datatypes import DATA_TYPES


def test_every_role_reads_the_same_description_of_the_data_types(tenant):
    answers = [tenant.client(token).get("/v1/data-types") for token in (
        tenant.person_token("dt-person"), tenant.staff_token("dt-agent"),
        tenant.staff_token("dt-admin", role="tenant_admin"))]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    types = {t["name"]: t for t in answers[0].json()["data_types"]}
    assert list(types) == list(DATA_TYPES)
    hr = types["heart_rate"]
    assert hr["names"] == {"en": "heart rate", "zh-CN": "心率"} and hr["unit"] == "bpm"
    assert hr["features"] == [{"name": "overnight_rhr",
                               "labels": {"en": "Overnight resting heart rate", "zh-CN": "夜间静息心率"}}]
    assert hr["chart"] == {"labels": {"en": "heart rate", "zh-CN": "心率"}, "unit": "bpm", "bucket": "1h",
                           "total": False, "band": 3.0, "log": False}
    assert types["steps"]["chart"]["total"] and types["steps"]["chart"]["log"]
    assert types["spo2"]["critical"] and not types["steps"]["critical"]
    assert types["hrv_rmssd"]["fhir"]["system"] == "https://health-beidou.org/fhir/CodeSystem/data-type"
    assert types["hrv_sdnn"]["fhir"] == {"system": "http://loinc.org", "code": "80404-7",
                                         "display": "R-R interval.standard deviation (Heart rate variability)"}
    assert "mmol/L" in types["glucose"]["units"]


def test_without_a_token_the_data_types_are_not_answered(service):
    import httpx
    response = httpx.get(f"{service.base_url}/v1/data-types")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


def test_an_sdnn_reading_is_stored_with_consent_and_refused_out_of_range(service, tenant):
    client = tenant.client(tenant.person_token("dt-sdnn"))
    assert client.put("/v1/me/consents/hrv_sdnn").status_code == 200
    now = datetime.now(timezone.utc).replace(microsecond=0)
    batch = [{"metric": "hrv_sdnn", "time": (now - timedelta(minutes=2)).isoformat(), "value": 48, "unit": "ms"},
             {"metric": "hrv_sdnn", "time": (now - timedelta(minutes=1)).isoformat(), "value": 480}]
    results = client.post("/v1/readings", json={"readings": batch}).json()["results"]
    assert [(r["status"], r.get("reason")) for r in results] == [("accepted", None), ("rejected", "implausible_value")]
