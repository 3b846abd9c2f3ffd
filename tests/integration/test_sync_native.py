"""Native sync (Health Connect, HealthKit, Huawei) against the running service: records that change and vanish."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from streaming.metrics import METRICS

START = (datetime.now(timezone.utc) - timedelta(hours=3)).replace(microsecond=0, second=0)
NS = 10**9


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def hc_heart_rate(record_id: str, n: int, modified: datetime, app: str = "com.example.watch", bpm: float = 70,
                  start: datetime = START) -> dict:
    return {"upsertionChange": {"record": {
        "recordType": "HeartRateRecord",
        "metadata": {"id": record_id, "dataOrigin": {"packageName": app}, "lastModifiedTime": iso(modified),
                     "clientRecordVersion": 0, "device": {"type": 2}, "someFutureField": True},
        "startTime": iso(start), "startZoneOffset": "+08:00",
        "endTime": iso(start + timedelta(seconds=10 * (n - 1))), "endZoneOffset": "+08:00",
        "samples": [{"time": iso(start + timedelta(seconds=10 * i)), "beatsPerMinute": bpm + i % 5}
                    for i in range(n)]}}}


def hk_heart_rate(uuid: str, n: int, version: int, bundle: str = "com.example.watch") -> dict:
    return {"uuid": "sample-" + uuid + f"-{version}", "sampleType": "HKQuantityTypeIdentifierHeartRate",
            "startDate": iso(START), "endDate": iso(START + timedelta(seconds=10 * (n - 1))), "unit": "count/min",
            "sourceRevision": {"source": {"bundleIdentifier": bundle, "name": "Watch"}, "version": "11.0"},
            "metadata": {"HKMetadataKeySyncIdentifier": uuid, "HKMetadataKeySyncVersion": version},
            "series": [{"quantity": 70 + i % 5, "startDate": iso(START + timedelta(seconds=10 * i))}
                       for i in range(n)]}


def huawei_heart_rate(n: int, bpm: float = 70) -> dict:
    start = int(START.timestamp()) * NS
    return {"dataCollectorId": "com.huawei.health:hr:gt4", "dataType": "DT_INSTANTANEOUS_HEART_RATE",
            "startTime": start, "endTime": start + 600 * NS, "timeZone": "+0800",
            "samplePoints": [{"startTime": start + 10 * i * NS, "endTime": start + 10 * i * NS,
                              "fieldValues": {"bpm": bpm + i % 5}} for i in range(n)]}


@pytest.fixture
def ann(tenant):
    client = tenant.client(tenant.person_token("ann"))
    for data_type in ("heart_rate", "steps", "sleep", "spo2", "blood_pressure", "glucose", "body_temperature",
                      "resting_heart_rate", "respiratory_rate", "hrv_rmssd"):
        assert client.put(f"/v1/me/consents/{data_type}").status_code == 200
    return client


def visible(tenant, client, person: str = "ann") -> tuple[int, int, int]:
    """Heart-rate readings as the person, the care chart and the export see them."""
    mine = client.get("/v1/me/readings", params={"metric": "heart_rate", "from": iso(START - timedelta(days=1))})
    care = tenant.client(tenant.staff_token("lead", "care_supervisor")).get(
        f"/v1/care/people/{person}/readings",
        params={"metric": "heart_rate", "bucket": "1m", "from": iso(START - timedelta(hours=1)),
                "to": iso(START + timedelta(hours=2)), "why": "test"})
    export = client.get("/v1/me/export").json()
    assert mine.status_code == 200 and care.status_code == 200, (mine.text, care.text)
    return (len(mine.json()["readings"]), sum(p["count"] for p in care.json()["points"]),
            sum(1 for r in export["data"]["readings"] if r["metric"] == "heart_rate"))


def statuses(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["status"] for r in response.json()["results"]]


def test_health_connect_record_lifecycle(tenant, ann):
    t0 = START + timedelta(minutes=30)
    post = lambda changes: ann.post("/v1/sync/health-connect", json={"changes": changes})  # noqa: E731
    first = post([hc_heart_rate("hr-1", 60, t0)])
    assert statuses(first) == ["inserted"] and first.json()["results"][0]["readings"] == 60
    assert visible(tenant, ann) == (60, 60, 60)
    assert statuses(post([hc_heart_rate("hr-1", 60, t0)])) == ["unchanged"]
    assert statuses(post([hc_heart_rate("hr-1", 30, t0 + timedelta(minutes=5))])) == ["replaced"]
    assert visible(tenant, ann) == (30, 30, 30)
    # An older version arriving late changes nothing.
    assert statuses(post([hc_heart_rate("hr-1", 45, t0 + timedelta(minutes=1))])) == ["stale"]
    assert visible(tenant, ann)[0] == 30
    assert statuses(post([{"deletionChange": {"recordId": "hr-1"}}, {"deletionChange": {"recordId": "nope"}}])) \
        == ["deleted", "not_found"]
    assert visible(tenant, ann) == (0, 0, 0)
    # The tombstone stays (in the export's records) and a replay of the deleted version does not bring it back.
    export = ann.get("/v1/me/export").json()
    assert [(r["native_id"], r["state"]) for r in export["data"]["records"]] == [("hr-1", "deleted")]
    assert statuses(post([hc_heart_rate("hr-1", 30, t0 + timedelta(minutes=5))])) == ["stale"]
    assert visible(tenant, ann)[0] == 0


def test_health_connect_types_units_offsets_and_rejections(service, tenant, ann):
    t = START + timedelta(hours=1)
    meta = lambda i: {"id": f"r-{i}", "dataOrigin": {"packageName": "com.example.app"},  # noqa: E731
                      "lastModifiedTime": iso(t)}
    records = [
        {"recordType": "BloodPressureRecord", "metadata": meta(1), "time": iso(t), "zoneOffset": "+08:00",
         "systolic": {"inMillimetersOfMercury": 121}, "diastolic": {"inMillimetersOfMercury": 79}},
        {"recordType": "BodyTemperatureRecord", "metadata": meta(2), "time": iso(t), "zoneOffset": None,
         "temperature": {"inFahrenheit": 98.6}},
        {"recordType": "BloodGlucoseRecord", "metadata": meta(3), "time": iso(t), "zoneOffset": "+08:00",
         "level": {"inMillimolesPerLiter": 5.5}},
        {"recordType": "OxygenSaturationRecord", "metadata": meta(4), "time": iso(t), "zoneOffset": "+08:00",
         "percentage": {"value": 97}},
        {"recordType": "StepsRecord", "metadata": meta(5), "startTime": iso(t - timedelta(minutes=15)),
         "endTime": iso(t), "startZoneOffset": "+08:00", "endZoneOffset": "+08:00", "count": 1200},
        {"recordType": "SleepSessionRecord", "metadata": meta(6), "startTime": iso(START - timedelta(hours=8)),
         "endTime": iso(START), "startZoneOffset": "+08:00", "endZoneOffset": "+08:00",
         "stages": [{"startTime": iso(START - timedelta(hours=8)), "endTime": iso(START - timedelta(hours=4)),
                     "stage": 4},
                    {"startTime": iso(START - timedelta(hours=4)), "endTime": iso(START - timedelta(hours=3)),
                     "stage": "STAGE_TYPE_DEEP"},
                    {"startTime": iso(START - timedelta(hours=3)), "endTime": iso(START), "stage": 1}]},
        {"recordType": "WeightRecord", "metadata": meta(7), "time": iso(t), "weight": {"inKilograms": 70}},
        {"recordType": "HeartRateRecord", "metadata": meta(8), "startTime": iso(t), "endTime": iso(t),
         "samples": [{"time": iso(t), "beatsPerMinute": 70}, {"time": iso(t), "beatsPerMinute": 400}]},
        {"recordType": "RestingHeartRateRecord", "metadata": meta(9), "time": iso(t)},
    ]
    response = ann.post("/v1/sync/health-connect", json={"changes": [{"upsertionChange": {"record": r}}
                                                                      for r in records]})
    assert statuses(response) == ["inserted"] * 6 + ["rejected"] * 3
    results = response.json()["results"]
    assert [r["reason"] for r in results[6:]] == ["unsupported_type", "implausible_value", "invalid"]
    with service.admin_conn() as conn:
        rows = {m: rest for m, *rest in conn.execute(
            """SELECT r.metric, r.value, r.value2, r.utc_offset_min, r.source, r.time FROM readings r
                 JOIN people p ON p.id = r.person_id WHERE p.tenant_id = %s AND p.external_id = 'ann'""",
            (tenant.id,)).fetchall()}
        inferred = conn.execute(
            """SELECT native_id, offset_inferred FROM records r JOIN people p ON p.id = r.person_id
                WHERE p.tenant_id = %s ORDER BY native_id""", (tenant.id,)).fetchall()
    assert rows["blood_pressure"][:3] == [121, 79, 480] and rows["blood_pressure"][3] == "health-connect:com.example.app"
    assert rows["body_temperature"][0] == pytest.approx(37.0) and rows["body_temperature"][2] == 0  # zone: UTC
    assert rows["glucose"][0] == pytest.approx(99.1, abs=0.1)
    assert rows["spo2"][0] == 97 and rows["steps"][0] == 1200 and rows["steps"][4] == t
    assert rows["sleep"][0] == 300  # minutes asleep: light + deep
    assert dict(inferred)["r-2"] is True and dict(inferred)["r-1"] is False
    assert "heart_rate" not in rows  # nothing of a rejected record is stored


def test_healthkit_series_versions_deletion_and_units(service, tenant, ann):
    post = lambda body: ann.post("/v1/sync/healthkit", json=body)  # noqa: E731
    assert statuses(post({"samples": [hk_heart_rate("hk-1", 60, 1)]})) == ["inserted"]
    assert visible(tenant, ann) == (60, 60, 60)
    assert statuses(post({"samples": [hk_heart_rate("hk-1", 60, 1)]})) == ["unchanged"]
    assert statuses(post({"samples": [hk_heart_rate("hk-1", 30, 2)]})) == ["replaced"]
    assert visible(tenant, ann) == (30, 30, 30)
    assert statuses(post({"samples": [hk_heart_rate("hk-1", 45, 1)]})) == ["stale"]
    # HealthKit deletes by the sample's uuid.
    assert statuses(post({"deletedObjects": [{"uuid": "sample-hk-1-2"}]})) == ["deleted"]
    assert visible(tenant, ann) == (0, 0, 0)
    t = iso(START + timedelta(hours=1))
    source = {"source": {"bundleIdentifier": "com.apple.health"}}
    body = {"samples": [
        {"uuid": "o2", "sampleType": "HKQuantityTypeIdentifierOxygenSaturation", "startDate": t, "endDate": t,
         "quantity": 0.96, "unit": "%", "sourceRevision": source, "metadata": {"HKTimeZone": "Asia/Shanghai"}},
        {"uuid": "g", "sampleType": "HKQuantityTypeIdentifierBloodGlucose", "startDate": t, "quantity": 6.0,
         "unit": "mmol<180.15588000005408>/L", "sourceRevision": source},
        {"uuid": "temp", "sampleType": "HKQuantityTypeIdentifierBodyTemperature", "startDate": t, "quantity": 100.4,
         "unit": "degF", "sourceRevision": source},
        {"uuid": "deep", "sampleType": "HKCategoryTypeIdentifierSleepAnalysis", "value": 4,
         "startDate": iso(START - timedelta(hours=5)), "endDate": iso(START - timedelta(hours=4)),
         "sourceRevision": source},
        {"uuid": "bed", "sampleType": "HKCategoryTypeIdentifierSleepAnalysis", "value": 0,
         "startDate": iso(START - timedelta(hours=6)), "endDate": iso(START), "sourceRevision": source},
        {"uuid": "sdnn", "sampleType": "HKQuantityTypeIdentifierHeartRateVariabilitySDNN", "startDate": t,
         "quantity": 40, "unit": "ms", "sourceRevision": source},
        {"uuid": "x", "sampleType": "HKQuantityTypeIdentifierBodyMass", "startDate": t, "quantity": 70,
         "sourceRevision": source},
    ]}
    results = post(body).json()["results"]
    assert [r["status"] for r in results] == ["inserted"] * 5 + ["rejected"] * 2
    assert results[6]["reason"] == "unsupported_type"
    # SDNN is its own data type: refused while this service has no such type, then it needs its own consent.
    assert results[5]["reason"] == ("no_consent" if "hrv_sdnn" in METRICS else "unsupported_type")
    with service.admin_conn() as conn:
        rows = {m: rest for m, *rest in conn.execute(
            """SELECT r.metric, r.value, r.utc_offset_min FROM readings r JOIN people p ON p.id = r.person_id
                WHERE p.tenant_id = %s AND p.external_id = 'ann'""", (tenant.id,)).fetchall()}
    assert rows["spo2"] == [pytest.approx(96.0), 480]
    assert rows["glucose"][0] == pytest.approx(108.1, abs=0.1) and rows["glucose"][1] == 0  # inferred: UTC
    assert rows["body_temperature"][0] == pytest.approx(38.0)
    assert rows["sleep"][0] == 60


def test_healthkit_sleep_stages_make_one_session_per_night(service, tenant, ann):
    bed = (START - timedelta(days=2)).replace(hour=22, minute=0)  # a night well inside the past (UTC)
    source = {"source": {"bundleIdentifier": "com.apple.health"}}

    def stage(uuid: str, value, start_min: int, end_min: int, version: int = 1) -> dict:
        return {"uuid": f"{uuid}-v{version}", "sampleType": "HKCategoryTypeIdentifierSleepAnalysis", "value": value,
                "startDate": iso(bed + timedelta(minutes=start_min)), "endDate": iso(bed + timedelta(minutes=end_min)),
                "sourceRevision": source, "metadata": {"HKTimeZone": "UTC", "HKMetadataKeySyncIdentifier": uuid,
                                                       "HKMetadataKeySyncVersion": version}}

    def nights() -> list[tuple]:
        with service.admin_conn() as conn:
            return conn.execute(
                """SELECT r.value, r.details->'stages', r.time FROM readings r JOIN people p ON p.id = r.person_id
                    WHERE p.tenant_id = %s AND p.external_id = 'ann' AND r.metric = 'sleep' ORDER BY r.time""",
                (tenant.id,)).fetchall()

    night = [stage("in-bed", 0, -30, 480), stage("core-1", "HKCategoryValueSleepAnalysisAsleepCore", 0, 120),
             stage("deep", 4, 120, 210), stage("awake", 2, 210, 230), stage("rem", 5, 230, 300),
             stage("core-2", 3, 300, 450)]
    assert statuses(ann.post("/v1/sync/healthkit", json={"samples": night})) == ["inserted"] * 6
    # One reading for the night: minutes asleep (core + deep + REM; in bed and awake are not sleep).
    assert [(v, st) for v, st, _ in nights()] == [(120 + 90 + 70 + 150, {"light": 270, "deep": 90, "awake": 20,
                                                                           "rem": 70})]
    assert nights()[0][2] == bed - timedelta(minutes=30)  # the session starts when they went to bed
    # The same stages again change nothing; a newer version of one stage re-derives the night.
    assert statuses(ann.post("/v1/sync/healthkit", json={"samples": night})) == ["unchanged"] * 6
    assert statuses(ann.post("/v1/sync/healthkit", json={"samples": [stage("deep", 4, 120, 180, 2)]})) == [
        "replaced"]
    assert [v for v, _, _ in nights()] == [120 + 60 + 70 + 150]
    # Deleting one stage (by the uuid HealthKit reports) takes its minutes out; the next night is its own session.
    other = stage("next-night", 3, 24 * 60, 24 * 60 + 300)
    response = ann.post("/v1/sync/healthkit", json={"samples": [other], "deletedObjects": [{"uuid": "rem-v1"}]})
    assert statuses(response) == ["inserted", "deleted"]
    assert [v for v, _, _ in nights()] == [120 + 60 + 150, 300]
    # The last sleep stage of a night gone: so is its session (in bed alone is no sleep).
    gone = [{"uuid": u} for u in ("core-1-v1", "deep-v2", "core-2-v1", "awake-v1")]
    assert statuses(ann.post("/v1/sync/healthkit", json={"deletedObjects": gone})) == ["deleted"] * 4
    assert [v for v, _, _ in nights()] == [300]
    # A snapshot of the second night that no longer holds its stage (HealthKit purged the deletion) ends it too.
    window = {"sampleType": "HKCategoryTypeIdentifierSleepAnalysis", "bundleIdentifier": "com.apple.health",
              "startDate": iso(bed + timedelta(hours=20)), "endDate": iso(bed + timedelta(hours=30))}
    response = ann.post("/v1/sync/healthkit", json={"windows": [window]})
    assert statuses(response) == ["deleted"] and response.json()["results"][0]["records"] == 1
    assert nights() == []
    assert visible(tenant, ann) == (0, 0, 0)  # heart rate untouched by any of it


def test_huawei_sample_sets_and_range_deletions(tenant, ann):
    post = lambda body: ann.post("/v1/sync/huawei", json=body)  # noqa: E731
    assert statuses(post({"sampleSets": [huawei_heart_rate(60)]})) == ["inserted"]
    assert visible(tenant, ann) == (60, 60, 60)
    assert statuses(post({"sampleSets": [huawei_heart_rate(60)]})) == ["unchanged"]
    assert statuses(post({"sampleSets": [huawei_heart_rate(30, bpm=80)]})) == ["replaced"]
    assert visible(tenant, ann) == (30, 30, 30)
    start = int(START.timestamp()) * NS
    deletion = {"dataCollectorId": "com.huawei.health:hr:gt4", "dataType": "DT_INSTANTANEOUS_HEART_RATE",
                "startTime": start - 3600 * NS, "endTime": start + 3600 * NS}
    assert statuses(post({"deletions": [deletion]})) == ["deleted"]
    assert visible(tenant, ann) == (0, 0, 0)
    assert statuses(post({"deletions": [deletion]})) == ["not_found"]


def test_huawei_sleep_fragments_are_one_night_and_respiratory_rate_is_stored(service, tenant, ann):
    night = int((START - timedelta(hours=8)).timestamp()) * NS
    fragments = [(0, 60, 1), (60, 150, 3), (150, 170, 4), (170, 260, 2), (260, 300, 1)]  # minutes, sleep_state
    sleep = {"dataCollectorId": "com.huawei.health:sleep:gt4", "dataType": "DT_CONTINUOUS_SLEEP",
             "startTime": night, "endTime": night + 300 * 60 * NS, "timeZone": "+0800",
             "samplePoints": [{"startTime": night + a * 60 * NS, "endTime": night + b * 60 * NS,
                               "fieldValues": {"sleep_state": state}} for a, b, state in fragments]}
    at = int(START.timestamp()) * NS
    breathing = {"dataCollectorId": "com.huawei.health:rr:gt4", "dataType": "DT_INSTANTANEOUS_RESPIRATORY_RATE",
                 "startTime": at, "endTime": at, "timeZone": "+0800",
                 "samplePoints": [{"startTime": at, "endTime": at, "fieldValues": {"respiratory_rate": 15}}]}
    bad = dict(sleep, startTime=night + NS, samplePoints=[{"startTime": night + NS, "endTime": night + 2 * NS,
                                                            "fieldValues": {"sleep_state": 9}}])
    response = ann.post("/v1/sync/huawei", json={"sampleSets": [sleep, breathing, bad]})
    assert statuses(response) == ["inserted", "inserted", "rejected"]
    assert "sleep_state" in response.json()["results"][2]["detail"]
    with service.admin_conn() as conn:
        rows = conn.execute(
            """SELECT r.metric, r.value, r.details, r.utc_offset_min FROM readings r
                 JOIN people p ON p.id = r.person_id WHERE p.tenant_id = %s AND p.external_id = 'ann'
                ORDER BY r.metric""", (tenant.id,)).fetchall()
    assert [(m, v, o) for m, v, _, o in rows] == [("respiratory_rate", 15, 480), ("sleep", 280, 480)]
    assert rows[1][2]["stages"] == {"light": 100, "deep": 90, "awake": 20, "rem": 90}
    # The night changed on the watch (the last fragment dropped): the set with the same range replaces it.
    sleep["samplePoints"] = sleep["samplePoints"][:-1]
    assert statuses(ann.post("/v1/sync/huawei", json={"sampleSets": [sleep]})) == ["replaced"]
    with service.admin_conn() as conn:
        values = conn.execute("SELECT value FROM readings WHERE metric = 'sleep' AND tenant_id = %s",
                              (tenant.id,)).fetchall()
    assert values == [(240,)]


def test_a_window_snapshot_replaces_what_we_hold_there(tenant, ann):
    t0 = START + timedelta(minutes=30)
    early, late = START, START + timedelta(minutes=20)
    body = {"changes": [hc_heart_rate("a", 10, t0, start=early), hc_heart_rate("b", 10, t0, start=late)]}
    assert statuses(ann.post("/v1/sync/health-connect", json=body)) == ["inserted", "inserted"]
    snapshot = {"changes": [hc_heart_rate("b", 10, t0, start=late)],
                "windows": [{"recordType": "HeartRateRecord", "dataOrigin": "com.example.watch",
                             "startTime": iso(START - timedelta(hours=1)), "endTime": iso(START + timedelta(hours=1))}]}
    response = ann.post("/v1/sync/health-connect", json=snapshot)
    assert statuses(response) == ["unchanged", "deleted"] and response.json()["results"][1]["records"] == 1
    assert visible(tenant, ann)[0] == 10


def test_without_consent_and_for_malformed_bodies_nothing_is_stored(service, tenant):
    bob = tenant.client(tenant.person_token("bob"))
    t0 = START + timedelta(minutes=30)
    response = bob.post("/v1/sync/health-connect", json={"changes": [hc_heart_rate("hr-1", 5, t0)]})
    assert response.json()["results"][0]["reason"] == "no_consent"
    for path, body in [("/v1/sync/health-connect", b'{"changes": [}'), ("/v1/sync/healthkit", b'{"samples": 3}'),
                       ("/v1/sync/huawei", b'[]')]:
        answer = bob.post(path, content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422 and answer.json()["code"] == "invalid", answer.text
    with service.admin_conn() as conn:
        assert conn.execute("SELECT count(*) FROM records WHERE tenant_id = %s", (tenant.id,)).fetchone()[0] == 0


def test_a_record_id_reused_by_another_person_or_tenant_is_their_own_record(service, tenant, ann):
    t0 = START + timedelta(minutes=30)
    other_tenant = service.new_tenant()
    others = [tenant.client(tenant.person_token("cy")), other_tenant.client(other_tenant.person_token("ann"))]
    for client in others:
        assert client.put("/v1/me/consents/heart_rate").status_code == 200
    assert statuses(ann.post("/v1/sync/health-connect", json={"changes": [hc_heart_rate("same", 20, t0)]})) \
        == ["inserted"]
    for client in others:
        assert statuses(client.post("/v1/sync/health-connect", json={"changes": [hc_heart_rate("same", 5, t0)]})) \
            == ["inserted"]
        assert statuses(client.post("/v1/sync/health-connect",
                                    json={"changes": [{"deletionChange": {"recordId": "same"}}]})) == ["deleted"]
    assert visible(tenant, ann)[0] == 20


def test_staff_cannot_sync(tenant):
    response = tenant.client(tenant.staff_token("nurse")).post("/v1/sync/health-connect", json={"changes": []})
    assert response.status_code == 403


def test_the_reference_client_replays_a_folder_of_platform_batches(service, tenant, ann, tmp_path):
    import json
    import subprocess
    import sys

    from tests.support import ROOT
    t0 = START + timedelta(minutes=30)
    batches = [
        {"changes": [hc_heart_rate("c-1", 60, t0)]},
        {"samples": [hk_heart_rate("c-2", 20, 1)]},
        {"sampleSets": [huawei_heart_rate(10)]},
        {"changes": [hc_heart_rate("c-1", 30, t0 + timedelta(minutes=1))]},
        {"platform": "health-connect", "changes": [{"deletionChange": {"recordId": "c-1"}}]},
        {"resourceType": "Observation", "status": "final", "identifier": [{"system": "urn:x", "value": "o-1"}],
         "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
         "effectiveDateTime": iso(START + timedelta(hours=2)), "valueQuantity": {"value": 66, "code": "/min"}},
    ]
    for i, body in enumerate(batches):
        (tmp_path / f"{i:03d}.json").write_text(json.dumps(body))
    run = subprocess.run([sys.executable, "-m", "app.cli", "sync-client", str(tmp_path), "--url", service.base_url,
                          "--token", tenant.person_token("ann")], capture_output=True, text=True, cwd=ROOT,
                         env=service.env, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("[1/6] 000.json (health-connect): inserted 1")
    assert "(healthkit)" in lines[1] and "(huawei)" in lines[2] and "replaced 1" in lines[3]
    assert "deleted 1" in lines[4] and "(fhir-observation): inserted 1" in lines[5]
    assert lines[-1].startswith("6 batches in")
    assert visible(tenant, ann)[0] == 20 + 10 + 1
    # A second replay changes nothing: the deleted record stays deleted, everything else is unchanged.
    again = subprocess.run([sys.executable, "-m", "app.cli", "sync-client", str(tmp_path), "--url", service.base_url,
                            "--token", tenant.person_token("ann")], capture_output=True, text=True, cwd=ROOT,
                           env=service.env, timeout=60)
    assert "inserted" not in again.stdout and "replaced" not in again.stdout, again.stdout
    assert visible(tenant, ann)[0] == 31


def test_erasure_deletes_records_and_their_tombstones(service, tenant, ann):
    t0 = START + timedelta(minutes=30)
    ann.post("/v1/sync/health-connect", json={"changes": [hc_heart_rate("e-1", 10, t0), hc_heart_rate("e-2", 5, t0,
                                                                                                         app="other")]})
    ann.post("/v1/sync/health-connect", json={"changes": [{"deletionChange": {"recordId": "e-2"}}]})
    receipt = ann.delete("/v1/me").json()
    assert receipt["erased"]["records"] == 2 and receipt["erased"]["readings"] == 10
    with service.admin_conn() as conn:
        assert conn.execute("SELECT count(*) FROM records r JOIN people p ON p.id = r.person_id "
                            "WHERE p.tenant_id = %s", (tenant.id,)).fetchone()[0] == 0


def test_two_apps_counting_the_same_steps_are_never_added_up(tenant, ann):
    end = START + timedelta(minutes=45)

    def steps(app: str, count: int) -> dict:
        return {"upsertionChange": {"record": {
            "recordType": "StepsRecord", "metadata": {"id": f"s-{app}", "dataOrigin": {"packageName": app},
                                                      "lastModifiedTime": iso(end)},
            "startTime": iso(end - timedelta(minutes=15)), "endTime": iso(end), "count": count}}}

    assert statuses(ann.post("/v1/sync/health-connect", json={"changes": [steps("phone", 1000),
                                                                          steps("watch", 1200)]})) == ["inserted"] * 2
    nurse = tenant.client(tenant.staff_token("lead", "care_supervisor"))

    def chart() -> list[tuple[float, int]]:
        points = nurse.get("/v1/care/people/ann/readings", params={
            "metric": "steps", "bucket": "1d", "from": iso(START - timedelta(days=1)),
            "to": iso(START + timedelta(days=1)), "why": "test"}).json()["points"]
        return [(p["avg"], p["count"]) for p in points]

    assert chart() == [(1200, 1)]  # without a ranking: the source that counted the most in that hour
    answer = ann.put("/v1/me/source-priority/steps", json={"sources": ["health-connect:phone", "health-connect:watch"]})
    assert answer.status_code == 200 and answer.json() == {"steps": ["health-connect:phone", "health-connect:watch"]}
    assert chart() == [(1000, 1)]
    assert ann.get("/v1/me/source-priority").json()["steps"][0] == "health-connect:phone"
    assert ann.put("/v1/me/source-priority/steps", json={"sources": ["a", "a"]}).status_code == 422
    assert ann.put("/v1/me/source-priority/heart_rate", json={"sources": ["a"]}).status_code == 422


@pytest.mark.parametrize("path, body", [
    ("/v1/sync/health-connect", {"changes": [{"upsertionChange": {"record": {
        "recordType": "RestingHeartRateRecord", "time": "0001-01-01T00:00:00+08:00", "beatsPerMinute": 60,
        "metadata": {"id": "x", "dataOrigin": {"packageName": "a"}, "clientRecordVersion": 2**70}}}}]}),
    ("/v1/sync/health-connect", {"changes": [{"upsertionChange": {"record": {
        "recordType": "RestingHeartRateRecord", "time": "0001-01-01T00:00:00+08:00", "beatsPerMinute": 60,
        "zoneOffset": 99999, "metadata": {"id": "x", "dataOrigin": {"packageName": "a"}}}}},
        {"deletionChange": []}, 5, {"upsertionChange": {"record": {"recordType": "StepsRecord", "metadata": 3}}}]}),
    ("/v1/sync/healthkit", {"samples": [
        {"uuid": "b", "sampleType": "HKCorrelationTypeIdentifierBloodPressure", "startDate": iso(START),
         "sourceRevision": {"source": {"bundleIdentifier": "a"}},
         "objects": [{"sampleType": "HKQuantityTypeIdentifierBloodPressureSystolic", "quantity": "high"},
                     {"sampleType": "HKQuantityTypeIdentifierBloodPressureDiastolic", "quantity": 80}]},
        {"uuid": "c", "sampleType": "HKQuantityTypeIdentifierHeartRate", "startDate": "9999-12-31T23:59:59-08:00",
         "quantity": 70, "sourceRevision": {"source": {"bundleIdentifier": "a"}},
         "metadata": {"HKTimeZone": "../../etc/passwd", "HKMetadataKeySyncVersion": -1}}],
        "deletedObjects": [{"uuid": 5}]}),
    ("/v1/sync/huawei", {"sampleSets": [{"dataCollectorId": "a", "dataType": "DT_INSTANTANEOUS_HEART_RATE",
                                         "startTime": -1, "endTime": 2**80, "samplePoints": [{}]}],
                         "deletions": [{"dataCollectorId": "", "dataType": "DT_X", "startTime": 0, "endTime": 1}]}),
    ("/fhir/r4", {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "meta": {"versionId": "²"},
                      "identifier": [{"value": "v"}], "code": {"coding": [{"system": "http://loinc.org",
                                                                           "code": "8867-4"}]},
                      "effectiveDateTime": "0001-01-01T00:00:00+14:00", "valueQuantity": {"value": 70}}},
        {"resource": {"resourceType": "Observation", "status": "final", "identifier": [{"value": "w"}],
                      "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                      "effectiveDateTime": iso(START), "component": [{"valueQuantity": {"value": 1}}]}},
        {"resource": {"resourceType": "Observation", "status": "final", "identifier": [{"value": "z"}],
                      "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                      "effectiveDateTime": iso(START), "valueAttachment": {"contentType": "application/json",
                                                                           "data": "bm90IGpzb24="}}},
        "nonsense", {"request": {"method": "DELETE"}, "resource": {}}]}),
])
def test_hostile_items_are_rejected_one_by_one_and_never_reach_a_500(service, tenant, ann, path, body):
    response = ann.post(path, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    if "entry" in answer:
        assert all(e["response"]["status"][:3] in ("403", "422") if "response" in e else e["status"][:3] in
                   ("403", "422") for e in answer["entry"]), answer
    else:
        assert {r["status"] for r in answer["results"]} == {"rejected"}, answer
    with service.admin_conn() as conn:
        assert conn.execute("SELECT count(*) FROM records WHERE tenant_id = %s", (tenant.id,)).fetchone()[0] == 0


def test_the_same_new_record_sent_concurrently_is_stored_once(service, tenant, ann):
    from concurrent.futures import ThreadPoolExecutor
    t0 = START + timedelta(minutes=30)
    body = {"changes": [hc_heart_rate("race", 60, t0), hc_heart_rate("race-2", 10, t0, app="other")]}
    token = tenant.person_token("ann")

    def send(_: int) -> list[str]:
        with tenant.client(token) as client:
            return statuses(client.post("/v1/sync/health-connect", json=body))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    assert sorted(a[0] for a in answers) == ["inserted"] + ["unchanged"] * 7
    assert visible(tenant, ann)[0] == 70
    with service.admin_conn() as conn:
        queued = conn.execute("SELECT count(*) FROM detection_work w JOIN people p ON p.id = w.person_id "
                              "WHERE p.tenant_id = %s", (tenant.id,)).fetchone()[0]
    assert queued >= 1  # the commit that stored the readings queued the person for detection


def test_an_alert_whose_evidence_was_deleted_says_so(service, tenant, ann):
    from tests.support import start_process, stop_process, wait_for
    t0 = START + timedelta(minutes=30)
    assert statuses(ann.post("/v1/sync/health-connect", json={"changes": [hc_heart_rate("ev", 60, t0)]})) \
        == ["inserted"]
    with service.admin_conn() as conn:
        person_id = conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = 'ann'",
                                 (tenant.id,)).fetchone()[0]
        conn.execute(
            """INSERT INTO anomaly_events (tenant_id, person_id, kind, feature, metric, tier, start_time, end_time,
                                           value, baseline, reason)
               VALUES (%s, %s, 'health', 'overnight_rhr', 'heart_rate', 'alert', %s, %s, 74, 65, 'raised')""",
            (tenant.id, person_id, START, START + timedelta(minutes=10)))
    worker = start_process(service, "worker")
    try:
        def opened():
            with service.admin_conn() as conn:
                row = conn.execute("SELECT id FROM alerts WHERE person_id = %s", (person_id,)).fetchone()
            return row and str(row[0])
        alert_id = wait_for(opened, timeout=30)
    finally:
        stop_process(worker)
    nurse = tenant.client(tenant.staff_token("lead", "care_supervisor"))
    assert [e["withdrawn"] for e in nurse.get(f"/v1/care/alerts/{alert_id}").json()["evidence"]] == [False]
    assert statuses(ann.post("/v1/sync/health-connect", json={"changes": [{"deletionChange": {"recordId": "ev"}}]})) \
        == ["deleted"]
    assert [e["withdrawn"] for e in nurse.get(f"/v1/care/alerts/{alert_id}").json()["evidence"]] == [True]


def test_a_record_id_with_a_nul_character_is_rejected_on_its_own(service, tenant, ann):
    t0 = START + timedelta(minutes=30)
    bad = hc_heart_rate("bad\u0000id", 5, t0)
    response = ann.post("/v1/sync/health-connect", json={"changes": [bad, hc_heart_rate("good", 5, t0, app="b")]})
    assert statuses(response) == ["rejected", "inserted"]
    assert visible(tenant, ann)[0] == 5


def test_one_request_may_create_change_and_delete_the_same_record(service, tenant, ann):
    t0 = START + timedelta(minutes=30)
    changes = [hc_heart_rate("once", 20, t0), hc_heart_rate("once", 10, t0 + timedelta(minutes=1)),
               hc_heart_rate("kept", 15, t0, app="b"), hc_heart_rate("kept", 5, t0 + timedelta(minutes=1), app="b"),
               {"deletionChange": {"recordId": "once"}}, hc_heart_rate("once", 20, t0)]
    response = ann.post("/v1/sync/health-connect", json={"changes": changes})
    assert statuses(response) == ["inserted", "replaced", "inserted", "replaced", "deleted", "stale"]
    assert visible(tenant, ann)[0] == 5
    with service.admin_conn() as conn:
        rows = conn.execute("""SELECT native_id, state, reading_count, deleted_at IS NOT NULL FROM records r
                                 JOIN people p ON p.id = r.person_id WHERE p.tenant_id = %s ORDER BY native_id""",
                            (tenant.id,)).fetchall()
    assert rows == [("kept", "live", 5, False), ("once", "deleted", 0, True)]
