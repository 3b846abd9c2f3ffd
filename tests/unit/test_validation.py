"""Reading validation and unit conversion, without a database."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from app.api.schemas import ReadingIn
from streaming.metrics import METRICS
from streaming.validation import Rejected, validate

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def check(**item) -> object:
    item.setdefault("time", "2026-11-25T15:00:00+08:00")
    return validate(json.dumps(item).encode(), now=NOW)


def reason(**item) -> str:
    with pytest.raises(Rejected) as rejected:
        check(**item)
    return rejected.value.reason


def test_time_is_stored_in_utc_with_the_phone_offset_kept():
    reading = check(metric="heart_rate", value=60, time="2026-11-25T15:00:00+08:00")
    assert reading.time == datetime(2026, 11, 25, 7, 0, tzinfo=timezone.utc)
    assert reading.utc_offset_min == 480


@pytest.mark.parametrize("metric, value, unit, expected", [
    ("glucose", 7.0, "mmol/L", 126.1),
    ("glucose", 126, "mg/dL", 126.0),
    ("body_temperature", 100.4, "°F", 38.0),
    ("spo2", 0.95, "ratio", 95.0),
    ("sleep", None, None, None),
])
def test_units_convert_to_the_canonical_one(metric, value, unit, expected):
    if metric == "sleep":
        r = check(metric="sleep", time="2026-11-24T23:00:00+08:00", end="2026-11-25T07:00:00+08:00")
        assert r.value == 480 and r.details["end"].startswith("2026-11-24T23:00:00")
        return
    assert check(metric=metric, value=value, unit=unit).value == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("item, expected", [
    (dict(metric="heart_rate", value=400), "implausible_value"),
    (dict(metric="heart_rate", value=10), "implausible_value"),
    (dict(metric="spo2", value=130), "implausible_value"),
    (dict(metric="body_temperature", value=50), "implausible_value"),
    (dict(metric="blood_pressure", systolic=80, diastolic=120), "implausible_value"),
    (dict(metric="blood_pressure", systolic=120), "invalid"),
    (dict(metric="heart_rate"), "invalid"),
    (dict(metric="heart_rate", value=60, time="2026-11-25T09:00:00+00:00"), "time_in_future"),
    (dict(metric="heart_rate", value=60, time="2000-01-01T00:00:00+00:00"), "time_too_old"),
    (dict(metric="heart_rate", value=60, time="2026-11-25T07:00:00"), "time_without_offset"),
    (dict(metric="heart_rate", value=60, unit="kPa"), "unknown_unit"),
    (dict(metric="mood", value=3), "unknown_metric"),
    (dict(metric="heart_rate", value=60, source=""), "invalid"),
    (dict(metric="heart_rate", value=60, source="watch\x00"), "invalid"),
    (dict(metric="heart_rate", value=60, person="someone-else"), "invalid"),
    (dict(metric="sleep", time="2026-11-25T07:00:00+08:00", end="2026-11-24T23:00:00+08:00"), "implausible_value"),
    (dict(metric="sleep", time="2026-11-24T23:00:00+08:00", end="2026-11-25T07:00:00+08:00",
          stages={"deep": 300, "light": 300}), "implausible_value"),
    (dict(metric="sleep", time="2026-11-24T23:00:00+08:00", end="2026-11-25T07:00:00+08:00",
          stages={"dreaming": 30}), "invalid"),
])
def test_implausible_or_malformed_items_are_rejected_with_a_reason(item, expected):
    assert reason(**item) == expected


def test_nan_and_infinity_are_not_numbers_we_store():
    with pytest.raises(Rejected):
        validate(b'{"metric": "heart_rate", "time": "2026-11-25T07:00:00+00:00", "value": NaN}', now=NOW)


def test_the_documented_examples_are_accepted_by_the_real_decoder():
    for example in ReadingIn.model_config["json_schema_extra"]["examples"]:
        reading = validate(json.dumps(example).encode(), now=datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc))
        assert reading.metric == example["metric"]


def test_documented_metric_names_match_the_catalogue():
    documented = ReadingIn.model_json_schema()["properties"]["metric"]["enum"]
    assert documented == list(METRICS)


def test_every_metric_range_is_in_its_canonical_unit_and_sane():
    for metric in METRICS.values():
        assert metric.low < metric.high
        assert metric.units[metric.unit](42.0) == 42.0


def test_a_whole_batch_gets_the_same_answer_for_each_item_as_one_at_a_time():
    from streaming.validation import decode_batch, validate_batch
    items = [
        {"metric": "heart_rate", "time": "2026-11-25T15:00:00+08:00", "value": 61},
        {"metric": "heart_rate", "time": "2026-11-25T07:00:00Z", "value": 62, "unit": "beats/min"},
        {"metric": "heart_rate", "time": "2026-11-25T07:01:00-05:30", "value": 400},
        {"metric": "heart_rate", "time": "2026-11-25T07:02:00", "value": 60},
        {"metric": "heart_rate", "time": "2036-11-25T07:02:00Z", "value": 60},
        {"metric": "steps", "time": "2026-11-25T07:03:00Z", "value": 10, "source": ""},
        {"metric": "glucose", "time": "2026-11-25T07:04:00Z", "value": 7.0, "unit": "mmol/L"},
        {"metric": "blood_pressure", "time": "2026-11-25T07:05:00Z", "systolic": 120, "diastolic": 80},
        {"metric": "spo2", "time": "2026-11-25T07:06:00Z", "value": 97, "unit": "furlongs"},
        {"metric": "heart_rate", "time": "2026-11-25T07:07:00Z", "value": 60, "source": "a\u0000b"},
        {"metric": "heart_rate", "time": "2026-11-25T07:08:00Z"},
    ]
    decoded = decode_batch(json.dumps({"readings": items}).encode())
    good, positions, refused = validate_batch(decoded, now=NOW)
    one_by_one = {}
    for index, item in enumerate(items):
        try:
            one_by_one[index] = validate(json.dumps(item).encode(), now=NOW)
        except Rejected as exc:
            one_by_one[index] = exc.reason
    assert {**dict(zip(positions, good)), **{i: e.reason for i, e in refused.items()}} == one_by_one
    assert positions == [0, 1, 6, 7]


@pytest.mark.parametrize("head", [{}, {"type": "ack", "seq": 7}])
def test_the_pre_encoded_all_accepted_answer_reads_the_same_as_the_general_one(head):
    from streaming.receive import all_accepted, summarise, summary_json
    results = all_accepted(3)
    general = {**head, **summarise([dict(r) for r in results])}
    assert json.loads(summary_json(results, **head)) == general
    assert list(json.loads(summary_json(results, **head))) == list(general)
