"""The platform shapes → record operations, without a database."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from streaming.records import Delete, Invalid, Upsert, Window, healthconnect, healthkit, huawei
from streaming.metrics import METRICS
from streaming.records import fhir
from streaming.records.shapes import offset_minutes
from streaming.validation import Rejected


@pytest.mark.parametrize("sent, minutes", [("+08:00", 480), ("+0800", 480), ("-05:30", -330), ("Z", 0),
                                           (28800, 480), ({"totalSeconds": -3600}, -60), (None, None)])
def test_zone_offsets_in_every_spelling_the_platforms_use(sent, minutes):
    assert offset_minutes(sent, "zoneOffset") == minutes


@pytest.mark.parametrize("sent", ["+8", "08:00", "+19:00", True, [480]])
def test_anything_else_is_not_an_offset(sent):
    with pytest.raises(Rejected):
        offset_minutes(sent, "zoneOffset")


def test_health_connect_changes_keep_their_order_and_kinds():
    ops = healthconnect.operations(healthconnect.EXAMPLE | {"windows": [
        {"recordType": "StepsRecord", "dataOrigin": "com.x", "startTime": "2026-11-01T00:00:00Z",
         "endTime": "2026-11-02T00:00:00Z"}]})
    assert [type(op) for op in ops] == [Upsert, Upsert, Delete, Window]
    heart, steps = ops[0], ops[1]
    assert (heart.metric, heart.source_app, heart.offset_min, len(heart.samples)) == (
        "heart_rate", "com.google.android.apps.fitness", 480, 2)
    assert heart.version_time == datetime(2026, 11, 25, 0, 2, tzinfo=timezone.utc)
    # Steps count for the interval ending at the time; a null offset is left to be inferred.
    assert steps.samples[0].time == datetime(2026, 11, 25, 0, 15, tzinfo=timezone.utc) and steps.offset_min is None


def test_health_connect_unknown_types_are_rejected_and_unknown_fields_ignored():
    record = {"recordType": "RestingHeartRateRecord", "time": "2026-11-25T00:00:00Z", "beatsPerMinute": 55,
              "metadata": {"id": "a", "dataOrigin": {"packageName": "p"}, "newField": 1}, "alsoNew": {"x": 1}}
    ops = healthconnect.operations({"changes": [{"upsertionChange": {"record": record}},
                                                {"upsertionChange": {"record": {**record, "recordType": "Nope"}}}]})
    assert isinstance(ops[0], Upsert) and ops[0].samples[0].value == 55
    assert isinstance(ops[1], Invalid) and ops[1].reason == "unsupported_type"


def test_healthkit_spo2_is_a_fraction_sync_identifiers_are_the_identity_and_sdnn_waits_for_its_type():
    ops = healthkit.operations(healthkit.EXAMPLE)
    spo2 = ops[1]
    assert (spo2.metric, spo2.samples[0].unit, spo2.samples[0].value) == ("spo2", "ratio", 0.97)
    assert ops[0].zone == "Asia/Shanghai" and spo2.zone is None
    synced = healthkit.operations({"samples": [{
        "uuid": "u-2", "sampleType": "HKQuantityTypeIdentifierHeartRate", "startDate": "2026-11-25T00:00:00Z",
        "quantity": 60, "sourceRevision": {"source": {"bundleIdentifier": "b"}},
        "metadata": {"HKMetadataKeySyncIdentifier": "sync-1", "HKMetadataKeySyncVersion": 3}}]})[0]
    assert (synced.native_id, synced.alias_id, synced.version_seq) == ("sync-1", "u-2", 3)
    sdnn = healthkit.operations({"samples": [{
        "uuid": "u", "sampleType": "HKQuantityTypeIdentifierHeartRateVariabilitySDNN",
        "startDate": "2026-11-25T00:00:00Z", "quantity": 40, "sourceRevision": {"source": {"bundleIdentifier": "b"}}}]})
    if "hrv_sdnn" in METRICS:  # works as soon as the data type exists
        assert isinstance(sdnn[0], Upsert) and sdnn[0].metric == "hrv_sdnn"
    else:
        assert isinstance(sdnn[0], Invalid) and sdnn[0].reason == "unsupported_type" and "hrv_sdnn" in sdnn[0].detail


def test_huawei_sample_sets_are_identified_by_collector_type_and_range():
    ops = huawei.operations(huawei.EXAMPLE)
    assert isinstance(ops[0], Upsert) and isinstance(ops[1], Window) and ops[1].deletion
    assert ops[0].native_id == "DT_INSTANTANEOUS_HEART_RATE:1764028800000000000-1764028860000000000"
    assert ops[0].offset_min == 480 and ops[0].samples[1].time == datetime(2025, 11, 25, 0, 0, 30, tzinfo=timezone.utc)


def test_fhir_rmssd_uses_the_projects_code_system_and_loinc_sdnn_is_its_own_type():
    base = {"resourceType": "Observation", "status": "final", "identifier": [{"system": "s", "value": "1"}],
            "effectiveDateTime": "2026-11-25T08:00:00+08:00", "valueQuantity": {"value": 40, "code": "ms"}}
    rmssd = fhir.observation({**base, "code": {"coding": [{"system": fhir.DATA_TYPE_SYSTEM, "code": "hrv_rmssd"}]}})
    assert isinstance(rmssd, Upsert) and rmssd.metric == "hrv_rmssd" and rmssd.offset_min == 480
    sdnn = fhir.observation({**base, "code": {"coding": [{"system": "http://loinc.org", "code": "80404-7"}]}})
    if "hrv_sdnn" in METRICS:
        assert isinstance(sdnn, Upsert) and sdnn.metric == "hrv_sdnn"
    else:
        assert isinstance(sdnn, Invalid) and sdnn.reason == "unsupported_type"
    broken = fhir.observation({**base, "status": 7, "code": {"coding": [{"system": "http://loinc.org",
                                                                          "code": "8867-4"}]}})
    assert isinstance(broken, Invalid) and broken.reason == "invalid" and "status" in broken.detail


@pytest.mark.parametrize("bad, reason", [(400.0, "implausible_value"), (None, "invalid"), (float("nan"), "invalid"),
                                         ("future", "time_in_future")])
def test_a_series_fails_on_its_bad_point_with_the_reason_a_single_reading_gets(bad, reason):
    from datetime import timedelta

    from streaming.validation import validate_series
    now = datetime.now(timezone.utc)
    tz = timezone(timedelta(hours=8))
    points = [((now - timedelta(minutes=10 - i)).astimezone(tz), 70.0) for i in range(5)]
    assert [r.utc_offset_min for r in validate_series("heart_rate", "bpm", "s", points, now=now)] == [480] * 5
    points[3] = ((now + timedelta(hours=1)).astimezone(tz), 70.0) if bad == "future" else (points[3][0], bad)
    with pytest.raises(Rejected) as caught:
        validate_series("heart_rate", "bpm", "s", points, now=now)
    assert caught.value.reason == reason
