"""Android Health Connect: a ``getChanges`` response (upsertion and deletion changes) as the app received it.

Property names are Health Connect's own (``recordType``, ``metadata.id``, ``metadata.dataOrigin.packageName``,
``metadata.lastModifiedTime``, ``metadata.clientRecordVersion``, ``time``/``zoneOffset`` or
``startTime``/``startZoneOffset``/``endTime``/``endZoneOffset``, ``samples``, ``count``, ``stages`` …). Units
may be sent as Health Connect's unit objects (``{"inMillimetersOfMercury": 120}``) or as plain numbers in the
record's usual unit. A null zone offset is inferred from the person's time zone.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from streaming.records import Delete, Invalid, Operation, Sample, Upsert, as_utc, metric_of, version, window
from streaming.records.shapes import convert, measure, offset_minutes
from streaming.validation import Rejected

PLATFORM = "health_connect"


class _Origin(msgspec.Struct):
    packageName: str


class _Metadata(msgspec.Struct):
    id: str
    dataOrigin: _Origin
    lastModifiedTime: datetime | None = None
    clientRecordId: str | None = None
    clientRecordVersion: int = 0


class _HeartRateSample(msgspec.Struct):
    time: datetime
    beatsPerMinute: float


class _Record(msgspec.Struct):
    recordType: str
    metadata: _Metadata
    time: datetime | None = None
    zoneOffset: Any = None
    startTime: datetime | None = None
    startZoneOffset: Any = None
    endTime: datetime | None = None
    endZoneOffset: Any = None
    samples: list[_HeartRateSample] | None = None
    stages: list[dict] | None = None
    beatsPerMinute: float | None = None
    heartRateVariabilityMillis: float | None = None
    count: float | None = None
    percentage: Any = None
    systolic: Any = None
    diastolic: Any = None
    level: Any = None
    temperature: Any = None
    rate: float | None = None


class _Stage(msgspec.Struct):
    startTime: datetime
    endTime: datetime
    stage: int | str


class _Window(msgspec.Struct):
    recordType: str
    dataOrigin: str
    startTime: datetime
    endTime: datetime


# recordType -> data type
TYPES = {
    "HeartRateRecord": "heart_rate", "RestingHeartRateRecord": "resting_heart_rate",
    "HeartRateVariabilityRmssdRecord": "hrv_rmssd", "StepsRecord": "steps", "SleepSessionRecord": "sleep",
    "OxygenSaturationRecord": "spo2", "BloodPressureRecord": "blood_pressure", "BloodGlucoseRecord": "glucose",
    "BodyTemperatureRecord": "body_temperature", "RespiratoryRateRecord": "respiratory_rate",
}
# SleepSessionRecord.STAGE_TYPE_* -> our stage names (unknown and out-of-bed count as awake time in bed)
_STAGES = {0: "awake", 1: "awake", 2: "asleep", 3: "awake", 4: "light", 5: "deep", 6: "rem", 7: "awake"}
_STAGE_NAMES = {"unknown": 0, "awake": 1, "sleeping": 2, "out_of_bed": 3, "light": 4, "deep": 5, "rem": 6,
                "awake_in_bed": 7}


def operations(body: Any) -> list[Operation]:
    """``{"changes": [{"upsertionChange": {"record": …}} | {"deletionChange": {"recordId": …}}],
    "windows": [{"recordType", "dataOrigin", "startTime", "endTime"}]}`` → operations, in order."""
    if not isinstance(body, dict) or not isinstance(body.get("changes", []), list) \
            or not isinstance(body.get("windows", []), list):
        raise ValueError("the body must be an object with a `changes` list (and optionally `windows`)")
    ops: list[Operation] = [_change(change) for change in body.get("changes", [])]
    ops += [_window(window) for window in body.get("windows", [])]
    return ops


def sample_count(op: Operation) -> int:
    return len(op.samples) if isinstance(op, Upsert) else 0


def _change(change: Any) -> Operation:
    if not isinstance(change, dict):
        return Invalid("invalid", "a change must be an object")
    if "deletionChange" in change:
        record_id = (change["deletionChange"] or {}).get("recordId") if isinstance(change["deletionChange"], dict) else None
        if not isinstance(record_id, str) or not 0 < len(record_id) <= 255:
            return Invalid("invalid", "`deletionChange.recordId` must be a string of 1–255 characters")
        return Delete(PLATFORM, record_id)
    upsertion = change.get("upsertionChange")
    record = upsertion.get("record") if isinstance(upsertion, dict) else None
    if not isinstance(record, dict):
        return Invalid("invalid", "a change needs `upsertionChange.record` or `deletionChange.recordId`")
    native_id = (record.get("metadata") or {}).get("id") if isinstance(record.get("metadata"), dict) else None
    try:
        return _record(record)
    except Rejected as exc:
        return Invalid(exc.reason, exc.detail, native_id if isinstance(native_id, str) else None)


def _record(item: dict) -> Operation:
    kind = item.get("recordType")
    metric = metric_of(kind, TYPES)
    if isinstance(metric, Invalid):
        return metric
    r: _Record = convert(item, _Record, kind)
    meta = r.metadata
    if not 0 < len(meta.id) <= 255 or not 0 < len(meta.dataOrigin.packageName) <= 255:
        raise Rejected("invalid", "`metadata.id` and `metadata.dataOrigin.packageName` must be 1–255 characters")
    if r.time is not None:  # an instantaneous record
        start = end = r.time
        offset = offset_minutes(r.zoneOffset, "zoneOffset")
    else:
        if r.startTime is None or r.endTime is None:
            raise Rejected("invalid", f"{kind} needs `time`, or `startTime` and `endTime`")
        start, end = r.startTime, r.endTime
        offset = offset_minutes(r.startZoneOffset, "startZoneOffset")
    start, end = as_utc(start, "startTime"), as_utc(end, "endTime")
    if end < start:
        raise Rejected("invalid", "`endTime` is before `startTime`")
    samples = _samples(kind, r, start, end)
    return Upsert(PLATFORM, meta.dataOrigin.packageName, meta.id, kind, metric, start, end, samples, offset,
                  version_time=as_utc(meta.lastModifiedTime, "lastModifiedTime") if meta.lastModifiedTime else None,
                  version_seq=version(meta.clientRecordVersion, "metadata.clientRecordVersion"))


def _samples(kind: str, r: _Record, start: datetime, end: datetime) -> list[Sample]:
    if kind == "HeartRateRecord":
        return [Sample(as_utc(p.time, "samples[].time"), p.beatsPerMinute, "bpm") for p in r.samples or []]
    if kind == "RestingHeartRateRecord":
        return [Sample(start, r.beatsPerMinute, "bpm")]
    if kind == "HeartRateVariabilityRmssdRecord":
        return [Sample(start, r.heartRateVariabilityMillis, "ms")]
    if kind == "StepsRecord":
        return [Sample(end, r.count, "count")]  # steps are counted for the interval ending at the time
    if kind == "RespiratoryRateRecord":
        return [Sample(start, r.rate, "/min")]
    if kind == "OxygenSaturationRecord":
        value, unit = measure(r.percentage, "percentage", {"value": "%", "inPercent": "%"}, "%")
        return [Sample(start, value, unit)]
    if kind == "BloodPressureRecord":
        units = {"inMillimetersOfMercury": "mmHg", "inKilopascals": "kPa"}
        systolic, unit = measure(r.systolic, "systolic", units, "mmHg")
        diastolic, unit2 = measure(r.diastolic, "diastolic", units, "mmHg")
        if unit2 != unit:
            diastolic = diastolic * 7.500617 if unit2 == "kPa" else diastolic / 7.500617
        return [Sample(start, None, unit, systolic=systolic, diastolic=diastolic)]
    if kind == "BloodGlucoseRecord":
        value, unit = measure(r.level, "level", {"inMilligramsPerDeciliter": "mg/dL",
                                                 "inMillimolesPerLiter": "mmol/L"}, "mmol/L")
        return [Sample(start, value, unit)]
    if kind == "BodyTemperatureRecord":
        value, unit = measure(r.temperature, "temperature", {"inCelsius": "°C", "inFahrenheit": "°F"}, "°C")
        return [Sample(start, value, unit)]
    # SleepSessionRecord: one session, minutes per stage
    stages: dict[str, float] = {}
    for raw in r.stages or []:
        stage = convert(raw, _Stage, "stages[]")
        code = stage.stage if isinstance(stage.stage, int) else _STAGE_NAMES.get(
            stage.stage.lower().removeprefix("stage_type_"), -1)
        if code not in _STAGES:
            raise Rejected("invalid", f"unknown sleep stage {stage.stage!r}")
        minutes = (as_utc(stage.endTime, "stages[].endTime") - as_utc(stage.startTime, "stages[].startTime")
                   ).total_seconds() / 60
        if minutes < 0:
            raise Rejected("invalid", "a sleep stage ends before it starts")
        stages[_STAGES[code]] = stages.get(_STAGES[code], 0.0) + minutes
    return [Sample(start, None, "min", end=end, stages=stages or None)]


def _window(item: Any) -> Operation:
    return window(item, _Window, PLATFORM, TYPES)


EXAMPLE = {"changes": [
    {"upsertionChange": {"record": {
        "recordType": "HeartRateRecord",
        "metadata": {"id": "2f1c3a5e-7d0b-4c57-9a51-3c1f0d6e9b21", "dataOrigin": {"packageName": "com.google.android.apps.fitness"},
                     "lastModifiedTime": "2026-11-25T00:02:00Z", "clientRecordVersion": 0},
        "startTime": "2026-11-25T00:00:00Z", "startZoneOffset": "+08:00",
        "endTime": "2026-11-25T00:01:00Z", "endZoneOffset": "+08:00",
        "samples": [{"time": "2026-11-25T00:00:00Z", "beatsPerMinute": 72},
                    {"time": "2026-11-25T00:00:30Z", "beatsPerMinute": 74}]}}},
    {"upsertionChange": {"record": {
        "recordType": "StepsRecord",
        "metadata": {"id": "8a0e55d2-1b7e-4f0e-8f9c-2d7c9b1e4a10", "dataOrigin": {"packageName": "com.sec.android.app.shealth"},
                     "lastModifiedTime": "2026-11-25T00:20:00Z"},
        "startTime": "2026-11-25T00:00:00Z", "endTime": "2026-11-25T00:15:00Z", "startZoneOffset": None,
        "count": 1200}}},
    {"deletionChange": {"recordId": "5d9b0c2e-0a43-4a8e-b1c1-9e0f7a2c3d44"}},
]}
