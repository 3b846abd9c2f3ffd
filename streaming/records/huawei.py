"""Huawei Health Kit (HMS / HarmonyOS): sample sets and range deletions.

A sample set is identified by its data collector, data type and time range (Huawei has no record ids); it has
no version either, so a changed set with the same identity replaces the one we hold and a resent one is
``unchanged``. Times are nanoseconds since the epoch; ``timeZone`` is an offset like ``+0800``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec

from streaming.records import Invalid, Operation, Sample, Upsert, Window, unsupported
from streaming.records.shapes import convert, offset_minutes
from streaming.validation import Rejected

PLATFORM = "huawei"
SLEEP = "DT_CONTINUOUS_SLEEP"  # com.huawei.continuous.sleep.fragment: one sample set is one night's fragments

# data type -> (our data type, field, unit); blood pressure reads two fields
TYPES = {
    "DT_INSTANTANEOUS_HEART_RATE": ("heart_rate", "bpm", "bpm"),
    "DT_INSTANTANEOUS_RESTING_HEART_RATE": ("resting_heart_rate", "resting_heart_rate", "bpm"),
    "DT_CONTINUOUS_STEPS_DELTA": ("steps", "steps_delta", "count"),
    "DT_INSTANTANEOUS_SPO2": ("spo2", "saturation", "%"),
    "DT_INSTANTANEOUS_BLOOD_PRESSURE": ("blood_pressure", "systolic_pressure", "mmHg"),
    "DT_INSTANTANEOUS_BLOOD_GLUCOSE": ("glucose", "level", "mmol/L"),
    "DT_INSTANTANEOUS_BODY_TEMPERATURE": ("body_temperature", "temperature", "°C"),
    "DT_INSTANTANEOUS_RESPIRATORY_RATE": ("respiratory_rate", "respiratory_rate", "/min"),
    SLEEP: ("sleep", "sleep_state", "min"),
}
# sleep_state of com.huawei.continuous.sleep.fragment: 1 light, 2 REM, 3 deep, 4 awake, 5 nap
_SLEEP_STATES = {1: "light", 2: "rem", 3: "deep", 4: "awake", 5: "asleep"}
_MAX_NS = 4_102_444_800 * 10**9  # 2100-01-01


class _Point(msgspec.Struct):
    startTime: int
    endTime: int
    fieldValues: dict[str, float]


class _SampleSet(msgspec.Struct):
    dataCollectorId: str
    dataType: str
    startTime: int
    endTime: int
    samplePoints: list[dict]
    timeZone: str | None = None
    packageName: str | None = None


class _Deletion(msgspec.Struct):
    dataCollectorId: str
    dataType: str
    startTime: int
    endTime: int


def operations(body: Any) -> list[Operation]:
    """``{"sampleSets": [...], "deletions": [...]}`` → operations, in order."""
    if not isinstance(body, dict) or not all(isinstance(body.get(k, []), list) for k in ("sampleSets", "deletions")):
        raise ValueError("the body must be an object with `sampleSets` and/or `deletions` lists")
    return [_sample_set(s) for s in body.get("sampleSets", [])] + [_deletion(d) for d in body.get("deletions", [])]


def _instant(ns: int, what: str) -> datetime:
    if not 0 <= ns < _MAX_NS:
        raise Rejected("invalid", f"`{what}` must be nanoseconds since 1970 before 2100")
    return datetime.fromtimestamp(ns / 1e9, timezone.utc)


def _collector(value: str) -> str:
    if not 0 < len(value) <= 255:
        raise Rejected("invalid", "`dataCollectorId` must be 1–255 characters")
    return value


def _sample_set(item: Any) -> Operation:
    try:
        kind = item.get("dataType") if isinstance(item, dict) else None
        if kind not in TYPES:
            return unsupported(str(kind), TYPES)
        s: _SampleSet = convert(item, _SampleSet, kind)
        metric, field, unit = TYPES[kind]
        start, end = _instant(s.startTime, "startTime"), _instant(s.endTime, "endTime")
        if end < start:
            raise Rejected("invalid", "`endTime` is before `startTime`")
        if metric == "sleep":
            return Upsert(PLATFORM, _collector(s.dataCollectorId), f"{kind}:{s.startTime}-{s.endTime}", kind, metric,
                          start, end, [_sleep(s.samplePoints, start, end)], offset_minutes(s.timeZone, "timeZone"))
        samples = []
        for raw in s.samplePoints:
            point: _Point = convert(raw, _Point, "samplePoints[]")
            at = _instant(point.endTime if metric == "steps" else point.startTime, "samplePoints[].startTime")
            if metric == "blood_pressure":
                samples.append(Sample(at, None, unit, systolic=point.fieldValues.get("systolic_pressure"),
                                      diastolic=point.fieldValues.get("diastolic_pressure")))
            else:
                samples.append(Sample(at, point.fieldValues.get(field), unit))
        native_id = f"{kind}:{s.startTime}-{s.endTime}"
        return Upsert(PLATFORM, _collector(s.dataCollectorId), native_id, kind, metric, start, end, samples,
                      offset_minutes(s.timeZone, "timeZone"))
    except Rejected as exc:
        return Invalid(exc.reason, exc.detail)


def _sleep(points: list[dict], start: datetime, end: datetime) -> Sample:
    """A sample set of sleep fragments as one session: minutes per stage (fragments never overlap)."""
    stages: dict[str, float] = {}
    for raw in points:
        point: _Point = convert(raw, _Point, "samplePoints[]")
        state = point.fieldValues.get("sleep_state")
        if state not in _SLEEP_STATES:
            raise Rejected("invalid", f"unknown sleep_state {state!r}; known: 1 light, 2 REM, 3 deep, 4 awake, 5 nap")
        first, last = _instant(point.startTime, "samplePoints[].startTime"), _instant(point.endTime,
                                                                                      "samplePoints[].endTime")
        if last < first or first < start or last > end:
            raise Rejected("invalid", "a sleep fragment must lie inside its sample set's time range")
        name = _SLEEP_STATES[int(state)]
        stages[name] = stages.get(name, 0.0) + (last - first).total_seconds() / 60
    return Sample(start, None, "min", end=end, stages=stages or None)


def _deletion(item: Any) -> Operation:
    try:
        d: _Deletion = convert(item, _Deletion, "deletions[]")
        if d.dataType not in TYPES:
            return unsupported(d.dataType, TYPES)
        return Window(PLATFORM, _collector(d.dataCollectorId), TYPES[d.dataType][0],
                      _instant(d.startTime, "startTime"), _instant(d.endTime, "endTime"), deletion=True)
    except Rejected as exc:
        return Invalid(exc.reason, exc.detail)


EXAMPLE = {
    "sampleSets": [{
        "dataCollectorId": "com.huawei.health:raw:heart_rate:watch-gt4", "dataType": "DT_INSTANTANEOUS_HEART_RATE",
        "startTime": 1764028800000000000, "endTime": 1764028860000000000, "timeZone": "+0800",
        "samplePoints": [{"startTime": 1764028800000000000, "endTime": 1764028800000000000,
                          "fieldValues": {"bpm": 72}},
                         {"startTime": 1764028830000000000, "endTime": 1764028830000000000,
                          "fieldValues": {"bpm": 74}}]}],
    "deletions": [{"dataCollectorId": "com.huawei.health:raw:heart_rate:watch-gt4",
                   "dataType": "DT_INSTANTANEOUS_HEART_RATE",
                   "startTime": 1763942400000000000, "endTime": 1764028800000000000}],
}
