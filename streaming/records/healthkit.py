"""Apple HealthKit: the result of an anchored object query (``samples`` and ``deletedObjects``).

A sample is identified by its ``uuid`` and its source's bundle identifier; a sample that carries
``HKMetadataKeySyncIdentifier`` is identified by that instead (its uuid changes when the app replaces it) and
versioned by ``HKMetadataKeySyncVersion``. HealthKit samples have no offset unless ``metadata.HKTimeZone``
names a zone: without it the person's time zone is used and the offset is marked inferred.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import msgspec

from streaming.records import Delete, Invalid, Operation, Sample, Upsert, as_utc, metric_of, version, window
from streaming.records.shapes import convert
from streaming.validation import Rejected

PLATFORM = "healthkit"
SLEEP = "HKCategoryTypeIdentifierSleepAnalysis"
BLOOD_PRESSURE = "HKCorrelationTypeIdentifierBloodPressure"

TYPES = {
    "HKQuantityTypeIdentifierHeartRate": "heart_rate",
    "HKQuantityTypeIdentifierRestingHeartRate": "resting_heart_rate",
    "HKQuantityTypeIdentifierHeartRateVariabilitySDNN": "hrv_sdnn",
    "HKQuantityTypeIdentifierStepCount": "steps",
    "HKQuantityTypeIdentifierOxygenSaturation": "spo2",
    "HKQuantityTypeIdentifierBloodGlucose": "glucose",
    "HKQuantityTypeIdentifierBodyTemperature": "body_temperature",
    "HKQuantityTypeIdentifierRespiratoryRate": "respiratory_rate",
    BLOOD_PRESSURE: "blood_pressure",
    SLEEP: "sleep",
}
_SYSTOLIC = "HKQuantityTypeIdentifierBloodPressureSystolic"
_DIASTOLIC = "HKQuantityTypeIdentifierBloodPressureDiastolic"
_INTERVAL = {"steps"}  # counted over the sample's interval: stored at its end

# HKCategoryValueSleepAnalysis: inBed 0, asleepUnspecified 1, awake 2, asleepCore 3, asleepDeep 4, asleepREM 5
_SLEEP_STAGES = {0: "in_bed", 1: "asleep", 2: "awake", 3: "light", 4: "deep", 5: "rem"}
STAGE_PREFIX = SLEEP + ":"      # a stage sample's record type: "HKCategoryTypeIdentifierSleepAnalysis:deep"
SESSION = "HKSleepSession"      # the record type of the night's session derived from the stage samples
_SLEEP_NAMES = {"inbed": 0, "asleep": 1, "asleepunspecified": 1, "awake": 2, "asleepcore": 3, "asleepdeep": 4,
                "asleeprem": 5}


class _Sample(msgspec.Struct):
    uuid: str
    sampleType: str
    startDate: datetime
    endDate: datetime | None = None
    quantity: float | None = None
    unit: str | None = None
    value: int | str | None = None
    sourceRevision: dict | None = None
    metadata: dict | None = None
    objects: list[dict] | None = None
    series: list[dict] | None = None


class _SeriesPoint(msgspec.Struct):
    quantity: float
    startDate: datetime
    endDate: datetime | None = None


class _Window(msgspec.Struct):
    sampleType: str
    bundleIdentifier: str
    startDate: datetime
    endDate: datetime


def operations(body: Any) -> list[Operation]:
    """``{"samples": [...], "deletedObjects": [{"uuid": …}], "windows": [...]}`` → operations, in order."""
    if not isinstance(body, dict) or not all(isinstance(body.get(k, []), list)
                                             for k in ("samples", "deletedObjects", "windows")):
        raise ValueError("the body must be an object with `samples` and/or `deletedObjects` lists")
    ops: list[Operation] = [_sample(s) for s in body.get("samples", [])]
    ops += [_deletion(d) for d in body.get("deletedObjects", [])]
    ops += [_window(w) for w in body.get("windows", [])]
    return ops


def _deletion(item: Any) -> Operation:
    uuid = item.get("uuid") if isinstance(item, dict) else None
    if not isinstance(uuid, str) or not 0 < len(uuid) <= 255:
        return Invalid("invalid", "a deleted object needs `uuid` (1–255 characters)")
    return Delete(PLATFORM, uuid)


def _bundle(revision: dict | None) -> str:
    revision = revision or {}
    source = revision.get("source") if isinstance(revision.get("source"), dict) else {}
    bundle = source.get("bundleIdentifier") or revision.get("bundleIdentifier")
    if not isinstance(bundle, str) or not 0 < len(bundle) <= 255:
        raise Rejected("invalid", "`sourceRevision.source.bundleIdentifier` is required")
    return bundle


def _sample(item: Any) -> Operation:
    uuid = item.get("uuid") if isinstance(item, dict) else None
    try:
        kind = item.get("sampleType") if isinstance(item, dict) else None
        metric = metric_of(kind, TYPES)
        if isinstance(metric, Invalid):
            return metric
        s: _Sample = convert(item, _Sample, kind)
        if not 0 < len(s.uuid) <= 255:
            raise Rejected("invalid", "`uuid` must be 1–255 characters")
        metadata = s.metadata or {}
        zone = metadata.get("HKTimeZone")
        if zone is not None and not isinstance(zone, str):
            raise Rejected("invalid", "`metadata.HKTimeZone` must be a time zone name")
        sync_id = metadata.get("HKMetadataKeySyncIdentifier")
        sync_version = version(metadata.get("HKMetadataKeySyncVersion", 0), "metadata.HKMetadataKeySyncVersion")
        if sync_id is not None and (not isinstance(sync_id, str) or not 0 < len(sync_id) <= 255):
            raise Rejected("invalid", "`metadata.HKMetadataKeySyncIdentifier` must be 1–255 characters")
        start = as_utc(s.startDate, "startDate")
        end = as_utc(s.endDate, "endDate") if s.endDate else start
        if end < start:
            raise Rejected("invalid", "`endDate` is before `startDate`")
        bundle = _bundle(s.sourceRevision)
        if kind == SLEEP and end - start > timedelta(hours=24):
            raise Rejected("implausible_value", "a sleep analysis sample lasts at most 24 h")
        if kind == SLEEP:  # a stage sample: a record of its own without readings; the night's session has them
            return Upsert(PLATFORM, bundle, sync_id or s.uuid, STAGE_PREFIX + _stage(s.value), metric, start, end,
                          [], None, version_seq=sync_version, alias_id=s.uuid if sync_id else None, zone=zone,
                          empty_ok=True)
        samples = _samples(kind, metric, s, start, end)
        return Upsert(PLATFORM, bundle, sync_id or s.uuid, kind, metric, start, end, samples, None,
                      version_seq=sync_version, alias_id=s.uuid if sync_id else None, zone=zone)
    except Rejected as exc:
        return Invalid(exc.reason, exc.detail, uuid if isinstance(uuid, str) else None)


def _unit(metric: str, unit: str | None) -> str | None:
    if unit is None:
        return None
    if metric == "spo2" and unit == "%":
        return "ratio"  # HealthKit's percent unit carries a 0–1 fraction
    if metric == "glucose" and unit.startswith("mmol"):
        return "mmol/L"  # "mmol<180.15588000005408>/L"
    if metric == "respiratory_rate" and unit == "count/min":
        return "/min"
    return unit


def _stage(value: int | str | None) -> str:
    code = value if isinstance(value, int) else _SLEEP_NAMES.get(
        str(value).lower().removeprefix("hkcategoryvaluesleepanalysis"), -1)
    if code not in _SLEEP_STAGES:
        raise Rejected("invalid", f"unknown sleep analysis value {value!r}")
    return _SLEEP_STAGES[code]


def night_of(start: datetime, offset_min: int) -> date:
    """The night a stage sample belongs to: noon to noon, local time of its start."""
    return (start + timedelta(minutes=offset_min - 12 * 60)).date()


def night_bounds(night: date, offset_min: int) -> tuple[datetime, datetime]:
    noon = datetime.combine(night, time(12), timezone.utc) - timedelta(minutes=offset_min)
    return noon, noon + timedelta(days=1)


def night_session(source_app: str, night: date, offset_min: int,
                  stages: list[tuple[str, datetime, datetime]]) -> Upsert | None:
    """One source's live stage samples of one night as ONE sleep session: minutes per stage (in bed is not a
    stage: it only widens the session), minutes asleep as its value. ``None`` when no stage is left."""
    minutes: dict[str, float] = {}
    for stage, start, end in stages:
        if stage != "in_bed":
            minutes[stage] = minutes.get(stage, 0.0) + (end - start).total_seconds() / 60
    if not minutes:
        return None
    start, end = min(s for _, s, _ in stages), max(e for _, _, e in stages)
    if sum(minutes.values()) > (end - start).total_seconds() / 60:  # overlapping stages: sleep the span at most
        scale = (end - start).total_seconds() / 60 / sum(minutes.values())
        minutes = {k: v * scale for k, v in minutes.items()}
    return Upsert(PLATFORM, source_app, f"sleep-night:{night.isoformat()}", SESSION, "sleep", start, end,
                  [Sample(start, None, "min", end=end, stages={k: round(v, 2) for k, v in minutes.items()})],
                  offset_min)


def _samples(kind: str, metric: str, s: _Sample, start: datetime, end: datetime) -> list[Sample] | None:
    if kind == BLOOD_PRESSURE:
        parts = {o.get("sampleType"): o for o in s.objects or [] if isinstance(o, dict)}
        if _SYSTOLIC not in parts or _DIASTOLIC not in parts:
            raise Rejected("invalid", "a blood pressure correlation needs systolic and diastolic `objects`")
        units = {parts[_SYSTOLIC].get("unit", "mmHg"), parts[_DIASTOLIC].get("unit", "mmHg")}
        if len(units) != 1 or not all(isinstance(u, str) for u in units):
            raise Rejected("invalid", "systolic and diastolic must share one unit")
        values = [parts[t].get("quantity") for t in (_SYSTOLIC, _DIASTOLIC)]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise Rejected("invalid", "systolic and diastolic need a numeric `quantity`")
        return [Sample(start, None, units.pop(), systolic=float(values[0]), diastolic=float(values[1]))]
    unit = _unit(metric, s.unit)
    if s.series is not None:  # a quantity series sample: one value per interval
        points = [convert(p, _SeriesPoint, "series[]") for p in s.series]
        return [Sample(as_utc(p.endDate if metric in _INTERVAL and p.endDate else p.startDate, "series[].startDate"),
                       p.quantity, unit) for p in points]
    return [Sample(end if metric in _INTERVAL else start, s.quantity, unit)]


def _window(item: Any) -> Operation:
    return window(item, _Window, PLATFORM, TYPES)


EXAMPLE = {
    "samples": [
        {"uuid": "C1A8E0B2-5D3F-4F61-9E0A-7B2C4D6E8F10", "sampleType": "HKQuantityTypeIdentifierHeartRate",
         "startDate": "2026-11-25T00:00:00Z", "endDate": "2026-11-25T00:00:00Z", "quantity": 72, "unit": "count/min",
         "sourceRevision": {"source": {"bundleIdentifier": "com.apple.health", "name": "Apple Watch"}},
         "metadata": {"HKTimeZone": "Asia/Shanghai"}},
        {"uuid": "0F3E2D1C-4B5A-6978-8796-A5B4C3D2E1F0", "sampleType": "HKQuantityTypeIdentifierOxygenSaturation",
         "startDate": "2026-11-25T00:05:00Z", "quantity": 0.97, "unit": "%",
         "sourceRevision": {"source": {"bundleIdentifier": "com.apple.health"}}},
        {"uuid": "9B8A7C6D-5E4F-3A2B-1C0D-EFEDCBA98765", "sampleType": SLEEP, "value": 4,
         "startDate": "2026-11-24T16:10:00Z", "endDate": "2026-11-24T17:00:00Z",
         "sourceRevision": {"source": {"bundleIdentifier": "com.apple.health"}}},
    ],
    "deletedObjects": [{"uuid": "5A4B3C2D-1E0F-4A9B-8C7D-6E5F4A3B2C1D"}],
}
